--- The fake core's processes (orch.testing.fake_core): core.spawn and the handle it returns,
-- kill, and the listings specs read (`procs`, `live`, `spawn_times`...). What a process does is
-- its behaviour (orch.testing.fake_core.programs).
-- The process object `p` has: pid, argv, opts, t0, signals ({sig, t}), alive, n (spawn index of
-- this name), and methods p:exit(code, signal), p:after(ms, fn), p:write(stream, chunk),
-- p:listen(port), p:unlisten(port), p.on_signal = function(p, sig) ... end.
-- @module orch.testing.fake_core.procs
local programs = require 'orch.testing.fake_core.programs'

local M = {}

--- Add the processes to `fake`; `state` is the fake's shared state (its fields here: procs,
-- by_pid, counts, pid, ports, spawn_errors, on_receive; it reads the scripts and `notify`).
function M.install(fake, state)
  local at = fake._at

  --- Call `fn(p, sig)` whenever a simulated process receives a signal.
  function fake.on_receive(fn)
    state.on_receive = fn
  end

  local Proc = {} -- the scripted process (what specs see)
  Proc.__index = Proc
  local Handle = {} -- what core.spawn returns (what orch sees)
  Handle.__index = Handle
  Handle.__name = 'orch.process'

  local function deliver(p, stream, chunk)
    local sink = p.opts[stream]
    if type(sink) == 'function' then
      at(0, function()
        if not p.handle_closed then
          sink(chunk)
        end
      end)
    elseif sink == nil or sink == 'inherit' then
      p.inherited[#p.inherited + 1] = { stream = stream, chunk = chunk }
    end
  end

  function Proc:write(stream, chunk)
    if self.alive then
      deliver(self, stream, chunk)
    end
  end

  function Proc:listen(port)
    if not self.ports[port] then
      self.ports[port] = true
      state.ports[port] = (state.ports[port] or 0) + 1
    end
  end

  function Proc:unlisten(port)
    if self.ports[port] then
      self.ports[port] = nil
      state.ports[port] = state.ports[port] - 1
    end
  end

  --- Exit now (delivered from the loop): EOF on the pipes, then on_exit(code, signal).
  function Proc:exit(code, signal)
    if not self.alive then
      return
    end
    self.alive = false
    self.t_exit = state.now
    self.code, self.signal = code, signal
    for port in pairs(self.ports) do
      self:unlisten(port)
    end
    for _, t in ipairs(self.pending) do
      t:close()
    end
    at(0, function()
      for _, stream in ipairs { 'stdout', 'stderr' } do
        if type(self.opts[stream]) == 'function' and not self.handle_closed then
          self.opts[stream](nil)
        end
      end
      self.reaped = true
      if not self.handle_closed and self.on_exit then
        self.on_exit(code, signal)
      end
    end)
  end

  --- A variable of the process's environment (`opts.env`: a map, or `K=V` strings).
  function Proc:getenv(name)
    local env = self.opts.env or {}
    if env[name] ~= nil then
      return env[name]
    end
    local prefix = name .. '='
    for _, kv in ipairs(env) do
      if type(kv) == 'string' and kv:sub(1, #prefix) == prefix then
        return kv:sub(#prefix + 1)
      end
    end
    return nil
  end

  --- Send an sd_notify datagram to the NOTIFY_SOCKET of the process's environment.
  function Proc:notify(msg)
    local path = self:getenv('NOTIFY_SOCKET')
    local l = path and state.notify[path]
    if self.alive and l then
      local pid = self.pid
      at(0, function()
        l.cb(msg, pid)
      end)
    end
  end

  --- Run `fn(p)` after `ms` while the process lives.
  function Proc:after(ms, fn)
    local t
    t = at(ms, function()
      if self.alive then
        fn(self)
      end
    end)
    self.pending[#self.pending + 1] = t
    return t
  end

  local function receive(p, sig)
    p.signals[#p.signals + 1] = { sig = sig, t = state.now }
    if state.on_receive then
      state.on_receive(p, sig)
    end
    if sig == 'SIGKILL' then
      p:exit(nil, 'SIGKILL')
      return
    end
    if p.on_signal then
      p.on_signal(p, sig)
      return
    end
    if sig == 'SIGCHLD' or sig == 'SIGWINCH' or sig == 'SIGCONT' or sig == 'SIGURG' then
      return
    end
    p:exit(nil, sig)
  end

  function fake.spawn(argv, opts, on_exit)
    assert(type(argv) == 'table' and #argv > 0, 'fake spawn: argv expected')
    opts = opts or {}
    local key, b = programs.behaviour_of(state, argv, opts)
    local n = (state.counts[key] or 0) + 1
    state.counts[key] = n
    local behaviour = b
    if type(b) == 'table' and b.runs then
      behaviour = b.runs[math.min(n, #b.runs)]
    end
    if type(behaviour) == 'table' and behaviour.spawn_error then
      local e = behaviour.spawn_error
      state.spawn_errors = (state.spawn_errors or 0) + 1
      return nil, e[1] or ("spawn '" .. argv[1] .. "': no such file or directory"),
        e[2] or 'ENOENT', e[3] or 'exec'
    end
    local jmsg, jcode = fake._cgroup_join(opts.cgroup)
    if jmsg then
      return nil, jmsg, jcode, 'cgroup'
    end
    state.pid = state.pid + 1
    local p = setmetatable({
      pid = state.pid, argv = table.move(argv, 1, #argv, 1, {}), opts = opts, key = key, n = n,
      t0 = state.now, signals = {}, alive = true, ports = {}, pending = {}, inherited = {},
      on_exit = on_exit, name = opts.name, cgroup = opts.cgroup,
    }, Proc)
    state.procs[#state.procs + 1] = p
    state.by_pid[p.pid] = p
    local f = programs.compile(behaviour)
    if f then
      f(p)
    end
    fake._cgroup_add(p)
    fake._memory_check(p, type(behaviour) == 'table' and behaviour.memory_after or nil)
    return setmetatable({ p = p }, Handle)
  end

  function Handle:pid()
    return self.p.pid
  end

  --- The pid seen outside orch's PID namespace (the same here).
  function Handle:host_pid()
    return self.p.pid
  end

  --- Fake processes lead no process group: nothing outlives a leader.
  function Handle:pgid()
    return self.p.pid -- every fake process leads a group of its own
  end

  function Handle.pipes(_)
    return {} -- no process holds a fake pipe
  end

  function Handle.close_pipes(_) end

  function Handle:kill(sig)
    local p = self.p
    if not p.alive then
      return nil, 'kill: no such process', 'ESRCH'
    end
    receive(p, sig or 'SIGTERM')
    return true
  end

  --- Processes of the child besides the leader still alive: a fake process has none.
  function Handle.tracked(_self, _sig)
    return 0
  end

  function Handle:close()
    local p = self.p
    if p.handle_closed then
      return
    end
    p.handle_closed = true
    if p.alive then
      receive(p, 'SIGKILL')
    end
  end
  Handle.__close = Handle.close

  function fake.kill(pid, sig)
    local p = state.by_pid[math.abs(pid)]
    if not p or not p.alive then
      return nil, ('kill %d: no such process'):format(pid), 'ESRCH'
    end
    receive(p, sig or 'SIGTERM')
    return true
  end

  --- Every process spawned so far (optionally only those of `name`), in spawn order.
  function fake.procs(name)
    local out = {}
    for _, p in ipairs(state.procs) do
      if name == nil or p.key == name then
        out[#out + 1] = p
      end
    end
    return out
  end

  --- The spawn times of `name`.
  function fake.spawn_times(name)
    local out = {}
    for _, p in ipairs(fake.procs(name)) do
      out[#out + 1] = p.t0
    end
    return out
  end

  --- The /proc scan of the real core: every live fake process, tagged when its spawn carried
  -- `tag` (a fake process leaves no descendants behind).
  function fake.proc_list(tag)
    local out = {}
    for _, p in ipairs(state.procs) do
      if p.alive then
        out[#out + 1] = { pid = p.pid, ppid = 1, pgrp = p.pid, state = 'S', start = p.t0,
          tagged = tag ~= nil and p.opts.tag == tag }
      end
    end
    return out
  end

  --- No process holds a fake pipe.
  function fake.fd_holders(_)
    return {}
  end

  function fake.getpgid(pid)
    local p = state.by_pid[pid]
    return p and p.alive and pid or nil
  end

  --- Processes still alive (or not yet reaped).
  function fake.live()
    local out = {}
    for _, p in ipairs(state.procs) do
      if p.alive or not p.reaped then
        out[#out + 1] = p
      end
    end
    return out
  end

  --- Number of spawn failures returned so far.
  function fake.spawn_error_count()
    return state.spawn_errors or 0
  end
end

return M
