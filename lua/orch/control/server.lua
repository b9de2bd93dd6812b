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
local sched = require 'orch.runtime.sched'
local json = require 'orch.runtime.json'
local paths = require 'orch.control.paths'
local protocol = require 'orch.control.protocol'
local client = require 'orch.control.client'
local conn_mod = require 'orch.control.conn'

local M = {}

--- Connections at once, and from one uid.
M.MAX_CONNS = 64
M.MAX_PER_UID = 32

--- Refused connections (another uid, too many) kept open until their peer has read why.
M.MAX_REFUSING = 16

local Server = {}
Server.__index = Server

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
  local conn = conn_mod.new(self, stream, { pid = pid, uid = uid, gid = gid })
  self.conns[conn] = true
  local code, message = self:refusal(uid)
  if code then
    return self:refuse(conn, code, message)
  end
  self.count, self.per_uid[uid] = self.count + 1, (self.per_uid[uid] or 0) + 1
  conn:start()
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
  local framer, first = protocol.framer(protocol.MAX_REPLY), nil
  stream:read_start(function(chunk)
    if chunk then
      framer:feed(chunk, function(line)
        first = first or line
        ev:set()
        return false
      end)
    else
      ev:set()
    end
  end)
  stream:write(protocol.line({ cmd = 'ping' }))
  ev:wait(1000)
  stream:close()
  local obj = first and json.decode(first)
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
-- `log(msg, level)`, `reload(full, why)` (yields until done: ok and the report or message).
-- A stale socket (nobody listening) is replaced; a live one is an error.
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
