--- A simulated world: `orch run`'s own Run (orch.cli.run), with main.lua, its args and env, on
-- the simulated core (orch.testing.fake_core): no process is started, time is virtual, every
-- command is played by a scripted fake process. Everything above the core is orch's own code,
-- loaded afresh for the world: the world keeps its own copies of the orch modules (and of the
-- modules its script requires) and puts them in `package.loaded` only while it runs, so that
-- several worlds, and the real orch around them, never share a scheduler.
-- @module orch.testing.world
local fake_core = require 'orch.testing.fake_core'
local history = require 'orch.testing.history'

local M = {}

local World = {}
World.__index = World
M.World = World

--- The root of the simulated cgroup v2 tree (it exists only in the world: io.open is routed
-- to it there).
M.CGROUP_ROOT = '/sys/fs/cgroup/orch.testing'

-- Events at one virtual instant past which the world is declared stuck (a busy loop).
local MAX_EVENTS_AT_ONCE = 200000

local function is_lib(k)
  return (k == 'orch' or k:match('^orch%.')) and not k:match('^orch%.testing')
end

-- A directory on the real filesystem for the script's data (removed by `close`).
local function make_dir()
  local path = os.tmpname()
  os.remove(path)
  local ok, core = pcall(require, 'orch.core')
  if ok and type(core) == 'table' and core.mkdir and not core.is_fake then
    assert(core.mkdir(path, 448))
  else
    assert(os.execute(("mkdir -m 700 '%s'"):format(path:gsub("'", "'\\''"))))
  end
  return path
end

local function remove_tree(path)
  if path and path:match('^/tmp/') then
    os.execute(("rm -rf '%s'"):format(path:gsub("'", "'\\''")))
  end
end

