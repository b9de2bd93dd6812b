--- The client end of the control socket, as the control commands use it: connect to an orch
-- that can be trusted, send requests, read replies.
--
-- Trust: a default socket directory must be a 0700 directory of the user (or root), an
-- explicit one (`--control`) a directory of the user or root; and the server at the other end
-- must run as the user or root (SO_PEERCRED). Otherwise another user could answer in orch's
-- place (`/tmp/orch-<uid>` can be made by anyone first).
-- @module orch.control.client
local core = require 'orch.core'
local sched = require 'orch.runtime.sched'
local json = require 'orch.runtime.json'
local paths = require 'orch.control.paths'
local protocol = require 'orch.control.protocol'

local M = {}

local Client = {}
Client.__index = Client

--- Connect to the Unix socket at `path` (yields): the stream, or nil, message and code
-- (`ENOENT`, `ECONNREFUSED`, `EACCES`, `ETIMEDOUT`...). No trust check.
function M.connect_stream(path, timeout_ms)
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

-- Whether the server on `stream` runs as `uid` or root: true, or nil and why.
local function trusted_peer(stream, path, uid)
  local _, puid = stream:peercred()
  if not puid then
    return nil, ('cannot tell who serves %s'):format(path)
  end
  if puid ~= uid and puid ~= 0 then
    return nil, ('the control socket %s is served by uid %d, not by uid %d or root: refusing '
      .. 'to talk to it'):format(path, puid, uid)
  end
  return true
end

--- Connect to the orch at `where` (from `orch.control.paths.resolve`; yields) once its
-- directory and its server can be trusted.
-- @treturn Client|nil
-- @treturn string the error message
-- @treturn string the error code (`ENOENT`, `ECONNREFUSED`, `EACCES`..., or `EUNTRUSTED`)
function M.connect(where, timeout_ms, uid)
  uid = uid or core.getuid()
  local st = core.lstat(where.dir)
  if st then -- a missing directory is the connect's ENOENT
    local ok, why = paths.trusted_dir(where.dir, uid, where.default)
    if not ok then
      return nil, why, 'EUNTRUSTED'
    end
  end
  local stream, msg, code = M.connect_stream(where.path, timeout_ms)
  if not stream then
    return nil, msg, code
  end
  local ok, why = trusted_peer(stream, where.path, uid)
  if not ok then
    stream:close()
    return nil, why, 'EUNTRUSTED'
  end
  local self = setmetatable({ stream = stream, queue = {}, ev = sched.event(),
    framer = protocol.framer(protocol.MAX_REPLY) }, Client)
  local function emit(line)
    if line == nil then
      self.eof = 'a reply line is too long'
      stream:close()
      return false
    end
    self.queue[#self.queue + 1] = line
  end
  stream:read_start(function(chunk, rerr)
    if chunk then
      self.framer:feed(chunk, emit)
    else
      self.eof = self.eof or rerr or true
    end
    self.ev:set()
  end)
  return self
end

--- The names of the orchs listening in the default directory `dir`, sorted (yields): sockets
-- nobody answers on are left out.
function M.running(dir)
  local names = {}
  for _, name in ipairs(paths.list(dir)) do
    local stream = M.connect_stream(dir .. '/' .. name .. '.sock', 1000)
    if stream then
      stream:close()
      names[#names + 1] = name
    end
  end
  return names
end

--- Send a request (`v` is added).
function Client:send(obj)
  return self.stream:write(protocol.line(obj))
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
  local obj = json.decode(line)
  if type(obj) ~= 'table' then
    return nil, 'orch sent something that is not a JSON object'
  end
  return obj, line
end

function Client:close()
  self.stream:close()
end

return M
