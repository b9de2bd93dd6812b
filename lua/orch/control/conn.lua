--- One connection of the control socket (`orch.control.server`): its requests read and
-- framed, answered one at a time by its own task (`orch.control.handlers`), and the bounds on
-- what it may leave unread or idle.
-- @module orch.control.conn
local core = require 'orch.core'
local sched = require 'orch.runtime.sched'
local json = require 'orch.runtime.json'
local protocol = require 'orch.control.protocol'
local handlers = require 'orch.control.handlers'

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

--- A connection with no request, no watch and no follow is closed after this long (ms).
M.IDLE = 60000

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

--- A connection of `srv` on `stream`, from `peer` (`{pid, uid, gid}`); not yet reading.
function M.new(srv, stream, peer)
  return setmetatable({
    srv = srv,
    stream = stream,
    peer = peer,
    framer = protocol.framer(protocol.MAX_REQUEST),
    reqs = {},
    subs = {},
    timers = {},
    wake = sched.event(),
  }, Conn)
end

--- Read requests and answer them (in a task of its own).
function Conn:start()
  self:start_reading()
  local task = sched.spawn(function()
    self:work()
  end)
  task.quiet = true
end

return M
