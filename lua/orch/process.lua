--- Processes as tasks see them: spawn with env/user/cwd policy, wait, term, exec.
-- Built on `core.spawn`; the env merge and the user policy live here.
-- @module orch.process
local core = require 'orch.core'
local sched = require 'orch.sched'

local M = {}

local Command = {}
Command.__index = Command
M.Command = Command

-- orch's own environment as sorted names and `K=V` strings, read once: nothing changes it
-- while orch runs, and re-reading and re-sorting it for every spawn was a quarter of the Lua
-- time of starting 1000 daemons.
local own_env

local function sorted_env(map)
  local names = {}
  for k in pairs(map) do
    names[#names + 1] = k
  end
  table.sort(names)
  local list = {}
  for i, k in ipairs(names) do
    list[i] = k .. '=' .. map[k]
  end
  return names, list
end

--- The orchestrator's environment (or `base`, a map) overlaid by `env` (false removes a name),
-- as `K=V` strings in a deterministic order: the names not in `env`, sorted, then those `env`
-- sets, sorted.
-- orch's environment without the names of an overlay, per set of names (most spawns overlay
-- the same few): copying it beats filtering ~50 names on every spawn.
local kept_for = {}

function M.merge_env(env, base)
  local names, list
  if base then
    names, list = sorted_env(base)
  else
    if not own_env then
      own_env = { sorted_env(core.environ()) }
    end
    names, list = own_env[1], own_env[2]
  end
  if env == nil or next(env) == nil then
    return table.move(list, 1, #list, 1, {})
  end
  local set = {}
  for k in pairs(env) do
    set[#set + 1] = k
  end
  table.sort(set)
  local sig = not base and table.concat(set, '\0') or nil
  local kept = sig and kept_for[sig]
  if not kept then
    kept = {}
    for i, k in ipairs(names) do
      if env[k] == nil then
        kept[#kept + 1] = list[i]
      end
    end
    if sig then
      kept_for[sig] = kept
    end
  end
  local out = table.move(kept, 1, #kept, 1, {})
  for _, k in ipairs(set) do
    local v = env[k]
    if v ~= false then
      out[#out + 1] = k .. '=' .. tostring(v)
    end
  end
  return out
end

-- HOME, USER and LOGNAME of the target user, unless the caller set them.
local function user_env(user, env)
  if user == nil then
    return env
  end
  local name = type(user) == 'string' and user:match('^([^:]+)') or user
  local pw = core.getpwnam(tonumber(name) or name)
  if not pw then
    return env
  end
  local out = {}
  for k, v in pairs(env or {}) do
    out[k] = v
  end
  if out.HOME == nil then
    out.HOME = pw.dir
  end
  if out.USER == nil then
    out.USER = pw.name
  end
  if out.LOGNAME == nil then
    out.LOGNAME = pw.name
  end
  return out
end

--- Normalise a command: a string runs under `/bin/sh -c`, an array is used as given.
function M.argv(command)
  if type(command) == 'string' then
    return { '/bin/sh', '-c', command }
  end
  return command
end

--- Start a process.
-- `opts`: `env` (map overlaid on the orchestrator's environment), `cwd`, `user`,
-- `stdout`/`stderr` (`'inherit'`, `'ignore'` or `function(chunk)`; nil chunk = EOF),
-- `pidns` (run as PID 1 of a new PID namespace), `cgroup` (a cgroup directory the child joins
-- before exec) or `tag` (`NAME=value` in its environment that marks its descendants), see
-- `orch.track`.
-- @treturn Command|nil
-- @treturn string error message
-- @treturn string error code
function M.spawn(command, opts)
  opts = opts or {}
  local argv = M.argv(command)
  local self = setmetatable({ argv = argv, exited = sched.event() }, Command)
  local proc, err, code = core.spawn(argv, {
    env = M.merge_env(user_env(opts.user, opts.env)),
    cwd = opts.cwd,
    user = opts.user,
    stdout = opts.stdout or 'inherit',
    stderr = opts.stderr or 'inherit',
    pidns = opts.pidns,
    cgroup = opts.cgroup,
    tag = opts.tag,
  }, function(exit_code, signal)
    self.code, self.signal = exit_code, signal
    self.exited:set()
  end)
  if not proc then
    return nil, err, code
  end
  self.proc = proc
  return self
end

--- The pid as users see it: outside orch's PID namespace when orch is contained.
function Command:pid()
  return self.proc:host_pid()
end

--- Send `sig` to the process group (no-op once exited).
function Command:kill(sig)
  if self.exited.is_set then
    return nil, 'process has exited', 'ESRCH'
  end
  return self.proc:kill(sig or 'SIGTERM')
end

--- Call `fn()` (no yielding) once the process has exited and every pipe is at EOF; at once
-- if it has.
function Command:on_exit(fn)
  self.exited:on_set(fn)
end

--- Wait for the exit and EOF on every pipe (yields); returns `code, signal`.
-- @async
function Command:wait(timeout_ms)
  if not self.exited:wait(timeout_ms) then
    return nil, nil, 'timeout'
  end
  return self.code, self.signal
end

--- Whether an exit counts as clean: 0, 143, or death by SIGTERM.
function M.clean_exit(code, signal)
  return code == 0 or code == 143 or signal == 'SIGTERM'
end

--- Describe an exit as upstream does: `<argv0> exited with code N` / `with signal S`.
function Command:describe_exit()
  if self.signal then
    return ('%s exited with signal %s'):format(self.argv[1], self.signal)
  end
  return ('%s exited with code %s'):format(self.argv[1], tostring(self.code))
end

--- SIGTERM (or `opts.signal`) the group, SIGKILL after `opts.timeout` ms (calling
-- `opts.on_kill()` first), wait until done (yields). Returns true when the exit was clean,
-- else false and a description.
-- @async
function Command:term(opts)
  opts = opts or {}
  local sig = opts.signal or 'SIGTERM'
  if not self.exited.is_set then
    self:kill(sig)
    if sig ~= 'SIGKILL' and not self.exited:wait(opts.timeout or 30000) then
      self.killed = true
      if opts.on_kill then
        opts.on_kill()
      end
      self:kill('SIGKILL')
    end
    self.exited:wait()
  end
  if M.clean_exit(self.code, self.signal) then
    return true
  end
  return false, self:describe_exit()
end

--- Release the process handle; a live process group is SIGKILLed (and still reaped).
function Command:close()
  if self.proc then
    self.proc:close()
  end
end
Command.__close = Command.close

--- Run a command to completion collecting its output (yields).
-- `opts.timeout` (ms, default 30000; false for none) SIGKILLs the group when it passes.
-- @treturn table `{exitCode, signal, stdout, stderr, timedOut}` or nil, message, code
-- @async
function M.exec(command, opts)
  opts = opts or {}
  local out, err = {}, {}
  local cmd <close>, msg, code = M.spawn(command, {
    env = opts.env,
    cwd = opts.cwd,
    user = opts.user,
    stdout = function(chunk)
      out[#out + 1] = chunk
    end,
    stderr = function(chunk)
      err[#err + 1] = chunk
    end,
  })
  if not cmd then
    return nil, msg, code
  end
  local timeout = opts.timeout
  if timeout == nil then
    timeout = 30000
  end
  local timed_out = false
  if timeout and not cmd.exited:wait(timeout) then
    timed_out = true
    cmd:kill('SIGKILL')
  end
  cmd.exited:wait()
  return {
    exitCode = cmd.code,
    signal = cmd.signal,
    stdout = table.concat(out),
    stderr = table.concat(err),
    timedOut = timed_out,
  }
end

return M
