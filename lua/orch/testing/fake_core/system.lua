--- The fake core's view of the system (orch.testing.fake_core): the environment orch sees,
-- users, pids and uids, wall-clock time, the signal table and signals raised at orch itself,
-- random bytes, directories, and sd_notify sockets.
-- @module orch.testing.fake_core.system
local M = {}

-- The virtual clock's 0 as wall-clock time (core.time): 2026-01-01T00:00:00Z.
local FAKE_EPOCH = 1767225600

local SIGNALS = { 'SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGILL', 'SIGTRAP', 'SIGABRT', 'SIGBUS',
  'SIGFPE', 'SIGKILL', 'SIGUSR1', 'SIGSEGV', 'SIGUSR2', 'SIGPIPE', 'SIGALRM', 'SIGTERM', nil,
  'SIGCHLD', 'SIGCONT', 'SIGSTOP', 'SIGTSTP', 'SIGTTIN', 'SIGTTOU', 'SIGURG', 'SIGXCPU',
  'SIGXFSZ', 'SIGVTALRM', 'SIGPROF', 'SIGWINCH', 'SIGIO', 'SIGPWR', 'SIGSYS' }
local SIGNUM = {}
for n = 1, 31 do
  if SIGNALS[n] then
    SIGNUM[SIGNALS[n]] = n
  end
end

--- The environment of a fresh (or reset) fake: `state.env` starts as a copy of it.
M.DEFAULT_ENV = { PATH = '/usr/local/bin:/usr/bin:/bin', HOME = '/root', LANG = 'C' }

local PASSWD = {
  root = { name = 'root', uid = 0, gid = 0, dir = '/root', shell = '/bin/sh' },
  nobody = { name = 'nobody', uid = 65534, gid = 65534, dir = '/nonexistent',
    shell = '/usr/sbin/nologin' },
  app = { name = 'app', uid = 1000, gid = 1000, dir = '/home/app', shell = '/bin/sh' },
}

--- Add the system calls to `fake`; `state` is the fake's shared state (its fields here: env,
-- signals, random, dirs, notify).
function M.install(fake, state)
  local at = fake._at

  --- Set (or, with nil, unset) a variable of the environment orch sees (core.environ).
  function fake.setenv(name, value)
    state.env[name] = value
  end

  function fake.environ()
    local out = {}
    for k, v in pairs(state.env) do
      out[k] = v
    end
    return out
  end

  function fake.getpwnam(who)
    for _, pw in pairs(PASSWD) do
      if pw.name == who or pw.uid == who then
        return { name = pw.name, uid = pw.uid, gid = pw.gid, dir = pw.dir, shell = pw.shell }
      end
    end
    return nil, ('getpwnam %s: no such user'):format(tostring(who)), 'ENOENT'
  end

  function fake.getpid()
    return 1
  end

  function fake.getuid()
    return 0
  end

  --- Wall-clock seconds: a fixed epoch plus the virtual clock.
  function fake.time()
    return FAKE_EPOCH + state.now / 1000
  end

  function fake.isatty(_fd)
    return false
  end

  --- The signal table of the real core (src/signal.c): names by number, and back.
  function fake.signame(n)
    n = math.tointeger(n) or error("bad argument #1 to 'signame' (number expected)", 2)
    return SIGNALS[n]
  end

  function fake.signum(sig)
    if math.tointeger(sig) then
      return math.tointeger(sig)
    end
    local name = type(sig) == 'string' and (sig:match('^SIG') and sig or 'SIG' .. sig)
    local n = name and SIGNUM[name]
    if not n then
      error(("bad argument #1 to 'signum' (unknown signal '%s')"):format(tostring(sig)), 2)
    end
    return n
  end

  --- A signal handle: `start(name, cb)` registers `cb(name)`, called (from the loop) when the
  -- test raises that signal at orch with `fake.raise(name)`.
  function fake.signal()
    local s = {}
    function s.start(self, name, cb)
      self.name, self.cb = name, cb
      state.signals[self] = true
    end
    function s.stop(self)
      state.signals[self] = nil
    end
    function s.close(self)
      state.signals[self] = nil
    end
    return setmetatable(s, { __close = s.close })
  end

  --- Deliver signal `name` to orch itself (its handlers run from the loop, as libuv's do).
  function fake.raise(name)
    local handlers = {}
    for h in pairs(state.signals) do
      if h.name == name then
        handlers[#handlers + 1] = h
      end
    end
    at(0, function()
      for _, h in ipairs(handlers) do
        if state.signals[h] then
          h.cb(name)
        end
      end
    end)
    return #handlers
  end

  --- Deterministic pseudo-random bytes (the real core reads the kernel's).
  function fake.random(n)
    local out = {}
    for i = 1, n do
      state.random = (state.random * 1103515245 + 12345) % 2147483648
      out[i] = string.char(state.random % 256)
    end
    return table.concat(out)
  end

  --- Directories are made in the simulated world only (recorded in `fake.dirs()`).
  function fake.mkdir(path, _mode)
    state.dirs = state.dirs or {}
    if state.dirs[path] then
      return nil, ('mkdir %s: file exists'):format(path), 'EEXIST'
    end
    state.dirs[path] = true
    return true
  end

  --- An sd_notify socket at `path`: datagrams sent by processes (behaviour `notify`, or
  -- `p:notify(msg)`) reach `cb(msg, sender_pid)` from the loop.
  function fake.notify_listen(path, cb)
    assert(type(cb) == 'function', 'fake notify_listen: callback expected')
    local l = { path = path }
    state.notify[path] = { cb = cb, l = l }
    function l.close()
      if state.notify[path] and state.notify[path].l == l then
        state.notify[path] = nil
      end
    end
    return setmetatable(l, { __close = l.close })
  end
end

return M
