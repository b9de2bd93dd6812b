--- Processes as tasks see them: spawn with env/user/cwd policy, wait, term, exec.
-- Built on `core.spawn`, which reports three separate events (the leader reaped, the end of
-- stdout, the end of stderr). The policy lives here: the env merge, the user (a name, a uid or
-- `uid:gid`, resolved to numbers), and what happens to what a leader leaves behind
-- (DECISIONS "Processes"): its group and tracked processes get SIGTERM and the rest of the
-- timeout, then SIGKILL; the output pipes are waited for until that deadline, then closed.
-- Over the guide's 400 lines on purpose: spawning, waiting and the end of what a leader leaves
-- behind share one Command object and its TERM -> KILL deadline; split, the deadline would be
-- computed in two places.
-- @module orch.runtime.process
local core = require 'orch.core'
local sched = require 'orch.runtime.sched'
local track = require 'orch.runtime.track'
local penv = require 'orch.runtime.process_env'

local M = {}

--- Default time between SIGTERM and SIGKILL (ms), as `sigtermTimeout`.
M.DEFAULT_SIGTERM_TIMEOUT = 30000
--- How long a SIGKILLed process may take to disappear before a warning (ms).
M.RELEASE_MS = 3000
--- How long the output pipes are read after the deadline at least (ms): their buffered tail.
M.PIPE_GRACE_MS = 200
--- What `exec` gives the rest of a command's group after it exits (ms), then SIGKILL.
M.EXEC_GRACE_MS = 1000

local Command = {}
Command.__index = Command
Command.sigterm_timeout = M.DEFAULT_SIGTERM_TIMEOUT -- unless the spawn said otherwise
M.Command = Command

M.merge_env = penv.merge_env
M.resolve_user = penv.resolve_user
local user_env = penv.user_env

--- Normalise a command: a string runs under `/bin/sh -c`, an array is used as given.
function M.argv(command)
  if type(command) == 'string' then
    return { '/bin/sh', '-c', command }
  end
  return command
end

-- What `spawn` refuses before the core sees it (the core would raise): nil, or why not.
local function bad_input(argv, opts)
  if type(argv) ~= 'table' or #argv == 0 then
    return 'command must be a string or a non-empty list of strings'
  end
  for i, a in ipairs(argv) do
    if type(a) ~= 'string' or a:find('\0', 1, true) then
      return ('argv[%d] must be a string without NUL bytes'):format(i)
    end
  end
  if opts.cwd ~= nil and (type(opts.cwd) ~= 'string' or opts.cwd:find('\0', 1, true)) then
    return ('cwd must be a path without NUL bytes, got %q'):format(tostring(opts.cwd))
  end
end

local function pipe_sink(self, fn)
  if type(fn) ~= 'function' then
    return fn
  end
  self._open = self._open + 1
  return function(chunk)
    if chunk == nil then
      self._open = self._open - 1
      if self._open == 0 then
        self:_pipes_closed()
      end
    end
    fn(chunk)
  end
end

