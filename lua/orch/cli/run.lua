--- `orch run`: evaluate main.lua in a root task, build what it returns and supervise it until
-- stopped (or, with --until-ready, until every entry is ready at once).
--
-- The first SIGINT/SIGTERM shuts the graph down in reverse dependency order (exit 0), a second
-- SIGINT SIGKILLs every process group (exit 1; repeated SIGTERMs are ignored), SIGHUP
-- re-evaluates main.lua and swaps the graph when the new script validates, SIGQUIT/SIGUSR1 dump
-- the state of every entry to stderr, SIGUSR2 reopens log files. Here: the run and its main
-- loop; the options, loading of main.lua, control socket (and --ui), reloads, signals, stdout
-- and set-up are in cli/run_{options,load,control,reload,signals,stdout,setup}.
-- @module orch.cli.run
local core = require 'orch.core'
local sched = require 'orch.runtime.sched'
local util = require 'orch.runtime.util'
local log = require 'orch.log'
local log_files = require 'orch.log.files'
local status = require 'orch.status'
local run_setup = require 'orch.cli.run_setup'
local data_dir = require 'orch.cli.data_dir'
local control_paths = require 'orch.control.paths'
local run_options = require 'orch.cli.run_options'
local limits = require 'orch.cli.limits'

local USAGE = require 'orch.cli.usage'
local cli_args = require 'orch.cli.args'
local evaluate = require 'orch.cli.evaluate'
local Dynamic = require 'orch.graph.dynamic'
-- loaded on first use: most runs have no progress line
local progress = util.lazy('orch.cli.progress')

local out, err = cli_args.out, cli_args.err
local check_script = cli_args.check_script
local message_of, traceback_handler = evaluate.message_of, evaluate.traceback_handler
local strip_lib_position, run_root = evaluate.strip_lib_position, evaluate.run_root
local add_script_dir = evaluate.add_script_dir

local M = {}

local real_exit = os.exit -- scripts get a replacement (evaluate.capture_exit)

--- Default `--until-ready` timeout (ms) when none is given.
M.DEFAULT_UNTIL_READY = 60000

--- The start-up progress line is redrawn at most this often (ms).
M.PROGRESS_MS = 100

--- How long a forced shutdown may take after SIGKILL before orch exits anyway (ms). Below the
-- 5 s the C stop guard allows (core.stop_guard), so that this exit, which says why, comes first.
M.FORCE_EXIT_DELAY = 4500

-- The C stop guard (signal.c): told when orch is stopping, and when Lua runs a forced stop.
local function guard(what)
  local f = core['stop_guard_' .. what]
  if f then
    f()
  end
end

-- The pid users see for orch: the relay outside the namespace when contained.
local function orch_pid()
  return M.relay_pid or core.getpid()
end

local Run = {}
Run.__index = Run

--- The pid users see for orch (the relay outside the namespace when contained).
function Run.orch_pid()
  return orch_pid()
end

function Run.new(opts, script, args)
  local self = setmetatable({
    opts = opts,
    script = script,
    args = args,
    wake = sched.event(),
    phase = 'starting',
    exit_code = 0,
    reloads = 0,
    started_at = core.now(),
  }, Run)
  self:open_stdout()
  -- Log files (--log-dir, exec.log): the writer also writes each entry's own file; a file
  -- that fails is reported once, through the sink (merged stream and orch.log).
  self.files = log_files.new({
    dir = opts.log_dir,
    clock = log.wallclock,
    report = function(msg, level, id)
      self.sink:message(msg, level, id and { id = id } or nil)
    end,
  })
  self.writer = log_files.tee(log.new({
    format = opts.log_format,
    color = opts.color,
    timestamps = opts.timestamps,
    out = function(s)
      self:write_log(s)
    end,
  }), self.files)
  self.sink = status.new({ writer = self.writer, ring = opts.log_lines })
  if opts.progress then
    self.progress = progress.new(function(s)
      self:put_stdout(s)
    end, self.sink, function()
      -- the width, asked of the terminal at most once a second
      if not self.cols_at or core.now() - self.cols_at >= 1000 then
        local tty = core.tty(1)
        self.cols, self.cols_at = tty and tty:winsize() or 80, core.now()
        if tty then
          tty:close()
        end
      end
      return self.cols
    end)
    -- at most one redraw per PROGRESS_MS: a snapshot per change would make a start-up of n
    -- entries cost n^2
    self.sink:subscribe(function(ev)
      if ev.type == 'output' or ev.type == 'log' or self.progress.done or self.progress_due then
        return
      end
      self.progress_due = core.timer()
      self.progress_due:start(M.PROGRESS_MS, 0, function()
        self.progress_due:close()
        self.progress_due = nil
        pcall(self.progress.update) -- never an error out of a loop callback
      end)
    end)
  end
  return self
