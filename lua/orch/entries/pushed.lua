--- Readiness pushed by the service instead of polled: sd_notify (`ready.notify`, a private
-- `NOTIFY_SOCKET` per entry, with `ready.watchdog`), s6's notification fd (`ready.notifyFd`:
-- a newline written to that descriptor), and output lines (`ready.logLine`, a Lua pattern, or
-- `ready.onLine(stream, line) -> result|nil`). Results go to `on_result(h)`; the owner
-- (orch.entries.health_daemon) decides what they mean for the session.
-- @module orch.entries.pushed
local core = require 'orch.core'
local sched = require 'orch.runtime.sched'
local util = require 'orch.runtime.util'
local line_splitter = require 'orch.runtime.line_splitter'

local M = {}

local Pushed = {}
Pushed.__index = Pushed

--- Whether a validated `ready` table asks for pushed readiness.
function M.wanted(ready)
  return ready ~= nil and (ready.notify or ready.notifyFd ~= nil or ready.logLine ~= nil
    or ready.onLine ~= nil) and true or false
end

-- The private directory of this orch's notify sockets (0700), made once.
local socket_dir

local function dir()
  if socket_dir then
    return socket_dir
  end
  local rnd = assert(core.random(6)):gsub('.', function(c)
    return ('%02x'):format(c:byte())
  end)
  local base = os.getenv('XDG_RUNTIME_DIR')
  if not base or base == '' or #base > 60 then
    base = '/tmp'
  end
  local path = ('%s/orch-notify.%d.%s'):format(base, core.getpid(), rnd)
  local ok, err = core.mkdir(path, 448) -- 0700
  if not ok then
    return nil, err
  end
  socket_dir = path
  return path
end

--- A pushed-readiness source for entry `id`.
-- `opts`: `ready` (the validated table), `effects`, `on_result(h)` (a health table), and
-- `on_watchdog(h)` (optional: told of each watchdog miss after its result).
function M.new(id, opts)
  return setmetatable({ id = id, ready = opts.ready, effects = opts.effects,
    on_result = opts.on_result, on_watchdog = opts.on_watchdog, warned = {} }, Pushed)
end

