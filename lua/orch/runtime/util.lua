--- Small helpers shared by the Daemons modules: copies, lists, messages, nearest-key search.
-- Pure functions; nothing here touches the loop.
-- @module orch.runtime.util
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

--- Copy every field of `src` into `dst` (the methods a part of a class adds to it); returns
-- `dst`.
function M.assign(dst, src)
  for k, v in pairs(src) do
    dst[k] = v
  end
  return dst
end

--- A deep copy of `v` (tables copied at every level; other values as they are).
function M.deep_copy(v)
  if type(v) ~= 'table' then
    return v
  end
  local out = {}
  for k, x in pairs(v) do
    out[k] = M.deep_copy(x)
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

--- The text of any error value, without ever raising: a string or a number as it is, a
-- table's `message` field (through `tostring`), else what its `__tostring` gives. Returns nil,
-- the value's type and, when a `__tostring` failed, why, for a value with no text (nil, a
-- boolean, a plain table, a function...). The one place that reads error values: the CLI's
-- messages, health messages and log lines all go through it.
function M.error_text(err)
  local t = type(err)
  if t == 'string' or t == 'number' then
    return tostring(err)
  end
  local ok, text = pcall(function()
    if t == 'table' and rawget(err, 'message') ~= nil then
      return tostring(rawget(err, 'message'))
    end
    local mt = getmetatable(err)
    if type(mt) == 'table' and rawget(mt, '__tostring') then
      return tostring(err)
    end
  end)
  if not ok then
    return nil, t, type(text) == 'string' and M.strip_position(text) or type(text)
  end
  if type(text) ~= 'string' then
    return nil, t
  end
  return text
end

--- `s` without the `chunk:line: ` prefixes Lua adds (`main.lua:12: `, `[string "x"]:3: `,
-- `stdin:1: `; only chunk-like names, so 'host:80: refused' keeps its text) and without a
-- traceback.
function M.strip_position(s)
  s = s:gsub('\nstack traceback:.*$', '')
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

--- The text of an error value as a health message or a log line: `error_text` without the
-- position prefixes (`strip_position`); 'nil' or 'a <type> value' for a value without text.
function M.error_message(err)
  local text, t = M.error_text(err)
  if text == nil then
    return t == 'nil' and 'nil' or ('a %s value'):format(t)
  end
  return M.strip_position(text)
end

--- Raise Lua's usual "bad argument #n to 'fname' (what)" at `level` (as `error` counts it, from
-- the function calling this one; default 2: that function's caller).
function M.bad_argument(n, fname, what, level)
  error(("bad argument #%d to '%s' (%s)"):format(n, fname, what), (level or 2) + 1)
end

--- The longest time in ms a timer or timeout accepts: 2^31 - 1, about 24.8 days (what a
-- JavaScript timer accepts: upstream code with more would fire at once).
M.MAX_MS = 2147483647

--- Check a time in milliseconds: an integer-valued number from `min` (default 0) to MAX_MS
-- (`fraction`: any number in that range). Returns nil when `v` is one; else 'type' (not
-- such a number: another type, NaN, below `min`, a fraction) or 'range' (above MAX_MS), and
-- `v` as a message shows it.
function M.check_ms(v, min, fraction)
  local shown = type(v) == 'number' and tostring(v) or (v == nil and 'nil' or type(v))
  if type(v) ~= 'number' or v ~= v or v < (min or 0) or not (fraction or M.is_integer(v)) then
    return 'type', shown
  end
  if v > M.MAX_MS then
    return 'range', shown
  end
  return nil
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

--- A stand-in for `require(name)` that loads the module on first use of one of its fields: what
-- orch needs only for some runs (the terminal view, reloads) costs nothing in the others.
function M.lazy(name)
  return setmetatable({}, { __index = function(proxy, k)
    local mod = require(name)
    setmetatable(proxy, { __index = mod })
    return mod[k]
  end })
end

return M
