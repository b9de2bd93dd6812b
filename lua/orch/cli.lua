--- The `orch` command line: `run`, `check` and `graph`.
-- `main(args)` is called by the binary with the arguments after the program name and returns
-- the exit status: 0 clean, 1 runtime failure (script error, timeout, forced shutdown), 2 usage
-- error.
--
-- `run` evaluates main.lua in a root task, builds what it returns and supervises it: the first
-- SIGINT/SIGTERM shuts the graph down in reverse dependency order (exit 0), a second one
-- SIGKILLs every process group (exit 1), SIGHUP re-evaluates main.lua and swaps the graph when
-- the new script validates, SIGQUIT/SIGUSR1 dump the state of every entry to stderr.
-- @module orch.cli
local core = require 'orch.core'
local sched = require 'orch.sched'
local log = require 'orch.log'
local status = require 'orch.status'
local notify = require 'orch.notify'

local M = {}

--- Default `--until-ready` timeout (ms) when none is given.
M.DEFAULT_UNTIL_READY = 60000

--- How long a forced shutdown may take after SIGKILL before orch exits anyway (ms).
M.FORCE_EXIT_DELAY = 5000

-- The pid users see for orch: the relay outside the namespace when contained.
local function orch_pid()
  return M.relay_pid or core.getpid()
end

local USAGE = {
  main = [[
Usage: orch <command> [options] main.lua [args...]

Commands:
  run     evaluate main.lua, start its graph and supervise it until stopped
  check   evaluate and validate main.lua; print its entries in start order
  graph   print the dependency graph (Graphviz dot or Mermaid)

Options:
  -h, --help     show this help (orch <command> --help for a command)
  -V, --version  print the version

`orch main.lua` is short for `orch run main.lua`.
Exit status: 0 clean, 1 runtime failure, 2 usage error.
]],
  run = [[
Usage: orch run [options] main.lua [args...]

Evaluate main.lua (it returns a Daemons chain, or a function(ctx) returning one), start the
graph and supervise it. Arguments after main.lua are passed to the script (`...`, ctx.args).

Options:
  --until-ready[=MS]    start everything, wait until every entry is ready at once, shut down
                        cleanly and exit 0; exit 1 after MS milliseconds (default 60000,
                        0 = no limit)
  --log-format FORMAT   text (default) or json (one object per line)
  --no-color            never colour the text log (also: NO_COLOR set); --color forces it
  --timestamps          prefix text log lines with the local time
  --status-file PATH    keep PATH holding the state of every entry as JSON, rewritten
                        atomically on every change
  --log-lines N         output lines kept per entry in memory (default 1000)
  --no-contain          do not run in a PID namespace of its own (also: ORCH_CONTAIN=0)
  -h, --help            show this help

As root, orch runs as PID 1 of a PID namespace of its own, so nothing it started survives it,
even a SIGKILL of orch; pids it reports are those the host sees.

Signals: SIGINT/SIGTERM stop the graph in reverse dependency order (exit 0), a second one
SIGKILLs every process group (exit 1); SIGHUP reloads main.lua; SIGQUIT/SIGUSR1 dump the
state of every entry to stderr.
]],
  check = [[
Usage: orch check main.lua [args...]

Evaluate and validate main.lua without starting anything; print its entries in start order
with their kind, requirements, readiness check and command. Exit 0 when valid, 1 otherwise.

Options:
  -h, --help   show this help
]],
  graph = [[
Usage: orch graph [--format dot|mermaid] main.lua [args...]

Print the dependency graph of main.lua: oneshots as boxes, daemons as ellipses (rounded in
Mermaid), health checks as hexagons; an arrow goes from a requirement to its dependent.

Options:
  --format FORMAT   dot (default, for Graphviz) or mermaid
  -h, --help        show this help
]],
}

-- Options per command: name -> 'flag' | 'value' (required) | 'optional' (only as --x=V).
local OPTIONS = {
  run = {
    ['until-ready'] = 'optional',
    ['log-format'] = 'value',
    ['no-color'] = 'flag',
    ['color'] = 'flag',
    ['timestamps'] = 'flag',
    ['status-file'] = 'value',
    ['log-lines'] = 'value',
    ['no-contain'] = 'flag',
    ['help'] = 'flag',
  },
  check = { ['help'] = 'flag' },
  graph = { ['format'] = 'value', ['help'] = 'flag' },
}

local function out(s)
  io.stdout:write(s)
  io.stdout:flush()
end

local function err(s)
  io.stderr:write(s)
  io.stderr:flush()
