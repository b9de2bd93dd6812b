--- The control socket of `orch run`: listening, connections, their bounds, and the order of
-- replies. What each command does is in `orch.control.handlers`.
--
-- `orch run` listens on a Unix stream socket (mode 0600 in a 0700 directory) and answers
-- requests from the same uid or root (checked with SO_PEERCRED on every connection); the
-- protocol is in `orch.control.protocol`.
--
-- Bounds: a request line is at most 64 KiB; at most 16 requests are read ahead (reading pauses
-- beyond). Replies are written in order by one task per connection; a big one (a status of
-- thousands of entries) is written in pieces as the client reads. A client is dropped when it
-- leaves more than 1 MiB of small replies unread (log lines it follows), or when a reply waits
-- `STALL` ms for it to read. At most `MAX_CONNS` connections at once, `MAX_PER_UID` from one
-- uid; one with nothing to answer and nothing followed is closed after `IDLE` ms.
-- @module orch.control.server
local core = require 'orch.core'
local sched = require 'orch.sched'
local json = require 'orch.json'
local paths = require 'orch.control.paths'
local protocol = require 'orch.control.protocol'
local handlers = require 'orch.control.handlers'
local client = require 'orch.control.client'

local M = {}

--- Bytes a client may leave unread (outside the reply being written) before it is dropped.
M.MAX_QUEUE = 1024 * 1024

--- A big reply, or the log backlog, is written while less than this is waiting.
M.DUMP_HIGH = 256 * 1024

--- Bytes of a big reply written at once.
M.PIECE = 64 * 1024

--- How long a reply waits for the client to read before the client is dropped (ms).
M.STALL = 5000

--- Requests read ahead per connection; reading pauses beyond.
M.MAX_PENDING = 16

--- How long a connection that was answered may take to flush before it is closed (ms).
M.LINGER = 5000

--- Connections at once, and from one uid.
M.MAX_CONNS = 64
M.MAX_PER_UID = 32

--- Refused connections (another uid, too many) kept open until their peer has read why.
M.MAX_REFUSING = 16

--- A connection with no request, no watch and no follow is closed after this long (ms).
M.IDLE = 60000

local Server = {}
Server.__index = Server

local Conn = {}
Conn.__index = Conn

function Conn:who()
  local p = self.peer
  if p.pid and p.pid > 0 then
    return (' (from uid %d, pid %d)'):format(p.uid, p.pid)
  end
  return (' (from uid %d)'):format(p.uid)
end

-- Write bytes now; false (and closed) when the peer is gone.
function Conn:write(s)
  if self.closed then
    return false
  end
  if not self.stream:write(s) then
    self:close() -- the peer is gone
    return false
  end
  return true
end