end

-- The log on stdout: nothing while the UI has the terminal (orch run --ui); under the
-- progress line on a terminal. A closed pipe or full disk must never take orch down.
function Run:write_log(s)
  if self.ui_task then
    return
  elseif self.progress and not self.progress.done then
    return self.progress.write(s)
  end
  self:put_stdout(s)
end

function Run:log(msg, level)
  self.sink:message(msg, level)
end

function Run:ctx()
  return { effects = self.sink, args = self.args, script = self.script, reload = self.reloads,
    dataDir = self.opts.data_dir }
end

-- What a chain is built with: orch's log and status sink, and the process tracker.
function Run:build_opts()
  return { effects = self.sink, tracker = self.opts.tracker, interrupted = self.opts.interrupted,
    applied = function(r)
      self:applied(r)
    end }
end

-- Run `fn` in a task and wait until it finishes or a stop is requested (then it is
-- cancelled). Returns true and its results, or false.
function Run:race(fn)
  local res
  local task = sched.spawn(function()
    res = table.pack(xpcall(fn, traceback_handler))
    self.wake:set()
  end)
  task.quiet = true
  while not res and not self.stop_requested do
    self.wake:wait()
    self.wake:clear()
  end
  if not res then
    task:cancel()
    return false
  end
  if not res[1] then
    return true, nil, res[2]
  end
  return true, table.unpack(res, 2, res.n)
end

require('orch.cli.run_signals').install(Run, { orch_pid = orch_pid, guard = guard, run = M,
  real_exit = real_exit })

function Run:close()
  self:stop_ui()
  if self.progress then
    self.progress.finish()
    if self.progress_due then
      self.progress_due:close()
    end
  end
  if self.restore_exit then
    self.restore_exit()
  end
  if self.control then
    self.control:close()
  end
  for _, sig in ipairs(self.signals or {}) do
    sig:close()
  end
  if self.force_timer then
    self.force_timer:close()
  end
  if self.notifier then
    self.notifier:close()
  end
  if self.status_file then
    self.status_file:close() -- writes what is pending
  end
  self.files:close()
  self:close_stdout()
end

function Run:meta()
  return {
    orch = {
      pid = orch_pid(),
      script = self.script,
      phase = self.phase,
      reloads = self.reloads,
      lastReload = self.last_reload,
      version = core.version,
      orphansReaped = core.orphans_reaped and core.orphans_reaped() or nil,
    },
  }
end

function Run:set_phase(phase)
  self.phase = phase
  if self.status_file then
    self.status_file:write()
  end
  if self.control then
    self.control:changed()
  end
end

-- `orch shutdown`: the orderly stop of a first SIGTERM.
function Run:request_stop(why)
  if self.stop_requested then
    return
  end
  self.stop_requested = why
  guard('stopping')
  self:log(('%s: stopping'):format(why))
  self.wake:set()
end

require('orch.cli.run_stdout').install(Run) -- open_stdout, put_stdout, close_stdout
require('orch.cli.run_load').install(Run) -- load, make_room, capture_exit
require('orch.cli.run_control').install(Run) -- start_control, start_ui, stop_ui
require('orch.cli.run_reload').install(Run) -- reload, request_reload, serve_reloads...

