--- Small helpers shared by the Daemons modules: copies, lists, messages, nearest-key search.
-- Pure functions; nothing here touches the loop.
-- @module orch.util
local M = {}

--- Shallow copy of a table (nil stays nil).
function M.copy(t)
  if t == nil then
    return nil
  end
  local out = {}
  for k, v in pairs(t) do
    out[k] = v
  end
  return out
end

--- A new list: `list` followed by `value`.
function M.append(list, value)
  local out = table.move(list, 1, #list, 1, {})
  out[#out + 1] = value
  return out
end

--- Whether `list` holds `value`.
function M.contains(list, value)
  for _, v in ipairs(list) do
    if v == value then
      return true
    end
  end
  return false
end

--- Whether `t` is a sequence: integer keys 1..n and nothing else.
function M.is_sequence(t)
  if type(t) ~= 'table' then
    return false
  end
  local n = 0
  for _ in pairs(t) do
    n = n + 1
  end
  return n == #t
end

--- Whether `v` is an integer-valued number (an integer, or a float with no fraction).
function M.is_integer(v)
  return math.type(v) == 'integer' or (math.type(v) == 'float' and v == math.floor(v)
    and v == v and v ~= math.huge and v ~= -math.huge)
end

--- The text of an error value as a health message: a table's string `message`, otherwise
-- `tostring(err)` without the `chunk:line: ` prefix Lua adds (and without a traceback).
function M.error_message(err)
  if type(err) == 'table' then
    if type(err.message) == 'string' then
      return err.message
    end
    local mt = getmetatable(err)
    if mt and mt.__tostring then
      return tostring(err)
    end
    return tostring(err)
  end
  if err == nil then
    return 'nil'
  end
  local s = tostring(err)
  s = s:gsub('\nstack traceback:.*$', '')
  -- strip nested "chunk:line: " prefixes ('main.lua:12: ', '[string "x"]:3: ', 'stdin:1: ');
  -- only chunk-like names, so 'host:80: refused' keeps its text
  while true do
    local rest = s:match('^[^\n:]-%.lua:%d+: (.*)$') or s:match('^%[string ".-"%]:%d+: (.*)$')
      or s:match('^stdin:%d+: (.*)$')
    if not rest then
      break
    end
    s = rest
  end
  return s
end

-- Levenshtein distance between two short strings.
local function distance(a, b)
  local la, lb = #a, #b
  if la == 0 then
    return lb
  end
  if lb == 0 then
    return la
  end
  local prev, cur = {}, {}
  for j = 0, lb do
    prev[j] = j
  end
  for i = 1, la do
    cur[0] = i
    local ca = a:byte(i)
    for j = 1, lb do
      local cost = (ca == b:byte(j)) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev, cur = cur, prev
  end
  return prev[lb]
end

local function normalise(s)
  return (s:lower():gsub('[_%-%s]', ''))
end

--- The valid key closest to `key`, or nil when none is plausibly meant.
-- Case, `_` and `-` are ignored first (so `sigterm_timeout` finds `sigtermTimeout`), then the
-- edit distance must be at most a third of the key's length (at least 2).
function M.nearest(key, valid)
  if type(key) ~= 'string' then
    return nil
  end
  local nk = normalise(key)
  local best, best_d
  for _, v in ipairs(valid) do
    local d = distance(nk, normalise(v))
    if best_d == nil or d < best_d then
      best, best_d = v, d
    end
  end
  if best and best_d <= math.max(2, #nk // 3) then
    return best
  end
  -- a prefix of a valid key ('grace' -> 'gracePeriod')
  if #nk >= 3 then
    for _, v in ipairs(valid) do
      local nv = normalise(v)
      if nv:sub(1, #nk) == nk or nk:sub(1, #nv) == nv then
        return v
      end
    end
  end
  return nil
end

--- `'a', 'b'` style rendering of a list of names.
function M.join(list, sep)
  local out = {}
  for i, v in ipairs(list) do
    out[i] = tostring(v)
  end
  return table.concat(out, sep or ', ')
end

--- A short, printable rendering of a value for messages.
function M.show(v)
  if type(v) == 'string' then
    return ("'%s'"):format(v)
  end
  return tostring(v)
end

--- JS-style array-to-string of a command (elements joined by commas), as upstream messages do.
function M.js_join(cmd)
  if type(cmd) == 'table' then
    return M.join(cmd, ',')
  end
  return tostring(cmd)
end

--- Write a log line `orch: <level>: <msg>` through `effects.log` when present, else to stderr.
-- Never raises.
function M.log(effects, level, msg)
  if effects and type(effects.log) == 'function' then
    local ok = pcall(effects.log, level, msg)
    if ok then
      return
    end
  end
  io.stderr:write(('orch: %s: %s\n'):format(level, msg))
  io.stderr:flush()
end

return M