-- Drop the client when more than `limit` bytes wait for it; false when dropped.
function Conn:check_queue(limit, extra)
  local queued = self.stream:write_queue_size() + (extra or 0)
  if queued > limit then
    self:close(('control: dropped a client that does not read (%d KiB waiting)%s'):format(
      queued // 1024, self:who()))
    return false
  end
  return true
end

--- Send one reply (`v` is added). While a reply is being written in pieces, it waits after it.
-- False when the connection is (now) closed.
function Conn:send(obj)
  if self.closed then
    return false
  end
  local ok, line = pcall(protocol.line, obj)
  if not ok then
    line = protocol.line(protocol.error('internal', 'cannot encode the reply: ' .. tostring(line)))
  end
  if self.held then
    self.held[#self.held + 1] = line
    self.held_bytes = self.held_bytes + #line
    return self:check_queue(M.MAX_QUEUE, self.held_bytes)
  end
  return self:write(line) and self:check_queue(M.MAX_QUEUE)
end

function Conn:fail(code, message)
  return self:send(protocol.error(code, message))
end

--- Wait (yields) until less than `DUMP_HIGH` bytes wait for the client; drops it when that
-- takes longer than `STALL` ms. False when the connection is closed.
function Conn:drain()
  local deadline = core.now() + M.STALL
  while not self.closed and self.stream:write_queue_size() > M.DUMP_HIGH do
    if core.now() >= deadline then
      return self:check_queue(0)
    end
    sched.sleep(10)
  end
  return not self.closed
end

--- Hold the replies `send` makes (from callbacks: followed lines) until `release`, so that
-- they do not cut into what the worker writes.
function Conn:hold()
  self.held, self.held_bytes = self.held or {}, self.held_bytes or 0
end

function Conn:release()
  local held = self.held
  self.held, self.held_bytes = nil, nil
  for _, line in ipairs(held or {}) do
    if not self:write(line) then
      return false
    end
  end
  return not self.closed and self:check_queue(M.MAX_QUEUE)
end

--- Write `obj` with the array `obj[key]` in pieces, waiting for the client to read between
-- them (yields). False when the connection is closed.
function Conn:send_big(obj, key)
  local items = obj[key]
  obj[key] = nil
  local ok, head = pcall(protocol.line, obj)
  if not ok then
    return self:fail('internal', 'cannot encode the reply: ' .. tostring(head))
  end
  self:hold()
  local buf, len = { '{' .. json.encode(key) .. ':[' }, 0
  for i, item in ipairs(items) do
    local eok, s = pcall(json.encode, item)
    if not eok then
      s = json.encode({ error = 'cannot encode: ' .. tostring(s) })
    end
    buf[#buf + 1] = i > 1 and ',' .. s or s
    len = len + #s + 1
    if len >= M.PIECE then
      if not (self:drain() and self:write(table.concat(buf))) then
        return false
      end
      buf, len = {}, 0
    end
  end
  buf[#buf + 1] = '],' .. head:sub(2)
  return self:drain() and self:write(table.concat(buf)) and self:release()
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
  self.srv:forget(self)
  self.wake:set()
end

-- Close once what was written has been flushed (or after LINGER ms); with `wait_eof`, once
-- the peer has hung up too.
function Conn:finish(wait_eof)
  if self.closed or self.finishing then
    return
  end
  self.finishing = true
  self:timer():start(M.LINGER, 0, function()
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

--- A timer closed with the connection.
function Conn:timer()
  local t = core.timer()
  self.timers[#self.timers + 1] = t
  return t
end

--- Something for the worker to do outside the request order (a watch update is due).
function Conn:poke()
  self.wake:set()
end

function Conn:push(req)
  self.reqs[#self.reqs + 1] = req
  if #self.reqs >= M.MAX_PENDING and not self.paused then
    self.paused = true
    self.stream:read_stop()
  end
  self.wake:set()
end

function Conn:start_reading()
  local function emit(line)
    if self.closed then
      return false
    end
    if line == nil then
      self:push({ too_large = true })
    elseif line:find('%S') then
      self:push({ line = line })
    end
  end
  self.stream:read_start(function(chunk, err)
    if chunk then
      self.framer:feed(chunk, emit)
    elseif err then
      self:close()
    else
      self.eof = true
      self.framer:finish(emit) -- a last request without its newline
      self.wake:set()
    end
  end)
end

-- The worker task: requests one at a time, in order, and watch updates in between.
function Conn:work()
  local handled = 0
  while not self.closed do
    if #self.reqs > 0 then
      local req = table.remove(self.reqs, 1)
      handlers.handle(self, req)
      handled = handled + 1
      if handled % 8 == 0 then
        sched.sleep(0) -- let the loop serve others between bursts
      end
      if self.paused and #self.reqs <= M.MAX_PENDING // 2 then
        self.paused = false
        self:start_reading()
      end
    elseif not handlers.due(self) then
      if self.paused then
        self.paused = false
        self:start_reading()
      end
      if self.eof and #self.subs == 0 then
        self:finish()
        return
      end
      self.wake:clear()
      local idle = #self.subs == 0 and not self.eof
      if not self.wake:wait(idle and M.IDLE or nil) and not self.closed then
        self:close(('control: closed a connection idle for %d s%s'):format(M.IDLE // 1000,
          self:who()))
      end
    end
  end
end

function Server:log(msg, level)
  if self.backend.log then
    self.backend.log(msg, level)
  end
end

function Server:forget(conn)
  if self.conns[conn] then
    self.conns[conn] = nil
    local uid = conn.peer.uid
    if conn.refusing then
      self.refusing = self.refusing - 1
    else
      self.count, self.per_uid[uid] = self.count - 1, self.per_uid[uid] - 1
    end
  end
end

-- Answer `code`, `message`, then close once the peer has read it (or at once when too many
-- refused connections are waiting already).
function Server:refuse(conn, code, message)
  conn.refusing = true
  self.refusing = self.refusing + 1
  conn:fail(code, message)
  if self.refusing > M.MAX_REFUSING then
    conn:close()
    return
  end
  -- Read (and ignore) what it sent until it hangs up: closing with unread input would reset
  -- the connection before it reads the error.
  conn.eof = true
  conn.stream:read_start(function(chunk)
    if not chunk then
      conn:close()
    end
  end)
  conn:finish(true)
end

-- Why a connection from `uid` is refused, or nil.
function Server:refusal(uid)
  if uid ~= 0 and uid ~= self.uid then
    self:log(('control: refused a connection from uid %d'):format(uid), 'warning')
    return 'forbidden', ('uid %d may not control this orch (only uid %d and root)'):format(uid,
      self.uid)
  end
  if self.count >= M.MAX_CONNS or (self.per_uid[uid] or 0) >= M.MAX_PER_UID then
    if not self.warned_busy then
      self.warned_busy = true
      self:log(('control: refusing connections: %d open, %d from uid %d (at most %d, %d per '
        .. 'uid)'):format(self.count, self.per_uid[uid] or 0, uid, M.MAX_CONNS, M.MAX_PER_UID),
        'warning')
    end
    return 'busy', ('too many control connections (at most %d, %d per uid)'):format(
      M.MAX_CONNS, M.MAX_PER_UID)
  end
  self.warned_busy = false
  return nil
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
    framer = protocol.framer(protocol.MAX_REQUEST),
    reqs = {},
    subs = {},
    timers = {},
    wake = sched.event(),
  }, Conn)
  self.conns[conn] = true
  local code, message = self:refusal(uid)
  if code then
    return self:refuse(conn, code, message)
  end
  self.count, self.per_uid[uid] = self.count + 1, (self.per_uid[uid] or 0) + 1
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

-- What answers on a live socket: a description for the refusal message.
local function describe_live(stream)
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
  stream:write(protocol.line({ cmd = 'ping' }))
  ev:wait(1000)
  stream:close()
  local obj = json.decode(buf:match('^([^\n]*)'))
  local got = {}
  if type(obj) == 'table' and type(obj.orch) == 'table' then
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

-- Make room for the socket at `path`: nothing there, or a stale socket removed. True and a
-- note, or nil, why and `'live'` when another orch answers there.
local function clear_path(path)
  local st = core.lstat(path)
  if not st then
    return true
  end
  if st.type ~= 'socket' then
    return nil, ("'%s' exists and is not a socket"):format(path)
  end
  local live, msg, code = client.connect_stream(path, 2000)
  if live then
    return nil, ('another orch%s is already running with the control socket %s; stop it, '
      .. 'or give this one another --name or --control'):format(describe_live(live), path), 'live'
  end
  if code == 'ENOENT' then
    return true
  elseif code ~= 'ECONNREFUSED' then
    return nil, ('cannot check the control socket: %s'):format(msg)
  end
  local rok, rerr = os.remove(path)
  if not rok then
    return nil, ('cannot remove the stale control socket: %s'):format(rerr)
  end
  return true, ('replaced the stale control socket %s'):format(path)
end

--- Listen on the control socket (yields: call it from a task). `where` comes from
-- `orch.control.paths.resolve`. `backend`: `sink` (the status sink), `meta()` (orch's own
-- fields for `orch`), `chain()` (the running chain, or nil and why), `shutdown()`,
-- `log(msg, level)`. A stale socket (nobody listening) is replaced; a live one is an error.
-- @treturn Server|nil
-- @treturn string the error message (or nil)
-- @treturn string|nil on success, a note to log (a stale socket was replaced); on failure,
-- `'live'` when another orch answers on the socket
function M.listen(where, backend)
  local uid = core.getuid()
  local ok, err = paths.prepare_dir(where, uid)
  if not ok then
    return nil, err
  end
  local path = where.path
  local cleared, note, live = clear_path(path)
  if not cleared then
    return nil, note, live
  end
  local self = setmetatable({
    path = path,
    name = where.name,
    backend = backend,
    uid = uid,
    conns = {},
    count = 0,
    per_uid = {},
    refusing = 0,
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

return M
