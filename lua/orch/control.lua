--- The control socket of `orch run`, and its client.
--
-- `orch run` listens on a Unix stream socket (mode 0600 in a 0700 directory) and answers
-- requests from the same uid or root (checked with SO_PEERCRED on every connection). The
-- protocol is one JSON object per line each way, versioned: every object carries `"v":1`.
--
-- Requests: `{"v":1, "cmd": <command>, ...}`, answered in order on each connection:
--
--   ping                               -> {ok, type="pong", orch}
--   status  [id] [watch]               -> {ok, type="status", orch, entries}; with watch, a new
--                                         {type="status", ...} after every change
--   logs    [ids] [n] [follow]         -> {ok, type="logs", ids, entries}, then the last n lines
--                                         per entry as {type="line", id, seq, ts, stream, line}
--                                         oldest first, then {type="end"} or, with follow, every
--                                         new line as it comes
--   stop|start|restart  id             -> {ok, type="stopped"|"started"|"restarted", id, ids}
--   signal  id signal                  -> {ok, type="signalled", id, signal, pid}
--   shutdown                           -> {ok, type="stopping"}; the connection closes when orch
--                                         has stopped
--
-- Errors: `{"v":1, "ok":false, "error":{"code":..., "message":...}}` with code `bad-json`,
-- `too-large` (a line over 64 KiB), `bad-request`, `bad-version`, `unknown-command`,
-- `unknown-entry`, `bad-signal`, `no-process`, `unavailable` (no graph yet, or stopping),
-- `forbidden` (another uid: then the connection is closed) or `internal`.
--
-- Bounds: a request line is at most 64 KiB; at most 16 requests are read ahead (reading pauses
-- beyond); a client with more than 1 MiB waiting to be written is dropped.
-- @module orch.control
local core = require 'orch.core'
local sched = require 'orch.sched'
local log = require 'orch.log'
local status = require 'orch.status'

local M = {}

--- The protocol version.
M.VERSION = 1

--- Longest request line (bytes, without its newline).
M.MAX_REQUEST = 64 * 1024

--- Bytes waiting to be written to a client before it is dropped.
M.MAX_QUEUE = 1024 * 1024

--- The log backlog is written while less than this is waiting.
M.DUMP_HIGH = 256 * 1024

--- Requests read ahead per connection; reading pauses beyond.
M.MAX_PENDING = 16

--- Status watchers get at most one update per this many ms.
M.WATCH_DELAY = 100

--- Lines per entry `logs` sends by default.
M.DEFAULT_LINES = 10

--- How long a connection that was answered may take to flush before it is closed (ms).
M.LINGER = 5000

local cjson_mod
local function cjson()
  if not cjson_mod then
    cjson_mod = require('cjson').new()
    cjson_mod.decode_max_depth(32)
  end
  return cjson_mod
end

-----------------------------------------------------------------------------------------------
-- Where the socket is

local function basename(path)
  path = path:gsub('/+$', '')
  return path:match('([^/]*)$')
end

local function dirname(path)
  local d = path:match('^(.*)/[^/]*$')
  if d == nil then
    return '.'
  end
  return d == '' and '/' or d
end
M.dirname = dirname

