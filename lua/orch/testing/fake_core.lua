--- An `orch.core` look-alike with a virtual clock and scripted processes: the simulated world
-- of `orch test` (orch.testing) and of the project's own unit specs (spec/support/fake_core.lua
-- returns this module). Install it before any orch module is required (sched requires
-- orch.core at load):
--
--     insulate('...', function()
--       local fake = require('orch.testing.fake_core').new()
--       package.loaded['orch.core'] = fake
--       local orch = require 'orch'
--       ...
--
-- Time is virtual: `run()` fires timers in due order (ties in start order) and jumps the clock,
-- so a 30 s backoff costs nothing. Callbacks (timers, exits, output, probes) are delivered from
-- `run()`, never synchronously from the call that caused them, as libuv does.
--
-- Processes are scripted per command with `fake:program(name, behaviour)`; `name` matches the
-- whole argv joined by spaces, else argv[1], else the script of `/bin/sh -c <script>`. Before
-- that, `fake:program_entry(id, behaviour)` scripts the processes of one entry (the `name` of
-- the spawn: orch.process passes the entry id), and after it `fake:program_pattern(pat,
-- behaviour)` (a Lua pattern on the argv joined by spaces, first added first), then
-- `fake:program_default(behaviour)`; without any a process runs until signalled.
-- A behaviour is a function `(p)` or a table:
--   exit = ms, code = n, signal = 'SIGX'   exit after ms (nil: run until signalled)
--   stdout = string|{...}, stderr = ...     written at spawn, or `output_after` ms later
--   listen = port, listen_after = ms        the port counts as listening while alive
--   on_term = 'die' (default) | 'ignore' | ms   reaction to SIGTERM; with ms, exit ms later
--     with `term_code` (default 0), or by SIGTERM when term_code is nil and term_signal is set
--   spawn_error = {msg, code}              core.spawn fails
--   runs = {b1, b2, ...}                    one behaviour per spawn of this name (last repeats)
--   crash_on = n | {n, ...}, crash_after = ms   the nth spawn(s) exit 1 after ms (default 100)
--   http = status                           what an HTTP GET to a port it listens on answers
--                                           (default 200 while listening)
--   notify = ms, notify_message = text      send sd_notify (default READY=1) after ms to the
--                                           NOTIFY_SOCKET of its environment
--   memory = MiB, memory_after = ms         its memory use: above the `memory.max` of its
--                                           cgroup (exec.limits.memory), the OOM killer
--                                           SIGKILLs it (ms after the spawn)
-- The process object `p` has: pid, argv, opts, t0, signals ({sig, t}), alive, n (spawn index of
-- this name), and methods p:exit(code, signal), p:after(ms, fn), p:write(stream, chunk),
-- p:listen(port), p:unlisten(port), p.on_signal = function(p, sig) ... end.
-- @module orch.testing.fake_core
local fake_cgroup = require 'orch.testing.fake_cgroup'

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

local DEFAULT_ENV = { PATH = '/usr/local/bin:/usr/bin:/bin', HOME = '/root', LANG = 'C' }
local PASSWD = {
  root = { name = 'root', uid = 0, gid = 0, dir = '/root', shell = '/bin/sh' },
  nobody = { name = 'nobody', uid = 65534, gid = 65534, dir = '/nonexistent',
    shell = '/usr/sbin/nologin' },
  app = { name = 'app', uid = 1000, gid = 1000, dir = '/home/app', shell = '/bin/sh' },
}

--- The port of an http(s) URL (explicit, else 80/443), or nil.
function M.url_port(url)
  local scheme, rest = tostring(url):match('^(%a+)://([^/]*)')
  if not scheme then
    return nil
  end
  local port = rest:match(':(%d+)$')
  if port then
    return math.tointeger(tonumber(port))
  end
  return scheme:lower() == 'https' and 443 or 80
end

function M.new()
  local fake = {}
  local st

  --- Forget everything: clock to 0, no timers, no processes, no scripts.
  function fake.reset()
    st = {
      now = 0, seq = 0, timers = {}, stopped = false,
      procs = {}, by_pid = {}, programs = {}, counts = {}, pid = 1000,
      ports = {}, port_override = {}, http = {}, tcp = {}, probes = {},
      by_entry = {}, patterns = {}, notify = {}, signals = {}, random = 0x2545F491,
      heap = {}, hn = 0, -- the armed timers by (due, seq); stale entries are skipped
      env = {}, limit = 12 * 3600 * 1000, max_events = 300000,
    }
    for k, v in pairs(DEFAULT_ENV) do
      st.env[k] = v
    end
  end
  fake.reset()

  -- Timers ------------------------------------------------------------------------------------
  -- A binary heap of {due, seq, t}: an entry is stale once its timer was stopped or re-armed
  -- (its seq moved on). O(log n) per event: 50 entries for an hour is ~200k events.
  local function heap_push(t)
    local h = st.heap
    local n = st.hn + 1
    st.hn = n
    local due, seq = t.due, t.seq
    local e = { due = due, seq = seq, t = t }
    while n > 1 do
      local up = n // 2
      local p = h[up]
      if due < p.due or (due == p.due and seq < p.seq) then
        h[n] = p
        n = up
      else
        break
      end
    end
    h[n] = e
  end

  local function heap_pop()
    local h, n = st.heap, st.hn
    local last = h[n]
    h[n] = nil
    n = n - 1
    st.hn = n
    if n == 0 then
      return
    end
    local due, seq = last.due, last.seq
    local i = 1
    while true do
      local l = 2 * i
      if l > n then
        break
      end
      local c = h[l]
      local r = l + 1
      if r <= n then
        local rc = h[r]
        if rc.due < c.due or (rc.due == c.due and rc.seq < c.seq) then
          c, l = rc, r
        end
      end
      if c.due < due or (c.due == due and c.seq < seq) then
        h[i] = c
        i = l
      else
        break
      end
    end
    h[i] = last
  end

  -- The earliest armed timer (unref'd ones too), or nil.
  local function first()
    local h = st.heap
    while st.hn > 0 do
      local e = h[1]
      if e.t.on and e.t.seq == e.seq then
        return e.t
      end
      heap_pop()
    end
    return nil
  end

  local Timer = {}
  Timer.__index = Timer
  Timer.__name = 'orch.timer'

  function Timer:start(timeout, rep, cb)
    assert(not self.closed, 'fake timer: closed')
    assert(type(cb) == 'function', 'fake timer: callback expected')
    st.seq = st.seq + 1
    self.due, self.rep, self.cb, self.seq, self.on = st.now + math.max(0, timeout), rep, cb,
      st.seq, true
    st.timers[self] = true
    heap_push(self)
  end

  function Timer:stop()
    self.on = false
    st.timers[self] = nil
  end

  function Timer:close()
    self:stop()
    self.closed = true
  end

  function Timer:active()
    return self.on == true
  end

  --- An unref'd timer does not keep `run()` going on its own (like uv_unref).
  function Timer:unref()
    self.unrefd = true
  end

  Timer.__close = Timer.close

  function fake.timer()
    return setmetatable({}, Timer)
  end

  -- An internal one-shot event at now + ms.
  local function at(ms, fn)
    local t = fake.timer()
    t.internal = true
    t:start(ms, 0, fn)
    return t
  end
  fake._at = at

  local function earliest()
    local alive
    for t in pairs(st.timers) do
      if not t.unrefd then
        alive = true
        break
      end
    end
    if not alive then
      return nil
    end
    return first()
  end

  function fake.run(mode)
    st.stopped = false
    local n = 0
    while true do
      local t = earliest()
      if not t then
        return false
      end
      if mode == 'nowait' and t.due > st.now then
        return true
      end
      if t.due > st.now then
        st.now = t.due
      end
      if st.now > st.limit then
        error(('fake_core: virtual time limit of %d ms exceeded'):format(st.limit), 0)
      end
      if t.rep and t.rep > 0 then
        st.seq = st.seq + 1
        t.due, t.seq = st.now + t.rep, st.seq
        heap_push(t)
      else
        t:stop()
      end
      local ok, err = xpcall(t.cb, debug.traceback)
      if not ok then
        error(err, 0)
      end
      n = n + 1
      if n > st.max_events then
        error('fake_core: too many events in one run (a busy loop?)', 0)
      end
      if st.stopped or mode == 'once' then
        return earliest() ~= nil
      end
    end
  end

  function fake.stop()
    st.stopped = true
  end

  --- The due time of the next timer (unref'd ones too), or nil when none is armed.
  function fake.next_due()
    local t = first()
    return t and t.due
  end

  --- Fire the next timer (the clock jumps to it); false when none is armed. orch.testing
  -- drives the world with it, one event at a time.
  function fake.step()
    local best = first()
    if not best then
      return false
    end
    st.now = math.max(st.now, best.due)
    if best.rep and best.rep > 0 then
      st.seq = st.seq + 1
      best.due, best.seq = st.now + best.rep, st.seq
      heap_push(best)
    else
      best:stop()
    end
    local ok, err = xpcall(best.cb, debug.traceback)
    if not ok then
      error(err, 0)
    end
    return true
  end

  --- Let the clock reach `t` with nothing happening (never backwards).
  function fake.idle_until(t)
    st.now = math.max(st.now, t)
  end

  --- Call `fn(p, sig)` whenever a simulated process receives a signal.
  function fake.on_receive(a, b)
    st.on_receive = (a == fake) and b or a
  end

  --- Set (or, with nil, unset) a variable of the environment orch sees (core.environ).
  function fake.setenv(a, b, c)
    if a == fake then
      a, b = b, c
    end
    st.env[a] = b
  end

  function fake.now()
    return st.now
  end

  function fake.update_time()
  end

  function fake.hrtime()
    return st.now * 1000000
  end

  -- Preemption: the same primitive as src/preempt.c (core.preempt / core.preempted), as a Lua
  -- hook on the coroutine. A busy loop does not move the virtual clock, so the deadline is
  -- measured in CPU time (os.clock), from the first call of the hook after a resume (at most
  -- 10000 instructions in): most resumes end before it, and cost no clock reading at all.
  local preempt_states = setmetatable({}, { __mode = 'k' })

  -- One hook for every coroutine (it finds its state by the running coroutine): a state never
  -- refers to its coroutine, so the weak table lets finished ones go at once.
  local function hook(event, line)
    local co = coroutine.running()
    local s = preempt_states[co]
    if not s then
      return
    end
    local info = debug.getinfo(2, 'S')
    local spared = s.spared and info and info.source:sub(1, #s.spared) == s.spared
    if event == 'line' and s.on_line and not spared then
      s.on_line(info.source, line)
    end
    if not s.preempted then
      local now = os.clock() * 1000
      s.t0 = s.t0 or now
      if now - s.t0 <= s.ms or spared then
        return
      end
      s.preempted, s.hook_preempted = true, true
      debug.sethook(co, hook, (s.on_line and not s.lines_off) and 'l' or '', 1)
    elseif spared then
      return
    end
    local where = debug.getinfo(2, 'Sl')
    local pos = where and where.currentline > 0
      and (where.short_src .. ':' .. where.currentline .. ': ') or ''
    error(pos .. (s.message or 'ran past its deadline without yielding'), 0)
  end

  function fake.preempt(co, ms, opts)
    assert(type(co) == 'thread', "bad argument #1 to 'preempt' (coroutine expected)")
    if ms == nil then
      preempt_states[co] = nil
      debug.sethook(co)
      return
    end
    assert(math.type(ms) == 'integer' and ms > 0,
      "bad argument #2 to 'preempt' (positive number of ms expected)")
    assert(opts == nil or type(opts) == 'table', "bad argument #3 to 'preempt'")
    local s = preempt_states[co] or {}
    preempt_states[co] = s
    if opts then
      s.message, s.spared, s.on_line = opts.message, opts.spared, opts.on_line
    end
    s.ms, s.t0, s.preempted = ms, nil, false
    -- the hook is set again only when it changed (a re-arm at each resume is the common case)
    local mask = (s.on_line and not s.lines_off) and 'l' or ''
    if not s.set or s.mask ~= mask or s.hook_preempted or debug.gethook(co) ~= hook then
      s.set, s.mask, s.hook_preempted = true, mask, false
      debug.sethook(co, hook, mask, 10000)
    end
  end

  -- core.preempt_lines(co, on): pause (false) or resume (true) the on_line reports of `co`;
  -- returns whether they were on.
  function fake.preempt_lines(co, on)
    assert(type(co) == 'thread', "bad argument #1 to 'preempt_lines' (coroutine expected)")
    local s = preempt_states[co]
    if not s then
      return false
    end
    local was = s.on_line ~= nil and not s.lines_off
    s.lines_off = not on or nil
    if not s.preempted then
      local mask = (s.on_line and not s.lines_off) and 'l' or ''
      s.set, s.mask, s.hook_preempted = true, mask, false
      debug.sethook(co, hook, mask, 10000)
    end
    return was
  end

  function fake.preempted(co)
    assert(type(co) == 'thread', "bad argument #1 to 'preempted' (coroutine expected)")
    local s = preempt_states[co]
    return s ~= nil and s.preempted == true
  end

  function fake.environ()
    local out = {}
    for k, v in pairs(st.env) do
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
    return FAKE_EPOCH + st.now / 1000
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
      st.signals[self] = true
    end
    function s.stop(self)
      st.signals[self] = nil
    end
    function s.close(self)
      st.signals[self] = nil
    end
    return setmetatable(s, { __close = s.close })
  end

  --- Deliver signal `name` to orch itself (its handlers run from the loop, as libuv's do).
  function fake.raise(a, b)
    local name = a == fake and b or a
    local handlers = {}
    for h in pairs(st.signals) do
      if h.name == name then
        handlers[#handlers + 1] = h
      end
    end
    at(0, function()
      for _, h in ipairs(handlers) do
        if st.signals[h] then
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
      st.random = (st.random * 1103515245 + 12345) % 2147483648
      out[i] = string.char(st.random % 256)
    end
    return table.concat(out)
  end

  --- Directories are made in the simulated world only (recorded in `fake.dirs()`).
  function fake.mkdir(path, _mode)
    st.dirs = st.dirs or {}
    if st.dirs[path] then
      return nil, ('mkdir %s: file exists'):format(path), 'EEXIST'
    end
    st.dirs[path] = true
    return true
  end

  --- An sd_notify socket at `path`: datagrams sent by processes (behaviour `notify`, or
  -- `p:notify(msg)`) reach `cb(msg, sender_pid)` from the loop.
  function fake.notify_listen(path, cb)
    assert(type(cb) == 'function', 'fake notify_listen: callback expected')
    local l = { path = path }
    st.notify[path] = { cb = cb, l = l }
    function l.close()
      if st.notify[path] and st.notify[path].l == l then
        st.notify[path] = nil
      end
    end
    return setmetatable(l, { __close = l.close })
  end

  -- Processes -------------------------------------------------------------------------------
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
      st.ports[port] = (st.ports[port] or 0) + 1
    end
  end

  function Proc:unlisten(port)
    if self.ports[port] then
      self.ports[port] = nil
      st.ports[port] = st.ports[port] - 1
    end
  end

  --- Exit now (delivered from the loop): EOF on the pipes, then on_exit(code, signal).
  function Proc:exit(code, signal)
    if not self.alive then
      return
    end
    self.alive = false
    self.t_exit = st.now
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

  --- Send an sd_notify datagram to the NOTIFY_SOCKET of the process's environment.
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

  function Proc:notify(msg)
    local path = self:getenv('NOTIFY_SOCKET')
    local l = path and st.notify[path]
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
    p.signals[#p.signals + 1] = { sig = sig, t = st.now }
    if st.on_receive then
      st.on_receive(p, sig)
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

  local function compile(b)
    if type(b) == 'function' or b == nil then
      return b
    end
    return function(p)
      if b.runs then
        local sub = b.runs[math.min(p.n, #b.runs)]
        local f = compile(sub)
        if f then
          f(p)
        end
        return
      end
      local function output()
        for _, stream in ipairs { 'stdout', 'stderr' } do
          local out = b[stream]
          if type(out) == 'string' then
            p:write(stream, out)
          elseif type(out) == 'table' then
            for _, c in ipairs(out) do
              p:write(stream, c)
            end
          end
        end
      end
      if (b.output_after or 0) > 0 then
        p:after(b.output_after, output)
      else
        output()
      end
      if b.listen then
        if b.listen_after and b.listen_after > 0 then
          p:after(b.listen_after, function()
            p:listen(b.listen)
          end)
        else
          p:listen(b.listen)
        end
      end
      p.http, p.memory = b.http, b.memory
      if b.notify then
        p:after(b.notify, function()
          p:notify(b.notify_message or 'READY=1')
        end)
      end
      local crash = b.crash_on
      if type(crash) == 'number' then
        crash = { crash }
      end
      for _, k in ipairs(crash or {}) do
        if k == p.n then
          p:after(b.crash_after or 100, function()
            p:exit(1, nil)
          end)
        end
      end
      if b.exit then
        p:after(b.exit, function()
          p:exit(b.code or (b.signal == nil and 0 or nil), b.signal)
        end)
      end
      local on_term = b.on_term or 'die'
      if on_term ~= 'die' then
        p.on_signal = function(q, sig)
          if sig ~= 'SIGTERM' then
            q:exit(nil, sig)
          elseif type(on_term) == 'number' and not q.term_pending then
            q.term_pending = true
            q:after(on_term, function()
              if b.term_code == nil and b.term_signal then
                q:exit(nil, b.term_signal)
              else
                q:exit(b.term_code or 0, nil)
              end
            end)
          end
        end
      end
    end
  end

  local function key_of(argv)
    local joined = table.concat(argv, ' ')
    if st.programs[joined] then
      return joined
    end
    if st.programs[argv[1]] then
      return argv[1]
    end
    if (argv[1] == '/bin/sh' or argv[1] == 'sh') and argv[2] == '-c' and argv[3]
      and st.programs[argv[3]] then
      return argv[3]
    end
    if (argv[1] == '/bin/sh' or argv[1] == 'sh') and argv[2] == '-c' and argv[3] then
      return argv[3]
    end
    return argv[1]
  end

  --- Script the processes started as `name` (see the module doc).
  function fake.program(name, behaviour)
    st.programs[name] = behaviour
  end
  -- also callable as a method
  local program = fake.program
  fake.program = function(a, b, c)
    if a == fake then
      return program(b, c)
    end
    return program(a, b)
  end

  -- The key and behaviour of a spawn: by entry, by command, by pattern, the default.
  local function behaviour_of(argv, opts)
    if opts.name ~= nil and st.by_entry[opts.name] ~= nil then
      return 'entry:' .. opts.name, st.by_entry[opts.name]
    end
    local key = key_of(argv)
    if st.programs[key] ~= nil then
      return key, st.programs[key]
    end
    local joined = table.concat(argv, ' ')
    for _, pb in ipairs(st.patterns) do
      if joined:find(pb[1]) then
        return 'pattern:' .. pb[1], pb[2]
      end
    end
    return key, st.default
  end

  --- Script the processes of entry `id` (the `name` a spawn carries).
  function fake.program_entry(a, b, c)
    if a == fake then
      a, b = b, c
    end
    st.by_entry[a] = b
  end

  --- Script the processes whose argv, joined by spaces, matches the Lua pattern `pat`.
  function fake.program_pattern(a, b, c)
    if a == fake then
      a, b = b, c
    end
    for _, pb in ipairs(st.patterns) do
      if pb[1] == a then
        pb[2] = b
        return
      end
    end
    st.patterns[#st.patterns + 1] = { a, b }
  end

  --- The behaviour of a process nothing else scripts.
  function fake.program_default(a, b)
    st.default = (a == fake) and b or a
  end

  function fake.spawn(argv, opts, on_exit)
    assert(type(argv) == 'table' and #argv > 0, 'fake spawn: argv expected')
    opts = opts or {}
    local key, b = behaviour_of(argv, opts)
    local n = (st.counts[key] or 0) + 1
    st.counts[key] = n
    local behaviour = b
    if type(b) == 'table' and b.runs then
      behaviour = b.runs[math.min(n, #b.runs)]
    end
    if type(behaviour) == 'table' and behaviour.spawn_error then
      local e = behaviour.spawn_error
      st.spawn_errors = (st.spawn_errors or 0) + 1
      return nil, e[1] or ("spawn '" .. argv[1] .. "': no such file or directory"),
        e[2] or 'ENOENT', e[3] or 'exec'
    end
    local jmsg, jcode = fake._cgroup_join(opts.cgroup)
    if jmsg then
      return nil, jmsg, jcode, 'cgroup'
    end
    st.pid = st.pid + 1
    local p = setmetatable({
      pid = st.pid, argv = table.move(argv, 1, #argv, 1, {}), opts = opts, key = key, n = n,
      t0 = st.now, signals = {}, alive = true, ports = {}, pending = {}, inherited = {},
      on_exit = on_exit, name = opts.name, cgroup = opts.cgroup,
    }, Proc)
    st.procs[#st.procs + 1] = p
    st.by_pid[p.pid] = p
    local f = compile(behaviour)
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
    local p = st.by_pid[math.abs(pid)]
    if not p or not p.alive then
      return nil, ('kill %d: no such process'):format(pid), 'ESRCH'
    end
    receive(p, sig or 'SIGTERM')
    return true
  end

  --- Every process spawned so far (optionally only those of `name`), in spawn order.
  function fake.procs(name)
    if name == fake then
      name = nil
    end
    local out = {}
    for _, p in ipairs(st.procs) do
      if name == nil or p.key == name then
        out[#out + 1] = p
      end
    end
    return out
  end
  local procs = fake.procs
  fake.procs = function(a, b)
    if a == fake then
      return procs(b)
    end
    return procs(a)
  end

  --- The spawn times of `name`.
  function fake.spawn_times(a, b)
    local name = (a == fake) and b or a
    local out = {}
    for _, p in ipairs(procs(name)) do
      out[#out + 1] = p.t0
    end
    return out
  end

  --- The /proc scan of the real core: every live fake process, tagged when its spawn carried
  -- `tag` (a fake process leaves no descendants behind).
  function fake.proc_list(tag)
    local out = {}
    for _, p in ipairs(st.procs) do
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
    local p = st.by_pid[pid]
    return p and p.alive and pid or nil
  end

  --- Processes still alive (or not yet reaped).
  function fake.live()
    local out = {}
    for _, p in ipairs(st.procs) do
      if p.alive or not p.reaped then
        out[#out + 1] = p
      end
    end
    return out
  end

  --- Number of spawn failures returned so far.
  function fake.spawn_error_count()
    return st.spawn_errors or 0
  end

  -- Probes ------------------------------------------------------------------------------------
  local Probe = {}
  Probe.__index = Probe
  Probe.__name = 'orch.probe'

  function Probe:close()
    if not self.closed then
      self.closed = true
      st.probes[self] = nil
      if self.timer then
        self.timer:close()
      end
    end
  end
  Probe.__close = Probe.close

  function Probe:active()
    return not self.closed
  end

  local function new_probe(delay, fn)
    local pr = setmetatable({}, Probe)
    st.probes[pr] = true
    pr.timer = at(delay, function()
      if not pr.closed then
        pr.closed = true
        st.probes[pr] = nil
        fn()
      end
    end)
    return pr
  end

  --- Override what port_listening says for `port` (true/false, or {nil, msg, code}); nil to
  -- fall back to the scripted processes' ports.
  function fake.set_port(a, b, c)
    local port, v = a, b
    if a == fake then
      port, v = b, c
    end
    st.port_override[port] = v
  end

  function fake.port_listening(port, _)
    assert(math.type(port) == 'integer' and port >= 1 and port <= 65535,
      "bad argument #1 to 'port_listening' (port must be 1..65535)")
    st.port_checks = (st.port_checks or 0) + 1
    local o = st.port_override[port]
    if o ~= nil then
      if type(o) == 'table' then
        return table.unpack(o, 1, 3)
      end
      return o
    end
    return (st.ports[port] or 0) > 0
  end

  --- Script core.http_get for `url`: {status = n, delay = ms} | {err = text, code = CODE,
  -- delay = ms} | 'hang' | function(url, opts) returning one of those.
  function fake.set_http(a, b, c)
    local url, v = a, b
    if a == fake then
      url, v = b, c
    end
    st.http[url] = v
  end

  function fake.http_get(url, opts, cb)
    assert(type(cb) == 'function', 'fake http_get: callback expected')
    opts = opts or {}
    local timeout = opts.timeout or 1000
    local s = st.http[url]
    if type(s) == 'function' then
      s = s(url, opts)
    end
    if s == nil then
      s = { err = 'Failed to connect: Connection refused', code = 'ECONNREFUSED' }
      local port = M.url_port(url)
      if port and fake.port_listening(port) then
        s = { status = 200 } -- a scripted process listens there: it answers its `http` status
        for _, p in ipairs(st.procs) do
          if p.alive and p.ports[port] and p.http then
            s = type(p.http) == 'table' and p.http or { status = p.http }
          end
        end
      end
    end
    if s == 'hang' or (type(s) == 'table' and (s.delay or 0) > timeout) then
      return new_probe(timeout, function()
        cb(nil, timeout, 'Timeout was reached', 'ETIMEDOUT')
      end)
    end
    local delay = s.delay or 0
    return new_probe(delay, function()
      if s.status then
        cb(s.status, delay)
      else
        cb(nil, delay, s.err, s.code)
      end
    end)
  end

  --- Script core.tcp_connect for `port`: {err = CODE, delay = ms} | 'hang'.
  function fake.set_tcp(a, b, c)
    local port, v = a, b
    if a == fake then
      port, v = b, c
    end
    st.tcp[port] = v
  end

  function fake.tcp_connect(_, port, timeout, cb)
    local s = st.tcp[port]
    if s == 'hang' then
      return new_probe(timeout, function()
        cb('ETIMEDOUT', timeout)
      end)
    end
    s = s or {}
    local delay = s.delay or 0
    return new_probe(delay, function()
      if s.err then
        cb(s.err, delay)
      elseif fake.port_listening(port) then
        cb(nil, delay)
      else
        cb('ECONNREFUSED', delay)
      end
    end)
  end

  --- Probe handles not yet completed or closed.
  function fake.open_probes()
    local n = 0
    for _ in pairs(st.probes) do
      n = n + 1
    end
    return n
  end

  --- Active non-internal timers (leak check).
  function fake.active_timers()
    local n = 0
    for t in pairs(st.timers) do
      if not t.internal then
        n = n + 1
      end
    end
    return n
  end

  function fake.active_count()
    local n = 0
    for _ in pairs(st.timers) do
      n = n + 1
    end
    return n
  end

  --- Number of port_listening calls so far.
  function fake.port_checks()
    return st.port_checks or 0
  end

  -- the cgroup v2 tree of process tracking and exec.limits (none until `cgroup_root`)
  fake_cgroup.install(fake)

  fake.is_fake = true
  return fake
end

return M
