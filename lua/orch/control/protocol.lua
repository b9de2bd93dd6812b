--- The control protocol: one JSON object per line each way, versioned (`"v":1` in every
-- object), and the line framer both ends use.
--
-- Requests: `{"v":1, "cmd": <command>, ...}`, answered in order on each connection:
--
--   ping                               -> {ok, type="pong", orch}
--   status  [id] [watch]               -> {ok, type="status", orch, entries}; with watch, a new
--                                         {type="status", ...} after every change
--   logs    [ids] [n] [since] [follow] -> {ok, type="logs", ids, entries}, then the last n lines
--                                         per entry (at or after `since`, epoch seconds) as
--                                         {type="line", id, seq, ts, stream, line} oldest first
--                                         (no seq when read from log files), then {type="end"}
--                                         or, with follow, every new line as it comes
--   history                            -> {ok, type="history", orch, now, dropped, events}: the
--                                         recent events as lines of the JSON log, oldest first
--   reopen                             -> {ok, type="reopened"}: log files closed and reopened
--   stop|start|restart  id             -> {ok, type="stopped"|"started"|"restarted", id, ids}
--   signal  id signal                  -> {ok, type="signalled", id, signal, pid}
--   shutdown                           -> {ok, type="stopping"}; the connection closes when orch
--                                         has stopped
--   reload  [full]                     -> once done, {ok, type="reloaded", kept, restarted, added,
--                                         removed, signalled, why} (with full: {ok, type, full,
--                                         message});
--                                         error `reload-failed` when the script does not load
--
-- Errors: `{"v":1, "ok":false, "error":{"code":..., "message":...}}` with code `bad-json`,
-- `too-large` (a line over 64 KiB), `bad-request`, `bad-version`, `unknown-command`,
-- `unknown-entry`, `bad-signal`, `no-process`, `unavailable` (no graph yet, or stopping),
-- `reload-failed`, `busy` (too many connections: then the connection is closed), `forbidden`
-- (another uid: then the connection is closed) or `internal`.
-- @module orch.control.protocol
local core = require 'orch.core'
local json = require 'orch.runtime.json'

local M = {}

--- The protocol version.
M.VERSION = 1

--- Longest request line (bytes, without its newline).
M.MAX_REQUEST = 64 * 1024

--- Longest line a client accepts: a status reply grows with the graph (about 300 bytes per
-- entry), a log line of 64 KiB may grow when escaped.
M.MAX_REPLY = 256 * 1024 * 1024

--- An error reply.
function M.error(code, message)
  return { ok = false, error = { code = code, message = message } }
end

--- One object as a line (with `v` set).
function M.line(obj)
  obj.v = M.VERSION
  return json.encode(obj) .. '\n'
end

--- Check the protocol version of a decoded request: nil when it is fine (absent means 1), else
-- the message of a `bad-version` error.
function M.check_version(v)
  if v == nil or v == M.VERSION then
    return nil
  end
  if math.type(v) ~= 'integer' then
    return ('the protocol version must be an integer, got %s %s (this orch speaks %d)'):format(
      type(v) == 'string' and 'the string' or 'a ' .. (math.type(v) or type(v)),
      type(v) == 'string' and json.encode(v:sub(1, 32)) or tostring(v), M.VERSION)
  end
  return ('unsupported protocol version %d (this orch speaks %d)'):format(v, M.VERSION)
end

--- A signal as `SIGNAME` from a name (`HUP`, `sighup`, `SIGHUP`) or a number; nil if unknown.
-- `reload` stays `reload`: the entry's `exec.reloadSignal`, resolved where the entry is.
function M.signal_name(sig)
  if type(sig) == 'string' and sig:lower() == 'reload' then
    return 'reload'
  end
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

local Framer = {}
Framer.__index = Framer

--- A line framer: `feed(chunk, emit)` calls `emit(line)` for each complete line (without its
-- newline) and `emit(nil)` once for a line longer than `max` bytes, whose rest is then skipped
-- up to its newline; `finish(emit)` (at EOF) emits a last line that had no newline.
function M.framer(max)
  return setmetatable({ max = max, parts = {}, len = 0, skipping = false }, Framer)
end

function Framer:feed(chunk, emit)
  local pos = 1
  while true do
    local nl = chunk:find('\n', pos, true)
    if not nl then
      local rest = chunk:sub(pos)
      if not self.skipping and rest ~= '' then
        self.parts[#self.parts + 1] = rest
        self.len = self.len + #rest
        if self.len > self.max then
          self.parts, self.len, self.skipping = {}, 0, true
          emit(nil)
        end
      end
      return
    end
    local piece = chunk:sub(pos, nl - 1)
    pos = nl + 1
    if self.skipping then
      self.skipping = false -- the end of an oversized line, already reported
    else
      local line = piece
      if self.len > 0 then
        self.parts[#self.parts + 1] = piece
        line = table.concat(self.parts)
        self.parts, self.len = {}, 0
      end
      if #line > self.max then
        emit(nil)
      elseif emit(line) == false then
        return -- the receiver is gone
      end
    end
  end
end

function Framer:finish(emit)
  if self.len > 0 and not self.skipping then
    local line = table.concat(self.parts)
    self.parts, self.len = {}, 0
    emit(line)
  end
end

return M
