--- sd_notify for `Type=notify` services: readiness, status and stopping, sent as datagrams to
-- `$NOTIFY_SOCKET` (no libsystemd).
--
-- `READY=1` the first time every entry is `success` at once (again after a reload), `STATUS=`
-- with the count of ready entries whenever it changes, `RELOADING=1` on a reload and
-- `STOPPING=1` at shutdown.
-- @module orch.runtime.notify

local M = {}

local Notifier = {}
Notifier.__index = Notifier

--- A notifier for `sink`, or nil when there is no socket.
-- `opts`: `socket` (default `$NOTIFY_SOCKET`), `send` (`function(path, msg) -> true | nil,
-- err`; default `core.notify`).
function M.new(sink, opts)
  opts = opts or {}
  local socket = opts.socket
  if socket == nil then
    socket = os.getenv('NOTIFY_SOCKET')
  end
  if not socket or socket == '' then
    return nil
  end
  local send = opts.send
  if not send then
    send = require('orch.core').notify
  end
  local self = setmetatable({
    sink = sink,
    socket = socket,
    _send = send,
    ready_sent = false,
    stopping_sent = false,
    last_status = nil,
    sent = {}, -- every message sent, for specs and the state dump
  }, Notifier)
  self._unsubscribe = sink:subscribe(function(ev)
    if ev.type == 'state' or ev.type == 'declare' then
      self:update()
    end
  end)
  return self
end

--- Send one message (several `K=V` lines joined by newlines); failures are logged once.
function Notifier:send(msg)
  local ok, err = self._send(self.socket, msg)
  self.sent[#self.sent + 1] = msg
  if not ok and not self.warned then
    self.warned = true
    self.sink:message(('sd_notify to %s failed: %s'):format(self.socket, tostring(err)), 'warning')
  end
  return ok, err
end

--- Describe the ready count: `2/3 ready` plus the entries that are not.
function Notifier:status_text()
  local ready, total = self.sink:counts()
  local s = ('%d/%d ready'):format(ready, total)
  if ready < total then
    local pending = {}
    for _, e in ipairs(self.sink:snapshot()) do
      if e.result ~= 'success' then
        pending[#pending + 1] = e.id
      end
    end
    s = s .. ' (waiting for ' .. table.concat(pending, ', ') .. ')'
  end
  return s, ready, total
end

--- Re-evaluate after a change: `STATUS=` when the text changed, `READY=1` the first time all
-- are ready.
function Notifier:update()
  if self.stopping_sent or self.paused then
    return
  end
  local text, ready, total = self:status_text()
  local lines = {}
  if total > 0 and ready == total and not self.ready_sent then
    self.ready_sent = true
    lines[#lines + 1] = 'READY=1'
  end
  if text ~= self.last_status then
    self.last_status = text
    lines[#lines + 1] = 'STATUS=' .. text
  end
  if #lines > 0 then
    self:send(table.concat(lines, '\n'))
  end
end

--- A reload begins: `RELOADING=1`; `READY=1` is sent again once everything is ready.
-- `monotonic_usec` (CLOCK_MONOTONIC in microseconds) is required by `Type=notify-reload`.
function Notifier:reloading(monotonic_usec)
  self.ready_sent = false
  self.paused = true
  local msg = 'RELOADING=1\nSTATUS=reloading'
  if monotonic_usec then
    msg = msg .. '\nMONOTONIC_USEC=' .. tostring(monotonic_usec)
  end
  self.last_status = 'reloading'
  self:send(msg)
end

--- The new graph is built: report again (`READY=1` once everything is ready).
function Notifier:reloaded()
  self.paused = false
  self:update()
end

--- Shutdown begins: `STOPPING=1` (once).
function Notifier:stopping()
  if self.stopping_sent then
    return
  end
  self.stopping_sent = true
  self:send('STOPPING=1\nSTATUS=stopping')
end

function Notifier:close()
  if self._unsubscribe then
    self._unsubscribe()
    self._unsubscribe = nil
  end
end

return M