--- Start a process.
-- `opts`: `env` (map overlaid on the orchestrator's environment), `cwd`, `user` (a name, a uid
-- or `'uid:gid'`), `stdout`/`stderr` (`'inherit'`, `'ignore'` or `function(chunk)`; nil chunk =
-- end of the pipe), `pidns` (run as PID 1 of a new PID namespace), `cgroup` (a cgroup directory
-- the child joins before exec) or `tag` (the `NAME=value` its environment carries, which marks
-- its descendants), see `orch.track`; `sigterm_timeout` (ms, default 30000: what is left of the
-- group when the leader exits by itself gets SIGTERM, then SIGKILL after this), `name` and
-- `log(level, msg)` for the lines about what the leader left behind. For a subcontainer
-- (orch.subcontainer): `env_base` (a map the env overlays instead of orch's environment),
-- `ids` (`{uid, gid, groups}` already resolved, instead of `user`), `join`, `caps`, `overlay`
-- and `stdin_file` (see src/spawn_ns.c).
-- @treturn Command|nil
-- @treturn string error message
-- @treturn string error code
-- @treturn string the step that failed (`'exec'`, `'cwd'`, `'user'`, `'cgroup'`, ...)
function M.spawn(command, opts)
  opts = opts or {}
  local argv = M.argv(command)
  local scope = sched.scope()
  if type(scope) == 'table' and scope.describe_probe then -- orch export reads, never runs
    return nil, ("spawn '%s': not run while orch export describes a ready.fn"):format(
      tostring(type(argv) == 'table' and argv[1] or argv)), 'EPERM', 'describe'
  end
  local bad = bad_input(argv, opts)
  if bad then
    local first = type(argv) == 'table' and type(argv[1]) == 'string' and argv[1] or '?'
    return nil, ("spawn '%s': %s"):format(first:gsub('%z', '\\0'), bad), 'EINVAL', 'input'
  end
  local u = opts.ids -- {uid =, gid =, groups = {...}}: resolved by the caller (a subcontainer)
  if u == nil and opts.user ~= nil then
    local why
    u, why = M.resolve_user(opts.user)
    if not u then
      return nil, ("spawn '%s': %s"):format(argv[1], why), 'EINVAL', 'user'
    end
  end
  -- Only what differs from the defaults is stored (Command holds them): 1000 daemons keep 1000
  -- of these, and a table's hash part is sized by the fields it is built with.
  local self = setmetatable({ argv = argv, exited = sched.event(), _open = 0 }, Command)
  if opts.sigterm_timeout ~= Command.sigterm_timeout then -- most are the default: 8 fields fit
    self.sigterm_timeout = opts.sigterm_timeout                -- 8 hash slots, 9 take 16
  end
  self.name = opts.name
  self.log = opts.log
  self._cgroup = opts.cgroup
  self._tag = opts.tag
  local proc, err, code, stage = core.spawn(argv, {
    env = M.merge_env(user_env(u, opts.env), opts.env_base),
    cwd = opts.cwd,
    uid = u and u.uid,
    gid = u and u.gid,
    groups_of = u and u.pw and u.pw.name or nil,
    groups = u and u.groups,
    -- a subcontainer's (orch.subcontainer): enter its leader, its capabilities, the leader's
    -- overlay root and stdin
    join = opts.join, caps = opts.caps, overlay = opts.overlay, stdin_file = opts.stdin_file,
    stdout = pipe_sink(self, opts.stdout or 'inherit'),
    stderr = pipe_sink(self, opts.stderr or 'inherit'),
    pidns = opts.pidns,
    cgroup = opts.cgroup,
    rlimits = opts.rlimits, -- {nofile =, core =}: setrlimit in the child
    fds = opts.fds, -- {[n] = fd}: a descriptor the child gets as number n
    name = opts.name, -- the entry: the real core ignores it; orch test's fake core scripts by it
  }, function(exit_code, signal)
    self.code, self.signal = exit_code, signal
    self:_leader_gone()
  end)
  if not proc then
    return nil, err, code, stage
  end
  self.proc = proc
  self.pgid = proc:pgid()
  if self._open == 0 then
    self:_pipes_closed()
  end
  return self
end

-- Both pipes have ended (or were never opened): `pipes_done`, and whoever waits is woken (the
-- event is made only when something waits: most incarnations never need it).
function Command:_pipes_closed()
  self.pipes_done = true
  if self._pipes_ev then
    self._pipes_ev:set()
  end
end

--- The pid as users see it: outside orch's PID namespace when orch is contained (nil once
-- the leader is reaped).
function Command:pid()
  return self.proc:host_pid()
end

-- The name logs give the incarnation: `opts.name`, else the program.
local function name_of(self)
  return self.name or self.argv[1]
end

-- The members of the incarnation (orch.track), made when first needed.
local function members(self)
  local m = self._members
  if not m and (self._cgroup or self._tag or self.pgid) then
    m = track.members({ cgroup = self._cgroup, tag = self._tag, pgid = self.pgid })
    self._members = m
  end
  return m
end

