--- Reading a JSON log (`orch run --log-format json`) for the timeline: lines to records, with
-- an error naming the line for anything that is not one.
-- @module orch.timeline.read
local json = require 'orch.runtime.json'
local time = require 'orch.runtime.time'

local M = {}

-- The first characters of `s` for an error message.
local function excerpt(s)
  s = s:gsub('[%c]', ' ')
  if #s > 60 then
    return s:sub(1, 57) .. '...'
  end
  return s
end

--- One line: the record (with `t`, its time in seconds); nil for a blank line, or nil and its
-- time for a line of process output; or false and why (without the line number).
function M.line(s)
  if s:match('^%s*$') then
    return nil
  end
  -- a line of process output, whole (keys come in a fixed order): only its time counts (the
  -- run lasts until its last line), so it is not decoded
  local ts = s:match('^{"ts":"([^"]*)","id":"[^"\\]*","stream":"[a-z]+","line":".*"}$')
  if ts then
    return nil, time.parse_iso(ts)
  end
  local rec, why = json.decode(s)
  if rec == nil then
    if s:match('^%s*{') and not s:match('}%s*$') then
      return false, ('truncated JSON (%s): %s'):format(why, excerpt(s))
    end
    local hint = s:match('^%S+%s+| ') and ' (a text log? use orch run --log-format json)' or ''
    return false, ('not JSON (%s): %s%s'):format(why, excerpt(s), hint)
  end
  if type(rec) ~= 'table' or json.is_array(rec) and next(rec) ~= nil then
    return false, 'not a JSON object: ' .. excerpt(s)
  end
  local t = time.parse_iso(rec.ts)
  if not t then
    return false, ('field "ts" must be an ISO 8601 UTC time (as orch writes it), got %s')
      :format(rec.ts == nil and 'nothing' or excerpt(json.encode(rec.ts)))
  end
  rec.t = t
  for _, k in ipairs({ 'id', 'event', 'result', 'old', 'message', 'signal', 'kind' }) do
    local v = rec[k]
    if v == json.null() then
      rec[k] = nil
    elseif v ~= nil and type(v) ~= 'string' then
      return false, ('field "%s" must be a string, got %s'):format(k, excerpt(json.encode(v)))
    end
  end
  return rec
end

--- The records of `lines` (a list of strings, or an iterator of strings), in order. Nil and
-- `line N: why` for the first bad line; an error too when there is no record at all.
-- `opts.name` prefixes the error (a file name).
function M.lines(lines, opts)
  local name = opts and opts.name
  local prefix = name and (name .. ':') or 'line '
  local records, n, out_t0, out_t1 = {}, 0, nil, nil
  local k = 0
  local iter = type(lines) == 'function' and lines or function()
    k = k + 1
    return lines[k]
  end
  for l in iter do
    n = n + 1
    if type(l) ~= 'string' then
      return nil, ('%s%d: not a string (%s)'):format(prefix, n, type(l))
    end
    local rec, why = M.line(l)
    if rec == false then
      return nil, ('%s%d: %s'):format(prefix, n, why)
    elseif rec then
      records[#records + 1] = rec
    elseif why then -- output: the first and last times stand for all of it
      out_t0, out_t1 = math.min(out_t0 or why, why), math.max(out_t1 or why, why)
    end
  end
  if out_t0 then
    records[#records + 1] = { t = out_t0 }
    records[#records + 1] = { t = out_t1 }
  end
  if #records == 0 then
    return nil, ('%s: no record (an empty log: expected the JSON lines of `orch run '
      .. '--log-format json`)'):format(name or 'input')
  end
  return records
end

return M