-- Whether `sender` (a pid in orch's namespace, from the kernel) is one of the entry's
-- processes: its leader or in its process group (the leader's own: it ran setsid).
function Pushed:_ours(sender)
  local leader = self.leader
  if not leader or sender <= 0 then
    return false
  end
  return sender == leader or core.getpgid(sender) == leader
end

function Pushed:_result(h)
  local ok, err = pcall(self.on_result, h)
  if not ok then
    util.log(self.effects, 'error', ('%s: readiness: %s'):format(self.id, util.error_message(err)))
  end
end

-- (Re)start the watchdog: no WATCHDOG=1 within `ms` (default `ready.watchdog`) is a failure.
-- The previous wait ends by its event (a ping), never by a cancel.
function Pushed:_arm_watchdog(ms)
  local wd = self.ready.watchdog
  if not wd then
    return
  end
  ms = ms or wd
  local old, ping = self._ping, sched.event()
  self._ping = ping
  if old then
    old:set()
  end
  sched.spawn(self.id .. ':watchdog', function()
    if not ping:wait(ms) and self._ping == ping then
      self.missed = true
      local h = { result = 'failure',
        message = ('watchdog: no WATCHDOG=1 within %d ms'):format(ms) }
      self:_result(h)
      if self.on_watchdog then -- the owner's liveness (ready.restartAfter)
        local ok, err = pcall(self.on_watchdog, h)
        if not ok then
          util.log(self.effects, 'error', ('%s: watchdog: %s'):format(self.id,
            util.error_message(err)))
        end
      end
    end
  end)
end

-- One sd_notify datagram: `K=V` lines.
function Pushed:_message(msg, sender)
  if not self:_ours(sender) then
    if not self.warned[sender] then
      self.warned[sender] = true
      util.log(self.effects, 'warning', ('%s: sd_notify from pid %d, not one of its processes '
        .. '(or gone before it was read): ignored'):format(self.id, sender))
    end
    return
  end
  local fields = {}
  for line in msg:gmatch('[^\n]+') do
    local k, v = line:match('^([%w_]+)=(.*)$')
    if k then
      fields[k] = v
    end
  end
  if fields.STATUS then
    self.status = fields.STATUS
  end
  if fields.WATCHDOG == '1' then
    self:_arm_watchdog()
    if self.missed and self.ready_seen and not fields.READY then
      self.missed = false
      self:_result({ result = 'success', message = self.status })
    end
  end
  local usec = math.tointeger(tonumber(fields.EXTEND_TIMEOUT_USEC or ''))
  if usec and usec > 0 and self._ping then
    self:_arm_watchdog(math.max(1, usec // 1000))
  end
  if fields.STOPPING == '1' then
    self.ready_seen = false
    self:_result({ result = 'failure', message = self.status or 'stopping (STOPPING=1)' })
  elseif fields.READY == '1' then
    if not self._ping then
      self:_arm_watchdog() -- as systemd: the watchdog runs from the end of the start-up
    end
    self.ready_seen = true
    self:_result({ result = 'success', message = self.status })
  elseif fields.STATUS and self.ready_seen then
    self:_result({ result = 'success', message = self.status })
  end
end

--- The environment to add to a spawn: `NOTIFY_SOCKET` for `ready.notify` (the socket is made
-- at the first spawn). Raises with a message naming the entry when it cannot be made.
function Pushed:env()
  if not self.ready.notify then
    return nil
  end
  if not self.listener then
    local d, err = dir()
    if not d then
      error(('%s: ready.notify: cannot make a socket directory: %s'):format(self.id, err), 0)
    end
    local path = ('%s/%s.sock'):format(d, self.id:sub(1, 40))
    os.remove(path)
    local l, lerr = core.notify_listen(path, function(msg, sender)
      self:_message(msg, sender)
    end)
    if not l then
      error(('%s: ready.notify: %s'):format(self.id, tostring(lerr)), 0)
    end
    self.listener, self.path = l, path
  end
  return { NOTIFY_SOCKET = self.path }
end

--- The descriptors to add to a spawn: `{[ready.notifyFd] = fd}`, the write end of a new pipe
-- for this incarnation (s6's notification-fd), or nil. Raises with a message naming the entry
-- when the pipe cannot be made. Call `spawned` (or `spawn_failed`) after the spawn.
function Pushed:fds()
  local n = self.ready.notifyFd
  if not n then
    return nil
  end
  self:_close_fd_pipe() -- the previous incarnation's: what it writes now counts no more
  local p, err
  p, err = core.fd_pipe(function(chunk)
    if self._fd_pipe ~= p then
      return
    end
    if chunk == nil then -- closed by every holder without a newline: never ready this way
      self:_close_fd_pipe()
      if not self.ready_seen then
        util.log(self.effects, 'warning', ('%s: ready.notifyFd: fd %d was closed without a '
          .. 'newline; the service never said it is ready'):format(self.id, n))
      end
      return
    end
    if not chunk:find('\n', 1, true) then
      return -- what comes before the newline means nothing
    end
    self:_close_fd_pipe() -- as s6: the first newline is the notification, the rest is not read
    self.ready_seen = true
    self:_result({ result = 'success' })
  end)
  if not p then
    error(('%s: ready.notifyFd: %s'):format(self.id, tostring(err)), 0)
  end
  self._fd_pipe = p
  return { [n] = p:write_fd() }
end

function Pushed:_close_fd_pipe()
  local p = self._fd_pipe
  self._fd_pipe = nil
  if p then
    p:close()
  end
end

--- The spawn `fds` was made for failed: close the pipe.
function Pushed:spawn_failed()
  self:_close_fd_pipe()
end

--- A new incarnation was spawned (`leader`: its pid in orch's namespace): forget its
-- predecessor's state (the watchdog runs again from its READY=1); orch's copy of the
-- notification fd's write end is closed (the child has its own).
function Pushed:spawned(leader)
  if self._fd_pipe then
    self._fd_pipe:close_write()
  end
  self:_disarm()
  self.leader = leader
  self.ready_seen, self.status, self.missed = false, nil, false
  self._splitters = nil
end

function Pushed:_disarm()
  local ping = self._ping
  self._ping = nil
  if ping then
    ping:set()
  end
end

--- A chunk of the entry's output on `stream` (nil: EOF).
function Pushed:output(stream, chunk)
  local ready = self.ready
  if ready.logLine == nil and ready.onLine == nil then
    return
  end
  self._splitters = self._splitters or {}
  local feed = self._splitters[stream]
  if not feed then
    feed = line_splitter.new(function(line)
      self:_line(stream, line)
    end)
    self._splitters[stream] = feed
  end
  feed(chunk)
end

function Pushed:_line(stream, line)
  local ready = self.ready
  if ready.logLine ~= nil then
    if not self.ready_seen and line:find(ready.logLine) then
      self.ready_seen = true
      self:_result({ result = 'success', message = line })
    end
    return
  end
  local ok, r = pcall(ready.onLine, stream, line)
  if not ok then
    util.log(self.effects, 'error', ('%s: ready.onLine raised: %s'):format(self.id,
      util.error_message(r)))
  elseif type(r) == 'table' and type(r.result) == 'string' then
    self:_result({ result = r.result, message = r.message })
  elseif type(r) == 'string' then
    self:_result({ result = r })
  end
end

--- Stop listening (the socket file is removed, the notification pipe closed).
function Pushed:close()
  self:_disarm()
  self:_close_fd_pipe()
  if self.listener then
    self.listener:close()
    os.remove(self.path)
    self.listener = nil
  end
end

return M