--- The pid in orch's own PID namespace (differs from `pid()` when orch is contained): what
-- the kernel reports to orch as a message sender's pid.
function Command:local_pid()
  return self.proc:pid()
end

-- Send `sig` to what is left of the group and to the tracked processes outside it.
local function signal_all(self, sig)
  local ok, err, code = self.proc:kill(sig)
  local m = members(self)
  if m and (m.cgroup or m.tag) then
    local n = m:signal(sig, self.proc:pid(), self.pgid)
    if not ok and n and n > 0 then
      return true
    end
  end
  return ok, err, code
end

--- Send `sig` to the process group and the tracked processes (nil, msg, 'ESRCH' once the
-- incarnation is over). After the leader exited, this reaches what it left.
function Command:kill(sig)
  if self.exited.is_set then
    return nil, 'process has exited', 'ESRCH'
  end
  sig = sig or 'SIGTERM'
  if sig == 'SIGTERM' then
    self._termed = true
  end
  return signal_all(self, sig)
end

-- What is left of the incarnation besides the leader: a list of `{pid, pgrp}` (empty when the
-- kernel would not say).
local function leftovers(self)
  local m = members(self)
  if not m then
    return {}
  end
  if not (m.cgroup or m.tag) and not self.proc:kill(0) then
    return {} -- the group is empty: no need to look at /proc
  end
  return m:list(nil) or {}
end

