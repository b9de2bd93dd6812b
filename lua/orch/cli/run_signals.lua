--- The signals of `orch run`: SIGINT/SIGTERM stop in order (a second SIGINT kills every group,
-- with the C stop guard as the last resort), SIGHUP reloads, SIGQUIT/SIGUSR1 dump the state of
-- every entry, SIGUSR2 reopens the log files. Installed as methods of orch.cli.run's Run.
-- @module orch.cli.run_signals
local core = require 'orch.core'
local evaluate = require 'orch.cli.evaluate'
local render = require 'orch.control.render'
local status_json = require 'orch.status.json'
local err = require('orch.cli.args').err

local message_of = evaluate.message_of

local M = {}

--- Add the signal methods to the class `Run`; `shared` gives what they share with run.lua:
-- `orch_pid()`, `guard(what)`, `real_exit` and `run`, the module (its `FORCE_EXIT_DELAY` is
-- read at each use).
function M.install(Run, shared)
  local orch_pid, guard, run = shared.orch_pid, shared.guard, shared.run
  local real_exit = shared.real_exit -- os.exit as it was before scripts ran
  function Run:dump(signame)
    local ready, total = self.sink:counts()
    local up = (core.now() - self.started_at) // 1000
    local head = ('orch: %s: state of %s (pid %d, %s, up %ds, %d/%d ready)\n'):format(signame,
      self.script, orch_pid(), self.phase, up, ready, total)
    err(head .. render.status({ entries = status_json.view(self.sink:snapshot()) },
      { header = false }))
  end

  -- SIGUSR2: reopen what orch writes to files, for log rotation. orch's log goes to stdout (the
  -- caller's redirection owns that file); the status file is written again, which recreates it
  -- if it was moved or removed. A writer or status file that keeps a file open may offer
  -- `reopen()` (called when present).
  function Run:reopen(signame)
    self:log(('%s: reopening log files'):format(signame))
    for _, w in ipairs({ self.writer, self.status_file }) do
      if type(w) == 'table' and type(w.reopen) == 'function' then
        local ok, e = pcall(w.reopen, w)
        if not ok then
          self:log('reopen failed: ' .. message_of(e), 'error')
        end
      end
    end
    if self.status_file then
      self.status_file:write()
    end
  end

  function Run:on_signal(signame)
    if signame == 'SIGQUIT' or signame == 'SIGUSR1' then
      self:dump(signame)
    elseif signame == 'SIGUSR2' then
      self:reopen(signame)
    elseif signame == 'SIGHUP' then
      if self.stop_requested then
        return
      end
      if self.opts.until_ready then
        self:log('SIGHUP ignored with --until-ready', 'warning')
        return
      end
      self.reload_requested = true
      self.reload_why = self.reload_why or 'SIGHUP'
      self.wake:set()
    elseif not self.stop_requested then
      self.stop_requested = signame
      guard('stopping')
      if signame == 'SIGINT' then
        self:log(('%s: stopping (send it again to kill everything)'):format(signame))
      else
        self:log(('%s: stopping'):format(signame))
      end
      self.wake:set()
    elseif signame == 'SIGTERM' then
      -- SIGTERM asks for the orderly shutdown already under way: a storm of them (a supervisor
      -- retrying, a script looping over kill) must not turn it into a forced one.
      if not self.term_repeated then
        self.term_repeated = true
        self:log('SIGTERM again: already stopping (repeated SIGTERMs are ignored; a second '
          .. 'SIGINT or a SIGKILL forces)')
      end
    else
      self:force(signame)
    end
  end

  -- Second SIGINT (or a SIGINT after SIGTERM): SIGKILL every live group, exit 1.
  function Run:force(signame)
    guard('ack')
    self.exit_code = 1
    if not self.forced then
      self.forced = true
      self:log(('%s again: killing every process group'):format(signame), 'warning')
      local t = core.timer()
      t:start(run.FORCE_EXIT_DELAY, 0, function()
        err('orch: processes still not gone after SIGKILL; exiting\n')
        if self.control then
          self.control:close()
        end
        real_exit(1)
      end)
      self.force_timer = t
    end
    for _, chain in pairs({ self.chain, self.new_chain }) do
      if type(chain) == 'table' and chain.kill_all then
        local ok, e = pcall(chain.kill_all, chain)
        if not ok then
          self:log('kill_all failed: ' .. message_of(e), 'error')
        end
      end
    end
    evaluate.kill_scope(self.scope)
    evaluate.kill_scope(self.new_scope)
    evaluate.kill_scope(self.dyn_scope)
    self.wake:set()
  end

  function Run:install_signals()
    self.signals = {}
    -- Every signal main.c blocks at start (orch_early_signals) has a handler here: none may kill
    -- orch or be dropped silently.
    for _, name in ipairs({ 'SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2' }) do
      local sig = core.signal()
      -- INT and TERM keep the loop alive: orch runs until told to stop, even with no process.
      local keep = name == 'SIGINT' or name == 'SIGTERM'
      sig:start(name, function(signame)
        self:on_signal(signame)
      end, keep)
      self.signals[#self.signals + 1] = sig
    end
    -- The C fallback behind the second SIGINT, for a Lua stuck in a C call (signal.c); chained
    -- in front of the handlers just installed, before the first signal can arrive.
    if core.stop_guard then
      local ok, gerr = core.stop_guard()
      if not ok then
        err(('orch: warning: %s: a second SIGINT cannot end orch while Lua is stuck\n')
          :format(tostring(gerr)))
      end
    end
    -- main.c kept them blocked until now: one that arrived during start-up is delivered here.
    if core.unblock_signals then
      core.unblock_signals()
    end
  end
end

return M
