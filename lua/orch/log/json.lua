--- The JSON format of the log: one object per line, `ts` (ISO 8601 UTC), `id` (`orch` for the
-- orchestrator's own records), then `stream` and `line` for process output or `event` and its
-- fields (`result`, `message`, `pid`, `code`...). Every string is made valid UTF-8, so that
-- every line parses. It renders strings; orch.log writes them.
-- @module orch.log.json
local line_splitter = require 'orch.runtime.line_splitter'
local log_text = require 'orch.log.text'

local M = {}

local Json = {}
Json.__index = Json

--- A JSON format. `opts`: `clock` (wall seconds), `encode` (value -> one line of JSON),
-- `sanitize` (string -> valid UTF-8), `iso_time` (seconds -> ISO 8601 string).
function M.new(opts)
  return setmetatable({
    clock = opts.clock,
    encode = opts.encode,
    sanitize = opts.sanitize,
    iso_time = opts.iso_time,
  }, Json)
end

--- Ids need no declaration in JSON.
function Json.set_ids() end

-- One record and its newline; a record that cannot be encoded becomes an error record.
function Json:_record(obj)
  local ok, s = pcall(self.encode, obj)
  if not ok then
    s = self.encode({ ts = obj.ts, id = obj.id, event = 'error', message = tostring(s) })
  end
  return s .. '\n'
end

--- Lines of process output of `id` on `stream`, one record each, as one string.
function Json:lines(id, stream, lines)
  local ts = self.iso_time(self.clock())
  local buf = {}
  id = self.sanitize(id)
  for i, line in ipairs(lines) do
    buf[i] = self:_record({ ts = ts, id = id, stream = stream, line = self.sanitize(line) })
  end
  return table.concat(buf)
end

--- A block of process output (lines each ending in `\n`), one record per line.
function Json:block(id, stream, block)
  return self:lines(id, stream, line_splitter.list(block))
end

--- An orchestrator event `{event=, id=, ...}` as one record: its fields plus `ts`.
function Json:event(ev)
  local obj = {}
  for k, v in pairs(ev) do
    obj[k] = type(v) == 'string' and self.sanitize(v) or v
  end
  obj.ts = self.iso_time(self.clock())
  obj.id = obj.id or log_text.ORCH_ID
  return self:_record(obj)
end

return M