--- A new world for `script`. `opts`: `args` (list of strings), `env` (name -> value, added to
-- a small default environment), `behaviours` (entry id -> behaviour), `commands` (Lua
-- pattern on the command line -> behaviour), `default` (the behaviour of anything else),
-- `data_dir` (false for none; default a fresh temporary directory, in `world.data_dir` and
-- the script's `ORCH_DATA_DIR`). Call `world:start()` (or any driving method) to evaluate
-- main.lua and build its graph at virtual time 0.
function M.new(script, opts)
  opts = opts or {}
  assert(type(script) == 'string', 'orch.testing: the path of a main.lua expected')
  local fake = fake_core.new()
  local self = setmetatable({
    script = script, args = opts.args or {}, fake = fake, loaded = {},
    history = history.new(), lines = {}, stderr = {}, started = false,
  }, World)
  if opts.data_dir ~= false then
    self.data_dir = make_dir()
    fake.setenv('ORCH_DATA_DIR', self.data_dir)
  end
  for k, v in pairs(opts.env or {}) do
    fake.setenv(k, v)
  end
  for id, b in pairs(opts.behaviours or {}) do
    fake.program_entry(id, b)
  end
  for pat, b in pairs(opts.commands or {}) do
    fake.program_pattern(pat, b)
  end
  if opts.default ~= nil then
    fake.program_default(opts.default)
  end
  -- process tracking in cgroups, as orch run as root on cgroup v2 does (exec.limits need it)
  fake.cgroup_root(M.CGROUP_ROOT)
  fake.on_receive(function(p, sig)
    if p.name then
      self.history:signal_received(p.name, p.pid, sig, fake.now())
    end
  end)
  self.getenv = function(name)
    return fake.environ()[name]
  end
  return self
end

-- Put the world's modules and globals in place (see the module doc); `_leave` undoes it.
function World:_enter()
  assert(not self._saved, 'orch.testing: a world cannot be driven from inside itself')
  local saved = {}
  for k, v in pairs(package.loaded) do
    saved[k] = v
  end
  for k in pairs(saved) do
    if is_lib(k) then
      package.loaded[k] = nil
    end
  end
  for k, v in pairs(self.loaded) do
    package.loaded[k] = v
  end
  package.loaded['orch.core'] = self.fake
  self._saved = saved
  self._globals = { exit = os.exit, getenv = os.getenv, arg = rawget(_G, 'arg'),
    path = package.path, searchers = package.searchers, open = io.open }
  local real_open, fake = io.open, self.fake
  -- luacheck: ignore 122 (io.open: the simulated cgroup tree's files, the real others)
  io.open = function(path, mode)
    local f, e, c = fake.open(path, mode)
    if f == false then
      return real_open(path, mode)
    end
    return f, e, c
  end
  -- the world's own searchers: orch.cli.require_cycle adds one per copy of the module
  package.searchers = self.searchers or table.move(package.searchers, 1, #package.searchers, 1,
    {})
  os.exit = self.os_exit or os.exit -- luacheck: ignore (the world's capture, when it has one)
  os.getenv = self.getenv -- luacheck: ignore (the script sees the simulated environment)
  package.path = self.path or package.path
  rawset(_G, 'arg', self.arg)
end

function World:_leave()
  local saved = self._saved
  for k, v in pairs(package.loaded) do
    if saved[k] ~= v then
      self.loaded[k] = v
    end
  end
  for k in pairs(package.loaded) do
    if saved[k] == nil then
      package.loaded[k] = nil
    end
  end
  for k, v in pairs(saved) do
    package.loaded[k] = v
  end
  local g = self._globals
  self.os_exit, self.arg, self.path = os.exit, rawget(_G, 'arg'), package.path
  self.searchers = package.searchers
  os.exit, os.getenv, package.path = g.exit, g.getenv, g.path -- luacheck: ignore
  io.open = g.open -- luacheck: ignore 122
  package.searchers = g.searchers
  rawset(_G, 'arg', g.arg)
  self._saved, self._globals = nil, nil
end

-- Run `fn(...)` inside the world; its results, or its error raised again outside.
function World:_within(fn, ...)
  self:_enter()
  local res = table.pack(xpcall(fn, debug.traceback, ...))
  self:_leave()
  if not res[1] then
    error(res[2], 0)
  end
  return table.unpack(res, 2, res.n)
end

-- One line orch wrote to its log (JSON): kept, and decoded into the history.
function World:_log_line(s)
  local t = self.fake.now()
  for line in s:gmatch('[^\n]+') do
    self.lines[#self.lines + 1] = line
    local rec = self.json.decode(line)
    if type(rec) == 'table' then
      self.history:add(rec, t)
    end
  end
end

-- Drive the loop, one event at a time, until `pred()` or virtual time `deadline`; true when
-- `pred` held. Inside the world.
function World:_drive(deadline, pred)
  local fake = self.fake
  local same, last_t = 0, fake.now()
  while true do
    if pred and pred() then
      return true
    end
    local due = fake.next_due()
    if due == nil or due > deadline then
      fake.idle_until(deadline)
      return pred ~= nil and pred() or false
    end
    fake.step()
    if fake.now() == last_t then
      same = same + 1
      if same > MAX_EVENTS_AT_ONCE then
        error(('orch.testing: more than %d events at %d ms without time passing (a busy '
          .. 'loop?)'):format(MAX_EVENTS_AT_ONCE, last_t), 0)
      end
    else
      same, last_t = 0, fake.now()
    end
  end
end

--- Evaluate main.lua and build its graph (at the current virtual time; once). Raises with
-- orch's message when the script fails to evaluate or validate.
function World:start()
  if self.started then
    return self
  end
  self.started = true
  self:_within(function()
    local cli_args = require 'orch.cli.args'
    -- what orch would print on its stdout/stderr goes to the world (before the CLI modules
    -- that keep these functions are loaded)
    cli_args.out = function(s)
      self.stderr[#self.stderr + 1] = s
    end
    cli_args.err = function(s)
      self.stderr[#self.stderr + 1] = s
    end
    local sched = require 'orch.runtime.sched'
    local evaluate = require 'orch.cli.evaluate'
    local run = require 'orch.cli.run'
    self.json = require 'orch.runtime.json'
    sched.on_error(function(task, e)
      self.stderr[#self.stderr + 1] = ('orch: error: task %s failed: %s\n'):format(task.name,
        tostring(e))
    end)
    evaluate.add_script_dir(self.script)
    local tracker = require('orch.runtime.track').setup({ name = 'orch-1', mode = 'cgroup2' })
    self.tracker = tracker
    local r = run.Run.new({ log_format = 'json', color = false, timestamps = false,
      no_control = true, tracker = tracker }, self.script, self.args)
    tracker.log = function(msg, level)
      r:log(msg, level)
    end
    r.write_log = function(_, s)
      self:_log_line(s)
    end
    self.run = r
    self.main_task = sched.spawn(function()
      self.exit_code = r:main()
    end)
    self.main_task.quiet = true
    self:_drive(self.fake.now() + 600000, function()
      return r.phase ~= 'starting' or self.main_task:finished()
    end)
    if self.main_task:finished() and not self.run.chain then
      local why = self.main_task.status == 'failed' and tostring(self.main_task.results[1])
        or table.concat(self.stderr)
      error(why, 0)
    end
  end)
  return self
end

--- The virtual time (ms since the world began).
function World:now()
  return self.fake.now()
end

--- Advance virtual time by `ms`, running everything due meanwhile.
function World:advance(ms)
  self:start()
  local deadline = self.fake.now() + ms
  self:_within(function()
    self:_drive(deadline)
  end)
  return self
end

--- Advance until `pred(world)` holds (checked after every event), at most `max_ms` (default
-- 60000); true when it held, false at the limit.
function World:run_until(pred, max_ms)
  self:start()
  local deadline = self.fake.now() + (max_ms or 60000)
  return self:_within(function()
    return self:_drive(deadline, function()
      return pred(self)
    end)
  end)
end

--- The live simulated processes of entry `id`.
function World:processes(id)
  local out = {}
  for _, p in ipairs(self.fake.procs()) do
    if p.name == id and p.alive then
      out[#out + 1] = p
    end
  end
  return out
end

--- Send `sig` (default SIGKILL) to the live process of entry `id` (as if from outside orch);
-- the number of processes signalled.
function World:kill(id, sig)
  local n = 0
  self:_within(function()
    for _, p in ipairs(self:processes(id)) do
      self.fake.kill(p.pid, sig or 'SIGKILL')
      n = n + 1
    end
  end)
  return n
end

--- Make `port` stop (false) or start (true) listening whatever the processes do; nil gives it
-- back to them.
function World:port(port, listening)
  self.fake.set_port(port, listening)
  return self
end

--- Script `core.http_get` for `url` (see orch.testing.fake_core `set_http`).
function World:http(url, answer)
  self.fake.set_http(url, answer)
  return self
end

--- Script the next processes of entry `id` (a behaviour; see orch.testing.fake_core).
function World:behave(id, behaviour)
  self.fake.program_entry(id, behaviour)
  return self
end

--- Script the next processes whose command line matches the Lua pattern `pat`.
function World:behave_command(pat, behaviour)
  self.fake.program_pattern(pat, behaviour)
  return self
end

--- Send signal `sig` to orch itself (SIGHUP reloads, SIGTERM stops in order...), and let
-- what it causes at this instant run.
function World:signal(sig)
  self:start()
  self.fake.raise(sig)
  return self:advance(0)
end

--- SIGHUP with an edited script: `script` is a path, or the new text of main.lua (written to
-- the data directory); then advances until the reload is over (at most `max_ms`, default
-- 60000).
function World:reload(script, max_ms)
  self:start()
  if script then
    if not script:find('\n') and io.open(script, 'r') then
      self.run.script = script
    else
      local dir = self.data_dir or error('orch.testing: reload with a text needs a data_dir')
      self.reloads = (self.reloads or 0) + 1
      local path = ('%s/main.reload%d.lua'):format(dir, self.reloads)
      local f = assert(io.open(path, 'w'))
      f:write(script)
      f:close()
      self.run.script = path
    end
  end
  local before = self.run.reloads
  local failed = #self.history:of('orch')
  self.fake.raise('SIGHUP')
  self:run_until(function()
    if self.run.reloads > before then
      return true
    end
    for i = failed + 1, #self.history.records do
      local r = self.history.records[i]
      if r.id == 'orch' and r.level == 'error' and tostring(r.message):find('reload failed') then
        return true
      end
    end
    return false
  end, max_ms or 60000)
  return self.run.reloads > before
end

--- Stop as `orch run` does on SIGTERM (dependents first) and wait until orch has stopped (at
-- most `max_ms`, default 600000); orch's exit status.
function World:stop(max_ms)
  self:start()
  if self.stopped then
    return self.exit_code
  end
  self.stop_at = self.fake.now()
  self.fake.raise('SIGTERM')
  self:run_until(function()
    return self.main_task:finished()
  end, max_ms or 600000)
  if not self.main_task:finished() then
    error(('orch.testing: orch has not stopped %d ms after SIGTERM'):format(max_ms or 600000),
      2)
  end
  self.stopped = true
  self:close()
  return self.exit_code
end

--- Release what the world holds outside (its data directory, log files); stops nothing.
function World:close()
  if self.run and not self.closed then
    self.closed = true
    self:_within(function()
      self.run:close()
      self.tracker:close()
    end)
  end
  remove_tree(self.data_dir)
end

--- orch's log of the run so far: the lines of `orch run --log-format json`.
function World:log_lines()
  return self.lines
end

--- What orch printed on stderr (evaluation errors, failed tasks).
function World:errors()
  return table.concat(self.stderr)
end

return M