-- Whether anything is left (zombies do not count: orch, a subreaper, reaps them, but a library
-- user's may wait for an init that is slow to).
local function any_left(self)
  return #leftovers(self) > 0
end

local function say(self, level, msg)
  if self.log then
    pcall(self.log, level, msg)
  end
end

local function pid_list(list)
  local pids = {}
  for i, p in ipairs(list) do
    if i > 8 then
      pids[#pids + 1] = '...'
      break
    end
    pids[i] = tostring(p.pid)
  end
  return table.concat(pids, ' ')
end

-- Poll `cond()` until it holds or `deadline()` (a function: a stop may bring it closer) passes.
local function wait_until(cond, deadline)
  local step = 5
  while not cond() do
    local left = deadline() - sched.now()
    if left <= 0 then
      return false
    end
    sched.sleep(math.min(step, left))
    step = math.min(step * 2, 100)
  end
  return true
end

-- The leader is gone: give what it left the rest of the timeout (SIGTERM unless a stop sent it
-- already), then SIGKILL; wait for the pipes until the deadline, then close orch's end and say
-- who holds them. Runs as a task of its own.
local function finish(self)
  sched.yield() -- out of the reaping loop first: the other exits of this turn are reaped too
  local t0 = sched.now()
  self._deadline = self._deadline or (t0 + self.sigterm_timeout)
  local function deadline()
    return self._deadline
  end
  local left = leftovers(self)
  if #left > 0 then
    local what = self:describe_exit()
    local termed = self._termed
    say(self, 'info', ('%s: %s; %d process(es) left (%s): %s'):format(name_of(self), what, #left,
      pid_list(left), termed and 'waiting for them' or 'SIGTERM'))
    if not termed then
      signal_all(self, 'SIGTERM')
    end
    if wait_until(function() return not any_left(self) end, deadline) then
      say(self, 'info', ('%s: what was left ended %d ms after the main process'):format(
        name_of(self), sched.now() - t0))
    else
      left = leftovers(self)
      self.killed = true
      say(self, 'warning', ('%s: %d process(es) left still there after the timeout (%s): SIGKILL')
        :format(name_of(self), #left, pid_list(left)))
      signal_all(self, 'SIGKILL')
      local stop = sched.now() + M.RELEASE_MS
      local gone = wait_until(function() return not any_left(self) end, function()
        return stop
      end)
      if not gone then
        say(self, 'warning', ('%s: %d process(es) still there %d ms after SIGKILL '
          .. '(uninterruptible?)'):format(name_of(self), #leftovers(self), M.RELEASE_MS))
      end
    end
  end
  -- at least PIPE_GRACE_MS: what the pipes still buffer is read, not cut at a passed deadline
  local floor = sched.now() + M.PIPE_GRACE_MS
  while not self.pipes_done do
    local wait = math.max(deadline(), floor) - sched.now()
    if wait <= 0 then
      local holders = core.fd_holders(self.proc:pipes())
      local who = #holders > 0 and ('pid ' .. table.concat(holders, ', pid '))
        or 'a process orch cannot see'
      say(self, 'warning', ('%s: output pipe still held open after the timeout by %s (not part '
        .. 'of the entry): closed orch\'s end'):format(name_of(self), who))
      self.pipe_holders = holders
      self.proc:close_pipes()
      break
    end
    if not self._pipes_ev then
      self._pipes_ev = sched.event()
    end
    self._pipes_ev:wait(math.min(wait, 100))
  end
  self.exited:set()
end

-- on_exit of the core: the incarnation ends at once when nothing is left and the pipes are
-- closed (the common case: no task), else `finish` sees to the rest.
function Command:_leader_gone()
  if self.pipes_done and not (self._cgroup or self._tag) and not any_left(self) then
    self.exited:set()
    return
  end
  self._finish = sched.spawn('finish:' .. tostring(name_of(self)), finish, self)
end

--- Call `fn()` (no yielding) once the incarnation is over: the leader has exited, nothing of
-- its group or tracked processes is left, the pipes are closed; at once if it is.
function Command:on_exit(fn)
  self.exited:on_set(fn)
end

--- Wait until the incarnation is over (yields); returns `code, signal` of the leader.
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

--- Stop the incarnation (yields): `opts.signal` (default SIGTERM) to the group and the tracked
-- processes, SIGKILL to all of it once `opts.timeout` ms (default the spawn's
-- `sigterm_timeout`) have passed; what the leader leaves when it exits gets what is left of that
-- time. Waits until the incarnation is over. `opts.on_signal(sig)` is told of each signal sent.
-- Returns true when the leader's exit was clean, else false and a description.
-- @async
function Command:term(opts)
  opts = opts or {}
  local sig = opts.signal or 'SIGTERM'
  local timeout = opts.timeout or self.sigterm_timeout
  if not self.exited.is_set then
    local deadline = sched.now() + timeout
    if not self._deadline or deadline < self._deadline then
      self._deadline = deadline
    end
    self._termed = true
    if opts.on_signal then
      opts.on_signal(sig)
    end
    signal_all(self, sig)
    if sig ~= 'SIGKILL' and not self.exited:wait(math.max(0, self._deadline - sched.now())) then
      self.killed = true
      if opts.on_signal then
        opts.on_signal('SIGKILL')
      end
      signal_all(self, 'SIGKILL')
    end
    self.exited:wait()
  end
  if M.clean_exit(self.code, self.signal) then
    return true
  end
  return false, self:describe_exit()
end

--- Release the process handle: a live process group and its tracked processes are SIGKILLed
-- (and still reaped); no callback runs after this.
function Command:close()
  if self.proc then
    if not self.exited.is_set then
      signal_all(self, 'SIGKILL')
    end
    self.proc:close()
    self._open = 0
    self:_pipes_closed()
  end
end
Command.__close = Command.close

--- Run a command to completion collecting its output (yields).
-- `opts.timeout` (ms, default 30000; false for none) SIGKILLs the group when it passes; what the
-- command leaves in its group gets SIGTERM and `EXEC_GRACE_MS`, then SIGKILL. Bad input (a NUL
-- byte in argv or cwd, an unknown user) returns nil, message, 'EINVAL' like any failure.
-- @treturn table `{exitCode, signal, stdout, stderr, timedOut}` or nil, message, code
-- @async
function M.exec(command, opts)
  opts = opts or {}
  local out, err = {}, {}
  local cmd <close>, msg, code = M.spawn(command, {
    env = opts.env,
    cwd = opts.cwd,
    user = opts.user,
    env_base = opts.env_base, ids = opts.ids, join = opts.join, caps = opts.caps,
    sigterm_timeout = M.EXEC_GRACE_MS,
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