end

local UsageError = {}

local function usage_error(cmd, fmt, ...)
  error(setmetatable({ cmd = cmd, message = fmt:format(...) }, UsageError), 0)
end

-- Parse `args[i..]` for `cmd`: options first, then the script and its arguments.
local function parse(cmd, args, i)
  local spec = OPTIONS[cmd]
  local opts = {}
  while i <= #args do
    local a = args[i]
    if a == '--' then
      i = i + 1
      break
    elseif a == '-h' then
      opts.help = true
    elseif a:sub(1, 2) == '--' then
      local name, value = a:match('^%-%-([^=]+)=(.*)$')
      name = name or a:sub(3)
      local kind = spec[name]
      if not kind then
        usage_error(cmd, "unknown option '--%s' for '%s'", name, cmd)
      end
      if kind == 'flag' and value then
        usage_error(cmd, "option '--%s' takes no value", name)
      elseif kind == 'value' and not value then
        i = i + 1
        value = args[i]
        if value == nil then
          usage_error(cmd, "option '--%s' needs a value", name)
        end
      end
      opts[name] = value or true
    elseif a:sub(1, 1) == '-' and #a > 1 then
      usage_error(cmd, "unknown option '%s' for '%s'", a, cmd)
    else
      break
    end
    i = i + 1
  end
  local script = args[i]
  local rest = {}
  for j = i + 1, #args do
    rest[#rest + 1] = args[j]
  end
  return opts, script, rest
end

-- The directory of the orch Lua library, to keep its frames out of user tracebacks.
local function lib_dir()
  local path = package.searchpath('orch.cli', package.path)
  return path and path:match('^(.*/)') or '/lua/orch/'
end

-- Error message of any error value.
local function message_of(e)
  if type(e) == 'table' then
    if e.message ~= nil then
      return tostring(e.message)
    end
    local mt = getmetatable(e)
    if mt and mt.__tostring then
      return tostring(e)
    end
    return 'error object is a table value'
  end
  return tostring(e)
end

-- A message handler: the message plus a short traceback of the user's frames only.
local function traceback_handler(e)
  local msg = message_of(e)
  local tb = debug.traceback('', 2)
  local dir = lib_dir()
  local frames = {}
  for line in tb:gmatch('[^\n]+') do
    if line:sub(1, 1) == '\t' and not line:find(dir, 1, true) and not line:find('^\t%[C%]')
      and not line:find('tail calls', 1, true) then
      frames[#frames + 1] = line
      if #frames == 6 then
        break
      end
    end
  end
  if #frames > 0 then
    msg = msg .. '\nstack traceback:\n' .. table.concat(frames, '\n')
  end
  return msg
end

-- Strip a `.../lua/orch/x.lua:N: ` prefix from a message raised inside the library.
local function strip_lib_position(msg)
  local dir = lib_dir()
  if msg:sub(1, #dir) == dir then
    return (msg:gsub('^[^\n]-:%d+: ', '', 1))
  end
  return msg
end

local function is_chain(v)
  return type(v) == 'table' and type(v.build) == 'function' and type(v.entries) == 'function'
end

--- Evaluate `script` (yields: call it from a task): run the chunk with `args`, call a returned
-- function with `ctx`, check it is a chain and list its entries.
-- @treturn table|nil chain
-- @treturn table|string entries, or the error message (`file:line: message` + traceback)
function M.evaluate(script, args, ctx)
  local chunk, lerr = loadfile(script)
  if not chunk then
    return nil, lerr
  end
  local a = { [0] = script }
  for i, v in ipairs(args) do
    a[i] = v
  end
  arg = a -- luacheck: ignore (the script's `arg`, as lua.c sets it)
  -- `return chain:addDaemon(...)` is a tail call: an error it raises at level 2 has no caller
  -- frame, hence no position. Track the last line run by the script's own top-level
  -- functions, to give such an error the position of the statement that raised it.
  local setup, last_line
  debug.sethook(function(_, line)
    local f = debug.getinfo(2, 'f').func
    if f == chunk or (setup and f == setup) then
      last_line = line
    end
  end, 'l')
  local function fail(msg)
    debug.sethook()
    if last_line and not msg:match('^[^\n]-:%d+: ') then
      msg = ('%s:%d: %s'):format(script, last_line, msg)
    end
    return nil, msg
  end
  local ok, res = xpcall(chunk, traceback_handler, table.unpack(args))
  if not ok then
    return fail(res)
  end
  if type(res) == 'function' then
    setup = res
    ok, res = xpcall(res, traceback_handler, ctx)
    if not ok then
      return fail(res)
    end
  end
  debug.sethook()
  if not is_chain(res) then
    local what = res == nil and 'nothing' or ('a ' .. type(res))
    return nil, ('%s: the script returned %s; it must return a Daemons chain ' ..
      '(orch.Daemons.of{...}:addDaemon(...)) or a function(ctx) returning one'):format(script,
      what)
  end
  local entries
  ok, entries = xpcall(res.entries, traceback_handler, res)
  if not ok then
    return nil, entries
  end
  return res, entries
end

-- Run `fn` as the root task; returns its results, or prints an internal error and returns 1.
local function run_root(fn)
  local res = table.pack(pcall(sched.run, fn))
  if not res[1] then
    err('orch: internal error: ' .. message_of(res[2]) .. '\n')
    return 1
  end
  return table.unpack(res, 2, res.n)
end

local function check_script(cmd, script)
  if not script then
    usage_error(cmd, "missing the script: orch %s [options] main.lua", cmd)
  end
  local f, ferr = io.open(script, 'r')
  if not f then
    usage_error(cmd, "cannot read '%s': %s", script, (ferr:gsub('^[^:]*: ', '')))
  end
  -- A directory opens but cannot be read.
  local ok, rerr = f:read(0)
  f:close()
  if ok == nil and rerr then
    usage_error(cmd, "cannot read '%s': %s", script, rerr)
  end
end

-- Let `require` find modules next to the script (after the library).
local function add_script_dir(script)
  local dir = script:match('^(.*)/[^/]*$') or '.'
  local add = dir .. '/?.lua;' .. dir .. '/?/init.lua'
  if not package.path:find(add, 1, true) then
    package.path = package.path .. ';' .. add
  end
end

-- `check` and `graph`: evaluate with a silent sink.
local function load_quiet(script, args)
  local sink = status.new({ writer = false })
  status.set_default(sink)
  add_script_dir(script)
  return run_root(function()
    return M.evaluate(script, args, { effects = sink, args = args, script = script })
  end)
end

local function join(list, sep)
  local t = {}
  for i, v in ipairs(list or {}) do
    t[i] = tostring(v)
  end
  return table.concat(t, sep or ', ')
end

--- Render entries as the aligned table `orch check` prints.
function M.format_entries(entries)
  local rows = { { 'ID', 'KIND', 'REQUIRES', 'READY', 'EXEC' } }
  for _, e in ipairs(entries) do
    local ready = '-'
    if e.ready then
      ready = (e.display and e.display ~= '') and e.display or 'yes (hidden)'
    end
    local requires = join(e.requires)
    rows[#rows + 1] = {
      e.id,
      e.kind or '?',
      requires ~= '' and requires or '-',
      ready,
      (e.exec and e.exec ~= '') and tostring(e.exec):gsub('\n', ' ') or '-',
    }
  end
  local widths = {}
  for _, row in ipairs(rows) do
    for i, c in ipairs(row) do
      widths[i] = math.max(widths[i] or 0, #c)
    end
  end
  local lines = {}
  for _, row in ipairs(rows) do
    local cells = {}
    for i, c in ipairs(row) do
      cells[i] = i < #row and c .. string.rep(' ', widths[i] - #c) or c
    end
    lines[#lines + 1] = (table.concat(cells, '  '):gsub('%s+$', ''))
  end
  return table.concat(lines, '\n') .. '\n'
end

local function count_kinds(entries)
  local n = { daemon = 0, oneshot = 0, health = 0 }
  for _, e in ipairs(entries) do
    n[e.kind] = (n[e.kind] or 0) + 1
  end
  local parts = {}
  for _, k in ipairs({ { 'oneshot', 'oneshot' }, { 'daemon', 'daemon' },
    { 'health', 'health check' } }) do
    local c = n[k[1]]
    if c > 0 then
      parts[#parts + 1] = ('%d %s%s'):format(c, k[2], c == 1 and '' or 's')
    end
  end
  local s = ('%d entr%s'):format(#entries, #entries == 1 and 'y' or 'ies')
  if #parts > 0 then
    s = s .. ' (' .. table.concat(parts, ', ') .. ')'
  end
  return s
end

local function cmd_check(opts, script, args)
  if opts.help then
    out(USAGE.check)
    return 0
  end
  check_script('check', script)
  local chain, entries = load_quiet(script, args)
  if not chain then
    err(message_of(entries) .. '\n')
    return 1
  end
  out(M.format_entries(entries))
  out(('%s: valid, %s\n'):format(script, count_kinds(entries)))
  return 0
end

local function dot_quote(s)
  return '"' .. tostring(s):gsub('[\\"]', '\\%0'):gsub('\n', '\\n') .. '"'
end

local function mermaid_quote(s)
  return '"' .. tostring(s):gsub('"', '#quot;'):gsub('\n', ' ') .. '"'
end

--- The graph of `entries` as Graphviz dot or Mermaid text.
function M.format_graph(entries, format)
  local lines = {}
  if format == 'mermaid' then
    lines[1] = 'flowchart LR'
    local node = {}
    for i, e in ipairs(entries) do
      node[e.id] = 'n' .. i
      local label = e.id
      if e.display and e.display ~= '' and e.display ~= e.id then
        label = label .. ': ' .. e.display
      end
      local shape
      if e.kind == 'oneshot' then
        shape = '[' .. mermaid_quote(label) .. ']'
      elseif e.kind == 'health' then
        shape = '{{' .. mermaid_quote(label) .. '}}'
      else
        shape = '(' .. mermaid_quote(label) .. ')'
      end
      lines[#lines + 1] = ('  %s%s'):format(node[e.id], shape)
    end
    for _, e in ipairs(entries) do
      for _, r in ipairs(e.requires or {}) do
        lines[#lines + 1] = ('  %s --> %s'):format(node[r] or mermaid_quote(r), node[e.id])
      end
    end
    for i, e in ipairs(entries) do
      lines[#lines + 1] = ('  class n%d %s'):format(i, e.kind or 'daemon')
    end
    lines[#lines + 1] = '  classDef oneshot fill:#eef,stroke:#558'
    lines[#lines + 1] = '  classDef daemon fill:#efe,stroke:#585'
    lines[#lines + 1] = '  classDef health fill:#ffe,stroke:#885'
  else
    lines[1] = 'digraph orch {'
    lines[#lines + 1] = '  rankdir=LR;'
    lines[#lines + 1] = '  node [fontname="Helvetica"];'
    local shapes = {
      oneshot = 'shape=box',
      daemon = 'shape=ellipse',
      health = 'shape=hexagon',
    }
    for _, e in ipairs(entries) do
      local label = e.id
      if e.display and e.display ~= '' and e.display ~= e.id then
        label = label .. '\n' .. e.display
      end
      lines[#lines + 1] = ('  %s [%s, label=%s];'):format(dot_quote(e.id),
        shapes[e.kind] or 'shape=ellipse', dot_quote(label))
    end
    for _, e in ipairs(entries) do
      for _, r in ipairs(e.requires or {}) do
        lines[#lines + 1] = ('  %s -> %s;'):format(dot_quote(r), dot_quote(e.id))
      end
    end
    lines[#lines + 1] = '}'
  end
  return table.concat(lines, '\n') .. '\n'
end

local function cmd_graph(opts, script, args)
  if opts.help then
    out(USAGE.graph)
    return 0
  end
  local format = opts.format or 'dot'
  if format ~= 'dot' and format ~= 'mermaid' then
    usage_error('graph', "unknown graph format '%s' (dot or mermaid)", tostring(format))
  end
  check_script('graph', script)
  local chain, entries = load_quiet(script, args)
  if not chain then
    err(message_of(entries) .. '\n')
    return 1
  end
  out(M.format_graph(entries, format))
  return 0
end

-----------------------------------------------------------------------------------------------
-- run

local Run = {}
Run.__index = Run

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
  self.writer = log.new({
    format = opts.log_format,
    color = opts.color,
    timestamps = opts.timestamps,
  })
  self.sink = status.new({ writer = self.writer, ring = opts.log_lines })
  status.set_default(self.sink)
  return self
end

function Run:log(msg, level)
  self.sink:message(msg, level)
end

function Run:ctx()
  return { effects = self.sink, args = self.args, script = self.script, reload = self.reloads }
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

function Run:dump(signame)
  local ready, total = self.sink:counts()
  local up = (core.now() - self.started_at) // 1000
  local head = ('orch: %s: state of %s (pid %d, %s, up %ds, %d/%d ready)\n'):format(signame,
    self.script, orch_pid(), self.phase, up, ready, total)
  err(head .. status.format(self.sink:snapshot()))
end

function Run:on_signal(signame)
  if signame == 'SIGQUIT' or signame == 'SIGUSR1' then
    self:dump(signame)
  elseif signame == 'SIGHUP' then
    if self.stop_requested then
      return
    end
    if self.opts.until_ready then
      self:log('SIGHUP ignored with --until-ready', 'warning')
      return
    end
    self.reload_requested = true
    self.wake:set()
  elseif not self.stop_requested then
    self.stop_requested = signame
    self:log(('%s: stopping (send it again to kill everything)'):format(signame))
    self.wake:set()
  else
    self:force(signame)
  end
end

-- Second SIGINT/SIGTERM: SIGKILL every live group, exit 1.
function Run:force(signame)
  self.exit_code = 1
  if not self.forced then
    self.forced = true
    self:log(('%s again: killing every process group'):format(signame), 'warning')
    local t = core.timer()
    t:start(M.FORCE_EXIT_DELAY, 0, function()
      err('orch: processes still not gone after SIGKILL; exiting\n')
      os.exit(1)
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
  self.wake:set()
end

function Run:install_signals()
  self.signals = {}
  for _, name in ipairs({ 'SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1' }) do
    local sig = core.signal()
    -- INT and TERM keep the loop alive: orch runs until told to stop, even with no process.
    local keep = name == 'SIGINT' or name == 'SIGTERM'
    sig:start(name, function(signame)
      self:on_signal(signame)
    end, keep)
    self.signals[#self.signals + 1] = sig
  end
end

function Run:close()
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
    self.status_file.write()
    self.status_file.close()
  end
end

function Run:meta()
  return {
    orch = {
      pid = orch_pid(),
      script = self.script,
      phase = self.phase,
      reloads = self.reloads,
      version = core.version,
      orphansReaped = core.orphans_reaped and core.orphans_reaped() or nil,
    },
  }
end

function Run:set_phase(phase)
  self.phase = phase
  if self.status_file then
    self.status_file.write()
  end
end

-- SIGHUP: re-evaluate; swap the graph only when the new script validates.
function Run:reload()
  self:log(('SIGHUP: reloading %s'):format(self.script))
  local finished, chain, entries = self:race(function()
    return M.evaluate(self.script, self.args, self:ctx())
  end)
  if not finished then
    return
  end
  if not chain then
    self:log('reload failed, the current graph keeps running:\n' .. message_of(entries), 'error')
    return
  end
  self.reloads = self.reloads + 1
  self:set_phase('reloading')
  if self.notifier then
    self.notifier:reloading(core.hrtime() // 1000)
  end
  self.new_chain = chain
  self.chain:term()
  if self.stop_requested then
    self.new_chain = nil
    return
  end
  self.chain, self.new_chain = chain, nil
  self.sink:declare(entries, { reset = true })
  chain:build()
  self:log(('reloaded: %s'):format(count_kinds(entries)))
  self:set_phase('running')
  if self.notifier then
    self.notifier:reloaded()
  end
end

function Run:until_ready(chain)
  local ms = self.opts.until_ready_ms
  self:log(('waiting until every entry is ready (%s)'):format(ms and (ms .. ' ms') or 'no limit'))
  local finished, ok, e = self:race(function()
    return pcall(chain.runUntilSuccess, chain, ms)
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
  local finished, chain, entries = self:race(function()
    return M.evaluate(self.script, self.args, self:ctx())
  end)
  if not finished then
    return self.exit_code
  end
  if not chain then
    err(message_of(entries) .. '\n')
    return 1
  end
  if self.opts.status_file then
    self.status_file = status.file(self.sink, self.opts.status_file, function()
      return self:meta()
    end)
    local ok, werr = self.status_file.write()
    if not ok then
      err(('orch: cannot write the status file %s: %s\n'):format(self.opts.status_file,
        tostring(werr)))
      return 1
    end
  end
  self.notifier = notify.new(self.sink)
  self.sink:declare(entries)
  self.chain = chain
  self:log(('running %s (pid %d): %s'):format(self.script, orch_pid(), count_kinds(entries)))
  self:set_phase('running')
  if self.opts.until_ready then
    local code = self:until_ready(chain)
    self:set_phase('stopped')
    return code
  end
  local ok, berr = xpcall(chain.build, traceback_handler, chain)
  if not ok then
    err(message_of(berr) .. '\n')
    pcall(chain.term, chain)
    return 1
  end
  while not self.stop_requested do
    if self.reload_requested then
      self.reload_requested = false
      self:reload()
    else
      self.wake:wait()
      self.wake:clear()
    end
  end
  self:set_phase('stopping')
  if self.notifier then
    self.notifier:stopping()
  end
  self.chain:term()
  self:set_phase('stopped')
  if self.forced then
    self:log('stopped (forced)', 'warning')
  else
    self:log('stopped')
  end
  return self.exit_code
end

-- Containment: orch becomes PID 1 of a PID namespace of its own (core.contain), so that when it
-- dies, even by SIGKILL, the kernel kills everything it started, grandchildren that left their
-- process group included. Skipped when orch already is PID 1 (a container), under systemd
-- (NOTIFY_SOCKET: the unit's cgroup already contains the service, and notifications must come
-- from the main pid), and on request. Without privileges it says so and goes on uncontained.
local function contain(opts)
  if opts['no-contain'] or os.getenv('ORCH_CONTAIN') == '0' or os.getenv('NOTIFY_SOCKET')
    or core.getpid() == 1 or not core.contain then
    return
  end
  local relay, msg = core.contain()
  if relay then
    M.relay_pid = relay
  else
    err(('orch: notice: not contained (%s): a process that leaves its process group can '
      .. 'outlive a SIGKILL of orch\n'):format(tostring(msg)))
  end
end

local function cmd_run(opts, script, args)
  if opts.help then
    out(USAGE.run)
    return 0
  end
  local ropts = {}
  if opts['until-ready'] then
    ropts.until_ready = true
    local v = opts['until-ready']
    if v == true then
      ropts.until_ready_ms = M.DEFAULT_UNTIL_READY
    else
      local n = tonumber(v)
      if not n or n < 0 or n ~= math.floor(n) then
        usage_error('run', "--until-ready takes milliseconds, got '%s'", v)
      end
      ropts.until_ready_ms = n > 0 and math.tointeger(n) or nil
    end
  end
  local fmt = opts['log-format'] or 'text'
  if fmt ~= 'text' and fmt ~= 'json' then
    usage_error('run', "unknown log format '%s' (text or json)", fmt)
  end
  ropts.log_format = fmt
  if opts['no-color'] then
    ropts.color = false
  elseif opts.color then
    ropts.color = true
  end
  ropts.timestamps = opts.timestamps and true or false
  if opts['status-file'] then
    if opts['status-file'] == '' then
      usage_error('run', '--status-file needs a path')
    end
    ropts.status_file = opts['status-file']
  end
  if opts['log-lines'] then
    local n = tonumber(opts['log-lines'])
    if not n or n < 0 or n ~= math.floor(n) then
      usage_error('run', "--log-lines takes a count, got '%s'", opts['log-lines'])
    end
    ropts.log_lines = math.tointeger(n)
  end
  check_script('run', script)
  add_script_dir(script)
  contain(opts)
  if core.set_subreaper then
    local ok, serr = core.set_subreaper()
    if not ok and core.getpid() == 1 then
      err(('orch: warning: %s\n'):format(tostring(serr)))
    end
  end
  local run = Run.new(ropts, script, args)
  local code = run_root(function()
    return run:main()
  end)
  run:close()
  return code
end

local COMMANDS = { run = cmd_run, check = cmd_check, graph = cmd_graph }

--- The entry point: `args` are the arguments after the program name; returns the exit status.
function M.main(args)
  args = args or {}
  local ok, code = xpcall(function()
    local first = args[1]
    if first == nil then
      err(USAGE.main)
      return 2
    elseif first == '-h' or first == '--help' or first == 'help' then
      local topic = args[2]
      out(USAGE[topic] or USAGE.main)
      return 0
    elseif first == '-V' or first == '--version' then
      out(('orch %s (%s)\n'):format(core.version or '?', _VERSION))
      return 0
    end
    local cmd, start = first, 2
    if not COMMANDS[cmd] then
      if first:match('%.lua$') and not first:match('^%-') then
        cmd, start = 'run', 1
      elseif first:match('^%-') then
        usage_error(nil, "unknown option '%s'", first)
      else
        usage_error(nil, "unknown command '%s'", first)
      end
    end
    local opts, script, rest = parse(cmd, args, start)
    return COMMANDS[cmd](opts, script, rest)
  end, function(e)
    if getmetatable(e) == UsageError then
      return e
    end
    return debug.traceback(message_of(e), 2)
  end)
  if ok then
    return code
  end
  if getmetatable(code) == UsageError then
    local hint = code.cmd and ('orch ' .. code.cmd .. ' --help') or 'orch --help'
    err(('orch: %s (try \'%s\')\n'):format(code.message, hint))
    return 2
  end
  err('orch: internal error: ' .. tostring(code) .. '\n')
  return 1
end

return M