-- `path` made absolute against `cwd`, with `.` and `..` components resolved textually.
local function absolute(path, cwd)
  if path:sub(1, 1) ~= '/' then
    path = (cwd or '/') .. '/' .. path
  end
  local parts = {}
  for part in path:gmatch('[^/]+') do
    if part == '..' then
      parts[#parts] = nil
    elseif part ~= '.' then
      parts[#parts + 1] = part
    end
  end
  return '/' .. table.concat(parts, '/')
end

--- Check a `--name`: letters, digits, `.`, `_` and `-`, not starting with a dot.
-- @treturn string|nil the name
-- @treturn string why not
function M.check_name(name)
  if type(name) ~= 'string' or name == '' then
    return nil, 'the name must not be empty'
  end
  if #name > 64 then
    return nil, ("the name '%s' is too long (64 characters at most)"):format(name)
  end
  if not name:match('^[%w_%-][%w._%-]*$') then
    return nil, ("invalid name '%s' (use letters, digits, '.', '_' and '-', not a leading '.')")
      :format(name)
  end
  return name
end

--- The default name of an orch: the name of the directory holding `script` (or of `cwd` when
-- there is no script), with characters outside `[A-Za-z0-9._-]` replaced by `_`.
function M.default_name(script, cwd)
  cwd = cwd or core.cwd() or '/'
  local dir = script and dirname(absolute(script, cwd)) or absolute('.', cwd)
  local name = basename(dir)
  if name == '' then
    return 'root'
  end
  name = name:gsub('[^%w._%-]', '_'):gsub('^%.', '_')
  return name:sub(1, 64)
end

--- The directory of the default sockets: `/run/orch` as root, else `$XDG_RUNTIME_DIR/orch`,
-- else `/tmp/orch-<uid>`.
function M.default_dir(uid, getenv)
  uid = uid or core.getuid()
  getenv = getenv or os.getenv
  if uid == 0 then
    return '/run/orch'
  end
  local xdg = getenv('XDG_RUNTIME_DIR')
  if xdg and xdg:sub(1, 1) == '/' then
    return (xdg:gsub('/+$', '')) .. '/orch'
  end
  return ('/tmp/orch-%d'):format(uid)
end

--- Where the control socket is: `opts.control` (a path), else `<default_dir>/<name>.sock` with
-- `opts.name`, else the default name of `opts.script` (or of the current directory).
-- @treturn table|nil `{path, dir, name, default}` (`default`: the directory is orch's own)
-- @treturn string the error
function M.resolve(opts)
  opts = opts or {}
  if opts.control then
    if opts.control == '' then
      return nil, '--control needs a path'
    end
    local path = absolute(opts.control, opts.cwd or core.cwd())
    return { path = path, dir = dirname(path), name = opts.name, default = false }
  end
  local name, err
  if opts.name then
    name, err = M.check_name(opts.name)
    if not name then
      return nil, err
    end
  else
    name = M.default_name(opts.script, opts.cwd)
  end
  local dir = M.default_dir(opts.uid, opts.getenv)
  return { path = dir .. '/' .. name .. '.sock', dir = dir, name = name, default = true }
end

--- The names of the sockets in a default directory (the orchs probably running), sorted.
function M.list(dir)
  local names = {}
  for _, f in ipairs(core.readdir(dir) or {}) do
    local n = f:match('^(.+)%.sock$')
    if n then
      names[#names + 1] = n
    end
  end
  table.sort(names)
  return names
end

-----------------------------------------------------------------------------------------------
-- Small helpers

local function is_array(t)
  return type(t) == 'table' and (#t > 0 or next(t) == nil)
end

-- Decoded JSON numbers are floats: make the integral ones integers again (pids, counts).
local function integers(v, depth)
  if type(v) == 'table' and depth < 40 then
    for k, x in pairs(v) do
      if math.type(x) == 'float' and x == math.floor(x) and x >= math.mininteger
        and x <= math.maxinteger then
        v[k] = math.tointeger(x)
      elseif type(x) == 'table' then
        integers(x, depth + 1)
      end
    end
  end
  return v
end

--- Decode one JSON line (lua-cjson): integral numbers become integers, `null` stays
-- `cjson.null`. Raises on malformed input.
function M.decode(line)
  return integers(cjson().decode(line), 0)
end

local function iso(t)
  return t and log.iso_time(t) or nil
end

--- Seconds since the epoch of an ISO 8601 UTC time as orch writes it
-- (`2024-05-01T12:00:00.123Z`), or nil.
function M.parse_time(s)
  if type(s) ~= 'string' then
    return nil
  end
  local y, mo, d, h, mi, sec, frac = s:match('^(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)%.?(%d*)Z$')
  if not y then
    return nil
  end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  -- days from civil (proleptic Gregorian), as in H. Hinnant's algorithm
  y = mo <= 2 and y - 1 or y
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (mo + (mo > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  local days = era * 146097 + doe - 719468
  local t = days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(sec)
  if frac ~= '' then
    t = t + tonumber('0.' .. frac)
  end
  return t
end

-----------------------------------------------------------------------------------------------
-- Server

local Server = {}
Server.__index = Server

local Conn = {}
Conn.__index = Conn

local function err_obj(code, message)
  return { ok = false, error = { code = code, message = message } }
end

function Conn:send(obj)
  if self.closed then
    return false
  end
  obj.v = M.VERSION
  local ok, line = pcall(log.encode, obj)
  if not ok then
    line = log.encode({ v = M.VERSION, ok = false,
      error = { code = 'internal', message = 'cannot encode the reply: ' .. tostring(line) } })
  end
  local wok = self.stream:write(line .. '\n')
  if not wok then
    self:close() -- the peer is gone
    return false
  end
  local queued = self.stream:write_queue_size()
  if queued > M.MAX_QUEUE then
    self:close(('control: dropped a client that does not read (%d KiB waiting)%s'):format(
      queued // 1024, self:who()))
    return false
  end
  return true
end

function Conn:fail(code, message)
  return self:send(err_obj(code, message))
end

function Conn:who()
  local p = self.peer
  if not p then
    return ''
  end
  if p.pid and p.pid > 0 then
    return (' (from uid %d, pid %d)'):format(p.uid, p.pid)
  end
  return (' (from uid %d)'):format(p.uid)
end

--- Close now; `reason` is logged as a warning when given.
function Conn:close(reason)
  if self.closed then
    return
  end
  self.closed = true
  if reason then
    self.srv:log(reason, 'warning')
  end
  for _, unsub in ipairs(self.subs) do
    unsub()
  end
  self.subs = {}
  for _, t in ipairs(self.timers) do
    t:close()
  end
  self.timers = {}
  self.stream:close()
  self.srv.conns[self] = nil
  self.wake:set()
end

-- Close once what was written has been flushed (or after LINGER ms); with `wait_eof`, once
-- the peer has hung up too.
function Conn:finish(wait_eof)
  if self.closed or self.finishing then
    return
  end
  self.finishing = true
  local t = core.timer()
  self.timers[#self.timers + 1] = t
  t:start(M.LINGER, 0, function()
    self:close()
  end)
  local ok = self.stream:shutdown(function()
    if not wait_eof then
      self:close()
    end
  end)
  if not ok then
    self:close()
  end
end

function Conn:timer()
  local t = core.timer()
  self.timers[#self.timers + 1] = t
  return t
end

function Conn:push(req)
  self.reqs[#self.reqs + 1] = req
  if #self.reqs >= M.MAX_PENDING and not self.paused then
    self.paused = true
    self.stream:read_stop()
  end
  self.wake:set()
end

-- Split the incoming bytes into request lines.
function Conn:on_chunk(chunk)
  local pos = 1
  while not self.closed do
    local nl = chunk:find('\n', pos, true)
    if not nl then
      local rest = chunk:sub(pos)
      if not self.discarding and rest ~= '' then
        self.buf[#self.buf + 1] = rest
        self.buflen = self.buflen + #rest
        if self.buflen > M.MAX_REQUEST then
          self.buf, self.buflen, self.discarding = {}, 0, true
          self:push({ too_large = true })
        end
      end
      return
    end
    local piece = chunk:sub(pos, nl - 1)
    if self.discarding then
      self.discarding = false -- the end of an oversized line, already answered
    else
      local line = piece
      if self.buflen > 0 then
        self.buf[#self.buf + 1] = piece
        line = table.concat(self.buf)
        self.buf, self.buflen = {}, 0
      end
      if #line > M.MAX_REQUEST then
        self:push({ too_large = true })
      elseif line:find('%S') then
        self:push({ line = line })
      end
    end
    pos = nl + 1
  end
end

function Conn:start_reading()
  self.stream:read_start(function(chunk, err)
    if chunk then
      self:on_chunk(chunk)
      return
    end
    if err then
      self:close()
      return
    end
    self.eof = true
    if self.buflen > 0 and not self.discarding then -- a last request without its newline
      local line = table.concat(self.buf)
      self.buf, self.buflen = {}, 0
      if line:find('%S') then
        self:push({ line = line })
      end
    end
    self.wake:set()
  end)
end

local HANDLERS = {}

function Conn:handle(req)
  if req.too_large then
    return self:fail('too-large', ('request line over %d bytes'):format(M.MAX_REQUEST))
  end
  local line = req.line
  if not line:match('^%s*{') then
    local ok = pcall(cjson().decode, line)
    if not ok then
      return self:fail('bad-json', 'malformed JSON')
    end
    return self:fail('bad-request', 'a request is a JSON object')
  end
  local ok, r = pcall(M.decode, line)
  if not ok then
    return self:fail('bad-json', 'malformed JSON: ' .. tostring(r):gsub('^.-: ', ''))
  end
  if type(r) ~= 'table' then
    return self:fail('bad-request', 'a request is a JSON object')
  end
  for k, v in pairs(r) do
    if v == cjson().null then
      r[k] = nil
    end
  end
  if r.v ~= nil and r.v ~= M.VERSION then
    return self:fail('bad-version', ('unsupported protocol version %s (this orch speaks %d)')
      :format(tostring(r.v), M.VERSION))
  end
  if type(r.cmd) ~= 'string' then
    return self:fail('bad-request', 'the request has no "cmd"')
  end
  local h = HANDLERS[r.cmd]
  if not h then
    local names = {}
    for k in pairs(HANDLERS) do
      names[#names + 1] = k
    end
    table.sort(names)
    return self:fail('unknown-command', ("unknown command '%s' (one of: %s)"):format(
      r.cmd:sub(1, 64), table.concat(names, ', ')))
  end
  local hok, herr = xpcall(h, debug.traceback, self, r)
  if not hok then
    self.srv:log('control: ' .. tostring(herr), 'error')
    return self:fail('internal', 'internal error: ' .. tostring(herr):match('^[^\n]*'))
  end
end

-- The worker task: requests one at a time, in order.
function Conn:work()
  local handled = 0
  while not self.closed do
    if #self.reqs == 0 then
      if self.paused then
        self.paused = false
        self:start_reading()
      end
      if self.eof and #self.subs == 0 then
        self:finish()
        return
      end
      self.wake:clear()
      self.wake:wait()
    else
      local req = table.remove(self.reqs, 1)
      self:handle(req)
      handled = handled + 1
      if handled % 8 == 0 then
        sched.sleep(0) -- let the loop serve others between bursts
      end
      if self.paused and #self.reqs <= M.MAX_PENDING // 2 then
        self.paused = false
        self:start_reading()
      end
    end
  end
end

-- Entry ids of the sink, and a lookup set.
function Server:ids()
  local ids = self.backend.sink:ids()
  local set = {}
  for _, id in ipairs(ids) do
    set[id] = true
  end
  return ids, set
end

local function unknown(conn, id, ids)
  return conn:fail('unknown-entry', ("no entry '%s' (entries: %s)"):format(tostring(id):sub(1,
    128), #ids > 0 and table.concat(ids, ', ') or 'none'))
end

function Server:meta()
  local m = self.backend.meta and self.backend.meta() or {}
  m.ready, m.total = self.backend.sink:counts()
  m.name = m.name or self.name
  m.control = self.path
  return m
end

function Server:status_obj(id)
  local snap
  if id then
    local s = self.backend.sink:get(id)
    snap = { s }
  else
    snap = self.backend.sink:snapshot()
  end
  local entries = status.json_view(snap)
  return { ok = true, type = 'status', orch = self:meta(), entries = entries }
end

function HANDLERS.ping(conn)
  conn:send({ ok = true, type = 'pong', orch = conn.srv:meta() })
end

function HANDLERS.status(conn, r)
  local srv = conn.srv
  local id = r.id
  if id ~= nil then
    if type(id) ~= 'string' then
      return conn:fail('bad-request', '"id" must be a string')
    end
    local ids, set = srv:ids()
    if not set[id] then
      return unknown(conn, id, ids)
    end
  end
  if not conn:send(srv:status_obj(id)) then
    return
  end
  if r.watch then
    local t = conn:timer()
    local pending = false
    local function flush()
      pending = false
      if id and srv.backend.sink:get(id) == nil then
        return -- the entry is gone (a reload)
      end
      local obj = srv:status_obj(id)
      obj.ok = nil
      conn:send(obj)
    end
    local function changed()
      if not pending and not conn.closed then
        pending = true
        t:start(M.WATCH_DELAY, 0, flush)
      end
    end
    conn.subs[#conn.subs + 1] = srv.backend.sink:subscribe(function(ev)
      if ev.type ~= 'output' and ev.type ~= 'log' then
        changed()
      end
    end)
    srv.watchers[conn] = changed
    conn.subs[#conn.subs + 1] = function()
      srv.watchers[conn] = nil
    end
  end
end

local function line_obj(id, rec)
  return { type = 'line', id = id, seq = rec.seq, ts = iso(rec.ts), stream = rec.stream,
    line = rec.line }
end

function HANDLERS.logs(conn, r)
  local srv = conn.srv
  local all, set = srv:ids()
  local ids = r.ids
  if type(ids) == 'string' then
    ids = { ids }
  end
  if ids == nil or (type(ids) == 'table' and next(ids) == nil) then
    ids = all
  elseif not is_array(ids) then
    return conn:fail('bad-request', '"ids" must be an array of entry ids')
  else
    for _, id in ipairs(ids) do
      if type(id) ~= 'string' then
        return conn:fail('bad-request', '"ids" must be an array of entry ids')
      end
      if not set[id] then
        return unknown(conn, id, all)
      end
    end
  end
  local n = r.n
  if n == nil then
    n = M.DEFAULT_LINES
  end
  if math.type(n) ~= 'integer' or n < 0 then
    return conn:fail('bad-request', '"n" must be a non-negative integer')
  end
  local wanted = {}
  for _, id in ipairs(ids) do
    wanted[id] = true
  end
  local follow = r.follow and true or false
  -- Lines that arrive while the backlog is written wait here (bounded like the socket).
  local held, held_bytes, live = {}, 0, false
  if follow then
    conn.subs[#conn.subs + 1] = srv.backend.sink:subscribe(function(ev)
      if ev.type ~= 'output' or not wanted[ev.id] or conn.closed then
        return
      end
      for _, rec in ipairs(ev.lines) do
        if live then
          if not conn:send(line_obj(ev.id, rec)) then
            return
          end
        else
          held[#held + 1] = { ev.id, rec }
          held_bytes = held_bytes + #rec.line + 64
          if held_bytes > M.MAX_QUEUE then
            conn:close('control: dropped a log follower that does not read' .. conn:who())
            return
          end
        end
      end
    end)
  end
  local backlog = {}
  for _, id in ipairs(ids) do
    for _, rec in ipairs(srv.backend.sink:logs(id, n)) do
      backlog[#backlog + 1] = { id, rec }
    end
  end
  table.sort(backlog, function(a, b)
    return a[2].seq < b[2].seq
  end)
  if not conn:send({ ok = true, type = 'logs', ids = log.array(ids), entries = log.array(all),
    follow = follow }) then
    return
  end
  for _, item in ipairs(backlog) do
    while not conn.closed and conn.stream:write_queue_size() > M.DUMP_HIGH do
      sched.sleep(10)
    end
    if conn.closed or not conn:send(line_obj(item[1], item[2])) then
      return
    end
  end
  if not follow then
    conn:send({ type = 'end' })
    return
  end
  for _, item in ipairs(held) do
    if not conn:send(line_obj(item[1], item[2])) then
      return
    end
  end
  held, live = nil, true
end

-- The chain to act on, or nil after replying `unavailable`.
local function chain_for(conn, r)
  if type(r.id) ~= 'string' then
    conn:fail('bad-request', '"id" must be an entry id')
    return nil
  end
  local chain, why = conn.srv.backend.chain()
  if not chain then
    conn:fail('unavailable', why or 'no graph is running')
    return nil
  end
  local by_id = chain._by_id or {}
  if not by_id[r.id] then
    local ids = {}
    for _, e in ipairs(chain:entries()) do
      ids[#ids + 1] = e.id
    end
    unknown(conn, r.id, ids)
    return nil
  end
  return chain
end

local function operation(verb, method, past)
  return function(conn, r)
    local chain = chain_for(conn, r)
    if not chain then
      return
    end
    conn.srv:log(('control: %s %s%s'):format(verb, r.id, conn:who()))
    local ok, ids = pcall(chain[method], chain, r.id)
    if not ok then
      return conn:fail('unavailable', tostring(ids):gsub('^orch: ', ''))
    end
    conn:send({ ok = true, type = past, id = r.id, ids = log.array(ids) })
  end
end

HANDLERS.stop = operation('stop', 'stopEntry', 'stopped')
HANDLERS.start = operation('start', 'startEntry', 'started')
HANDLERS.restart = operation('restart', 'restartEntry', 'restarted')

--- A signal as `SIGNAME` from a name (`HUP`, `sighup`, `SIGHUP`) or a number; nil if unknown.
function M.signal_name(sig)
  if math.type(sig) == 'float' and sig == math.floor(sig) then
    sig = math.tointeger(sig)
  end
  if math.type(sig) == 'integer' then
    return core.signame(sig)
  end
  if type(sig) ~= 'string' then
    return nil
  end
  if sig:match('^%d+$') then
    return core.signame(tonumber(sig))
  end
  local name = sig:upper()
  if name:sub(1, 3) ~= 'SIG' then
    name = 'SIG' .. name
  end
  local ok, num = pcall(core.signum, name)
  if ok and num then
    return name
  end
  return nil
end

function HANDLERS.signal(conn, r)
  local chain = chain_for(conn, r)
  if not chain then
    return
  end
  local name = M.signal_name(r.signal)
  if not name then
    return conn:fail('bad-signal', ("unknown signal '%s'"):format(tostring(r.signal):sub(1, 32)))
  end
  local pid, why = chain:signalEntry(r.id, name)
  if not pid then
    return conn:fail('no-process', why)
  end
  conn.srv:log(('control: sent %s to %s, pid %d%s'):format(name, r.id, pid, conn:who()))
  conn:send({ ok = true, type = 'signalled', id = r.id, signal = name, pid = pid })
end

function HANDLERS.shutdown(conn)
  conn.srv:log('control: shutdown requested' .. conn:who())
  conn:send({ ok = true, type = 'stopping' })
  -- The connection stays open until orch has stopped: the client waits for its end.
  conn.subs[#conn.subs + 1] = function() end
  conn.srv.backend.shutdown()
end

function Server:log(msg, level)
  if self.backend.log then
    self.backend.log(msg, level)
  end
end

function Server:on_connection(stream)
  local pid, uid, gid = stream:peercred()
  if not pid then
    stream:close()
    return
  end
  local conn = setmetatable({
    srv = self,
    stream = stream,
    peer = { pid = pid, uid = uid, gid = gid },
    buf = {},
    buflen = 0,
    reqs = {},
    subs = {},
    timers = {},
    wake = sched.event(),
  }, Conn)
  self.conns[conn] = true
  if uid ~= 0 and uid ~= self.uid then
    self:log(('control: refused a connection from uid %d%s'):format(uid,
      pid > 0 and (' (pid %d)'):format(pid) or ''), 'warning')
    conn:fail('forbidden', ('uid %d may not control this orch (only uid %d and root)'):format(
      uid, self.uid))
    -- Read (and ignore) what it sent until it hangs up: closing with unread input would reset
    -- the connection before it reads the error.
    conn.eof = true
    stream:read_start(function(chunk)
      if not chunk then
        conn:close()
      end
    end)
    conn:finish(true)
    return
  end
  conn:start_reading()
  local task = sched.spawn(function()
    conn:work()
  end)
  task.quiet = true
end

--- Tell status watchers that something outside the sink changed (the orch phase).
function Server:changed()
  for _, fn in pairs(self.watchers) do
    fn()
  end
end

--- Stop listening, close every connection and remove the socket file (when it still is ours).
function Server:close()
  if self.closed then
    return
  end
  self.closed = true
  self.listener:close()
  for conn in pairs(self.conns) do
    conn:close()
  end
  local st = core.lstat(self.path)
  if st and st.ino == self.ino and st.dev == self.dev then
    os.remove(self.path)
  end
end

-- Connect to `path` and wait (in a task) for the outcome: conn or nil, message, code.
local function connect(path, timeout_ms)
  local result
  local ev = sched.event()
  local conn, msg, code = core.unix_connect(path, function(c, m)
    result = { c, m }
    ev:set()
  end)
  if not conn then
    return nil, msg, code
  end
  if not ev:wait(timeout_ms or 5000) then
    conn:close()
    return nil, ("connect '%s': timed out"):format(path), 'ETIMEDOUT'
  end
  if result[1] then
    conn:close()
    return nil, result[2], result[1]
  end
  return conn
end

-- Make sure the socket's directory exists: a default one is created 0700 and must be ours.
local function prepare_dir(where, uid)
  local dir = where.dir
  local st, msg, code = core.lstat(dir)
  if not st and code == 'ENOENT' then
    local ok, merr, mcode = core.mkdir(dir, tonumber('700', 8))
    if not ok and mcode ~= 'EEXIST' then
      return nil, ('cannot create the control directory: %s'):format(merr)
    end
    st, msg = core.lstat(dir)
  end
  if not st then
    return nil, ('cannot use the control directory: %s'):format(msg)
  end
  if st.type ~= 'directory' then
    return nil, ("'%s' is not a directory"):format(dir)
  end
  if where.default then
    if st.uid ~= uid then
      return nil, ("the control directory '%s' belongs to uid %d, not %d"):format(dir, st.uid,
        uid)
    end
    if st.mode ~= tonumber('700', 8) then
      local ok, cerr = core.chmod(dir, tonumber('700', 8))
      if not ok then
        return nil, ('cannot make the control directory private: %s'):format(cerr)
      end
    end
  end
  return true
end

-- What answers on a live socket: a description for the refusal message.
local function describe_live(stream)
  local got = {}
  local ev = sched.event()
  local buf = ''
  stream:read_start(function(chunk)
    if chunk then
      buf = buf .. chunk
      if buf:find('\n', 1, true) then
        ev:set()
      end
    else
      ev:set()
    end
  end)
  stream:write(log.encode({ v = M.VERSION, cmd = 'ping' }) .. '\n')
  ev:wait(1000)
  stream:close()
  local line = buf:match('^([^\n]*)')
  local ok, obj = pcall(M.decode, line or '')
  if ok and type(obj) == 'table' and type(obj.orch) == 'table' then
    local o = obj.orch
    if o.pid then
      got[#got + 1] = 'pid ' .. tostring(o.pid)
    end
    if type(o.script) == 'string' then
      got[#got + 1] = o.script
    end
  end
  return #got > 0 and (' (' .. table.concat(got, ', ') .. ')') or ''
end

--- Listen on the control socket (yields: call it from a task). `where` comes from `resolve`.
-- `backend`: `sink` (the status sink), `meta()` (orch's own fields for `orch`), `chain()` (the
-- running chain, or nil and why), `shutdown()`, `log(msg, level)`. A stale socket (nobody
-- listening) is replaced; a live one is an error.
-- @treturn Server|nil
-- @treturn string the error message (or nil)
-- @treturn string|nil on success, a note to log (a stale socket was replaced); on failure,
-- `'live'` when another orch answers on the socket
function M.listen(where, backend)
  local uid = core.getuid()
  local ok, err = prepare_dir(where, uid)
  if not ok then
    return nil, err
  end
  local path = where.path
  local note
  local st = core.lstat(path)
  if st then
    if st.type ~= 'socket' then
      return nil, ("'%s' exists and is not a socket"):format(path)
    end
    local live, msg, code = connect(path, 2000)
    if live then
      return nil, ('another orch%s is already running with the control socket %s; stop it, '
        .. 'or give this one another --name or --control'):format(describe_live(live), path),
        'live'
    end
    if code ~= 'ECONNREFUSED' and code ~= 'ENOENT' then
      return nil, ('cannot check the control socket: %s'):format(msg)
    end
    if code == 'ECONNREFUSED' then
      local rok, rerr = os.remove(path)
      if not rok then
        return nil, ('cannot remove the stale control socket: %s'):format(rerr)
      end
      note = ('replaced the stale control socket %s'):format(path)
    end
  end
  local self = setmetatable({
    path = path,
    name = where.name,
    backend = backend,
    uid = uid,
    conns = {},
    watchers = {},
  }, Server)
  local listener, lerr = core.unix_listen(path, function(stream)
    if stream then
      self:on_connection(stream)
    end
  end)
  if not listener then
    return nil, ('cannot listen on the control socket: %s'):format(lerr)
  end
  self.listener = listener
  local lst = core.lstat(path)
  self.ino, self.dev = lst and lst.ino, lst and lst.dev
  return self, nil, note
end

-----------------------------------------------------------------------------------------------
-- Client

local Client = {}
Client.__index = Client

--- Longest line a client accepts (a log line of 64 KiB may grow when escaped).
M.CLIENT_MAX_LINE = 8 * 1024 * 1024

--- Connect to the control socket at `path` (yields).
-- @treturn Client|nil
-- @treturn string the error message
-- @treturn string the error code (`ENOENT`, `ECONNREFUSED`, `EACCES`...)
function M.connect(path, timeout_ms)
  local stream, msg, code = connect(path, timeout_ms)
  if not stream then
    return nil, msg, code
  end
  local self = setmetatable({ stream = stream, queue = {}, ev = sched.event(), parts = {},
    plen = 0 }, Client)
  stream:read_start(function(chunk, rerr)
    if not chunk then
      self.eof = rerr or true
      self.ev:set()
      return
    end
    local pos = 1
    while true do
      local nl = chunk:find('\n', pos, true)
      if not nl then
        local rest = chunk:sub(pos)
        self.parts[#self.parts + 1] = rest
        self.plen = self.plen + #rest
        if self.plen > M.CLIENT_MAX_LINE then
          self.eof = 'a reply line is too long'
          stream:close()
        end
        break
      end
      local line = chunk:sub(pos, nl - 1)
      if self.plen > 0 then
        self.parts[#self.parts + 1] = line
        line = table.concat(self.parts)
        self.parts, self.plen = {}, 0
      end
      self.queue[#self.queue + 1] = line
      pos = nl + 1
    end
    self.ev:set()
  end)
  return self
end

--- Send a request (`v` is added).
function Client:send(obj)
  obj.v = M.VERSION
  return self.stream:write(log.encode(obj) .. '\n')
end

--- The next object from orch and its JSON line (yields), or nil and `'eof'` / an error
-- message.
function Client:recv()
  while #self.queue == 0 do
    if self.eof then
      return nil, self.eof == true and 'eof' or tostring(self.eof)
    end
    self.ev:clear()
    self.ev:wait()
  end
  local line = table.remove(self.queue, 1)
  local ok, obj = pcall(M.decode, line)
  if not ok or type(obj) ~= 'table' then
    return nil, 'orch sent something that is not a JSON object'
  end
  return obj, line
end

function Client:close()
  self.stream:close()
end

-----------------------------------------------------------------------------------------------
-- Rendering for `orch status`

local function fmt_duration(s)
  if not s then
    return '-'
  end
  s = math.max(0, math.floor(s))
  if s < 60 then
    return ('%ds'):format(s)
  elseif s < 3600 then
    return ('%dm%02ds'):format(s // 60, s % 60)
  elseif s < 86400 then
    return ('%dh%02dm'):format(s // 3600, (s % 3600) // 60)
  end
  return ('%dd%02dh'):format(s // 86400, (s % 86400) // 3600)
end
M.fmt_duration = fmt_duration

local function fmt_exit(x, now)
  if type(x) ~= 'table' then
    return '-'
  end
  local what
  if x.error then
    what = 'spawn error'
  elseif x.signal then
    what = tostring(x.signal)
  elseif x.code then
    what = 'code ' .. tostring(x.code)
  else
    what = 'exited'
  end
  local t = M.parse_time(x.time)
  if t and now then
    what = what .. ', ' .. fmt_duration(now - t) .. ' ago'
  end
  return what
end

local STATE_COLORS = {
  success = '32', failure = '31', starting = '33', loading = '33', waiting = '36',
  disabled = '2',
}

local function one_line(s)
  return (tostring(s or ''):gsub('[%c]+', ' '))
end

--- Render a `status` reply as an aligned table. `opts`: `color` (bool), `now` (wall seconds,
-- for ages), `elapsed` (seconds since the reply came, added to uptimes), `header` (default
-- true).
function M.format_status(reply, opts)
  opts = opts or {}
  local now = opts.now or core.time()
  local elapsed = opts.elapsed or 0
  local color = opts.color
  local function paint(code, s)
    if color and code then
      return '\27[' .. code .. 'm' .. s .. '\27[0m'
    end
    return s
  end
  local out = {}
  local o = reply.orch or {}
  if opts.header ~= false then
    local up = o.uptime and fmt_duration(o.uptime / 1000 + elapsed) or '?'
    out[#out + 1] = paint('1', ('orch %s (pid %s): %s, up %s, %s/%s ready'):format(
      tostring(o.name or '?'), tostring(o.pid or '?'), tostring(o.phase or '?'), up,
      tostring(o.ready or '?'), tostring(o.total or '?'))) .. '\n'
  end
  local rows = { { 'ID', 'KIND', 'STATE', 'PID', 'UPTIME', 'RESTARTS', 'LAST EXIT', 'WAITING ON',
    'MESSAGE' } }
  local states = {}
  for _, e in ipairs(reply.entries or {}) do
    local state = e.result or 'none'
    local health = type(e.health) == 'table' and e.health or nil
    if health and health.result and health.result ~= state then
      state = ('%s (%s)'):format(state, health.result)
    end
    local msg = (health and health.message) or e.message or ''
    local waiting = '-'
    if (e.result == 'waiting' or e.result == 'starting') and type(e.waitingOn) == 'table'
      and #e.waitingOn > 0 then
      waiting = table.concat(e.waitingOn, ', ')
    end
    rows[#rows + 1] = {
      one_line(e.id),
      one_line(e.kind or '-'),
      one_line(state),
      e.pid and tostring(e.pid) or '-',
      e.uptime and fmt_duration(e.uptime / 1000 + elapsed) or '-',
      tostring(e.restarts or 0),
      fmt_exit(e.lastExit, now),
      waiting,
      one_line(msg),
    }
    states[#rows] = e.result
  end
  local widths = {}
  for _, row in ipairs(rows) do
    for i, cell in ipairs(row) do
      widths[i] = math.max(widths[i] or 0, utf8.len(cell) or #cell)
    end
  end
  for r, row in ipairs(rows) do
    local cells = {}
    for i, cell in ipairs(row) do
      local pad = i < #row and string.rep(' ', widths[i] - (utf8.len(cell) or #cell)) or ''
      if r == 1 then
        cell = paint('1', cell)
      elseif i == 3 then
        cell = paint(STATE_COLORS[states[r]], cell)
      end
      cells[i] = cell .. pad
    end
    out[#out + 1] = (table.concat(cells, '  '):gsub('%s+$', '')) .. '\n'
  end
  return table.concat(out)
end

return M
