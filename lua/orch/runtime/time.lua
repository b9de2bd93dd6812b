--- Wall-clock times as orch writes them: ISO 8601 UTC with milliseconds
-- (`2024-05-01T12:00:00.123Z`), both ways. Times are seconds since the epoch (floats), as
-- `core.time()` gives them.
-- @module orch.runtime.time
local M = {}

--- The ISO 8601 UTC form of `t` (seconds since the epoch), with milliseconds.
function M.iso(t)
  -- Truncated to the ms, plus 1 us: a time parse_iso read back from `iso` (x.672 is stored as
  -- x.67199...) gives the same text again.
  local all = math.floor(t * 1000 + 0.001)
  return os.date('!%Y-%m-%dT%H:%M:%S', all // 1000) .. ('.%03dZ'):format(all % 1000)
end

--- Seconds since the epoch of an ISO 8601 UTC time as `iso` writes it (the fraction is
-- optional), or nil when `s` is not one.
function M.parse_iso(s)
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

return M