function Run:until_ready(chain)
  local ms = self.opts.until_ready_ms
  self:log(('waiting until every entry is ready (%s)'):format(ms and (ms .. ' ms') or 'no limit'))
  local finished, ok, e = self:race(function()
    return pcall(chain.runUntilSuccess, chain, ms, self:build_opts())
  end)
  if not finished then
    -- Interrupted: stop what was started.
    self:set_phase('stopping')
    if self.notifier then
      self.notifier:stopping()
    end
    chain:term()
    self:log('interrupted before every entry was ready', 'error')
    return 1
  end
  if not ok then
    err('orch: ' .. strip_lib_position(message_of(e)) .. '\n')
    return 1
  end
  self:log('every entry was ready; stopped cleanly')
  return 0
end

function Run:main()
  self:install_signals()
  self:capture_exit()
  if not self:start_control() then
    return 1
  end
  local chain, load_code = self:load()
  if not chain then
    return load_code
  end
  self:set_phase('running')
  if self.opts.until_ready then
    local code = self:until_ready(chain)
    evaluate.term_scope(self.scope)
    self:set_phase('stopped')
    return code
  end
  local ok, berr
  if Dynamic.is(chain) then
    ok, berr = self:in_dynamic_scope(function()
      return xpcall(chain.build, traceback_handler, chain, self:build_opts())
    end)
  else
    ok, berr = xpcall(chain.build, traceback_handler, chain, self:build_opts())
  end
  if not ok then
    err(message_of(berr) .. '\n')
    pcall(chain.term, chain)
    evaluate.term_scope(self.scope)
    return 1
  end
  self:adopt_chain(chain)
  self:arm_watch(self.scope.reads)
  if self.progress then
    self.progress.update()
  end
  if self.opts.ui then
    self:start_ui()
  end
  while not self.stop_requested do
    if self.reload_requested then
      self:serve_reloads()
    else
      self.wake:wait()
      self.wake:clear()
    end
  end
  self:stop_ui()
  if self.progress then
    self.progress.finish()
  end
  self:set_phase('stopping')
  if self.notifier then
    self.notifier:stopping()
  end
  if self.watcher then
    self.watcher:close()
  end
  for _, w in ipairs(self.reload_waiters or {}) do
    w(false, 'orch is stopping')
  end
  self.reload_waiters = {}
  if self.reconciler then
    self.reconciler:close() -- a reconcile in flight ends before the shutdown
  end
  self.chain:term()
  evaluate.term_scope(self.scope) -- chains the script built and left running (detached too)
  evaluate.term_scope(self.dyn_scope) -- and those a Daemons.dynamic function built
  self:set_phase('stopped')
  if self.forced then
    self:log('stopped (forced)', 'warning')
  else
    self:log('stopped')
  end
  return self.exit_code
end

M.log_dir = run_setup.log_dir

local function cmd_run(opts, script, args)
  if opts.help then
    out(USAGE.run)
    return 0
  end
  -- A long-lived supervisor whose heap is mostly long-lived entries: start a GC cycle when the
  -- heap has grown by half (the default waits until it doubles). 1000 daemons: peak RSS 23.8 ->
  -- 19.6 MiB for 11% more CPU at start-up.
  collectgarbage('incremental', 150, 200)
  local ropts = run_options.parse(opts, M.DEFAULT_UNTIL_READY)
  ropts.data_dir = data_dir.resolve('run', opts.data,
    opts.name or control_paths.default_name(script))
  check_script('run', script)
  add_script_dir(script)
  ropts.limits = limits.raise(core)
  ropts.interrupted = function() -- read by a long start, before the signal callbacks can run
    return core.stop_guard_count() > 0
  end
  local tracker
  M.relay_pid, tracker = run_setup.prepare(opts)
  ropts.tracker = tracker
  local run = Run.new(ropts, script, args)
  tracker.log = function(msg, level)
    run:log(msg, level)
  end
  local code = run_root(function()
    return run:main()
  end)
  run:close()
  tracker:close()
  return code
end

M.cmd_run = cmd_run
M.Run = Run -- orch.testing runs the same Run on the simulated core

return M
