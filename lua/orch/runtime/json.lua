--- JSON for logs, the status file and the control protocol: lua-cjson for the scalars and the
-- parser, with the few things orch needs on top.
--
-- Encoding: strings are made valid UTF-8 (invalid bytes become U+FFFD), `/` is written as it
-- is (Debian's lua-cjson 2.1.0 escapes it and has no option to stop), object keys come in a
-- stable order (`ts`, `id`, `stream`, `event`, `line`... first, the rest sorted), and a table
-- marked with `json.array` is an array even when empty. Decoding: integral numbers come back as
-- integers (pids, counts), `null` as `json.null`, and nesting is bounded.
-- @module orch.runtime.json
local M = {}

local MAX_DEPTH = 20 -- encoder nesting; the decoder allows 32 (requests nest little)

local cjson_mod -- loaded on first use (no work at require time)

local function cjson()
  if not cjson_mod then
    cjson_mod = require('cjson').new()
    if cjson_mod.encode_escape_forward_slash then -- lua-cjson >= 2.1.0.x
      cjson_mod.encode_escape_forward_slash(false)
    end
    cjson_mod.encode_invalid_numbers(false)
    cjson_mod.decode_max_depth(32)
  end
  return cjson_mod
end

--- Replace every invalid UTF-8 sequence of `s` by U+FFFD (strict: no surrogates, no code
-- points over U+10FFFF). Valid strings are returned as they are.
function M.sanitize_utf8(s)
  if utf8.len(s) then
    return s
  end
  local out, i, n = {}, 1, #s
  while i <= n do
    local ok, bad = utf8.len(s, i)
    if ok then
      out[#out + 1] = s:sub(i)
      break
    end
    out[#out + 1] = s:sub(i, bad - 1)
    out[#out + 1] = '\u{FFFD}'
    i = bad + 1
  end
  return table.concat(out)
end

local ARRAY_MT = { __name = 'orch.json.array' }

--- Mark `t` (default a new table) as a JSON array, so that it encodes as `[]` when empty.
function M.array(t)
  return setmetatable(t or {}, ARRAY_MT)
end

--- Whether `t` is a table that reads as an array (a sequence, or empty).
function M.is_array(t)
  return type(t) == 'table' and (#t > 0 or next(t) == nil)
end

-- Keys written first, in this order; the others follow sorted.
local KEY_RANK = { ts = 1, id = 2, stream = 3, event = 4, line = 5, old = 6, result = 7 }

-- The byte a string key sorts under: its rank (100 for the rest), then the key itself.
local RANK_BYTE = {}
for k, r in pairs(KEY_RANK) do
  RANK_BYTE[k] = string.char(r)
end
local UNRANKED_BYTE = string.char(100)

local function key_less(a, b)
  local ra, rb = KEY_RANK[a] or 100, KEY_RANK[b] or 100
  if ra ~= rb then
    return ra < rb
  end
  if type(a) == 'string' and type(b) == 'string' then
    return a < b
  end
  return tostring(a) < tostring(b)
end

-- A JSON string with '/' unescaped. In cjson's output a run of backslashes before '/' is
-- escaped backslashes (pairs) plus, when the run is odd, the escape of '/'. Most strings (ids,
-- states, messages) are printable ASCII with nothing to escape: those are quoted as they are,
-- without a call into cjson (a status of 10,000 entries: 197 -> 90 ms).
local function encode_string(s)
  if not s:find('[%c"\\\128-\255]') then
    return '"' .. s .. '"'
  end
  local e = cjson().encode(M.sanitize_utf8(s))
  if e:find('\\/', 1, true) then
    e = e:gsub('(\\+)/', function(run)
      if #run % 2 == 1 then
        return run:sub(2) .. '/'
      end
    end)
  end
  return e
end

-- Append the JSON of `v` to `buf` (pieces up to index `n`); returns the new last index. One
-- buffer for the whole value, joined once: no intermediate string per member.
local function put(v, depth, buf, n)
  local t = type(v)
  if t == 'string' then
    n = n + 1
    buf[n] = encode_string(v)
    return n
  elseif t == 'boolean' then
    n = n + 1
    buf[n] = v and 'true' or 'false'
    return n
  elseif math.type(v) == 'integer' then
    n = n + 1
    buf[n] = tostring(v) -- exact (cjson writes %.14g: 123456789012345 became 1.2345678901234e+14)
    return n
  elseif t ~= 'table' then
    n = n + 1
    buf[n] = cjson().encode(v)
    return n
  end
  if depth > MAX_DEPTH then
    error('JSON nesting too deep')
  end
  local len, count = #v, 0
  if len > 0 then -- an array when it has nothing but 1..len (most tables are objects: len 0)
    for _ in pairs(v) do
      count = count + 1
    end
  end
  if getmetatable(v) == ARRAY_MT or (len > 0 and count == len) then
    n = n + 1
    buf[n] = '['
    for i = 1, len do
      if i > 1 then
        n = n + 1
        buf[n] = ','
      end
      n = put(v[i], depth + 1, buf, n)
    end
    n = n + 1
    buf[n] = ']'
    return n
  end
  -- String keys sort natively (no Lua comparator: the sort was most of the time of a big
  -- status) as their rank's byte followed by the key; other keys take the comparator.
  local keys, all_strings = {}, true
  for k in pairs(v) do
    if type(k) == 'string' then
      keys[#keys + 1] = (RANK_BYTE[k] or UNRANKED_BYTE) .. k
    else
      all_strings = false
      break
    end
  end
  if not all_strings then
    keys = {}
    for k in pairs(v) do
      keys[#keys + 1] = k
    end
    table.sort(keys, key_less)
  else
    table.sort(keys)
    for i, k in ipairs(keys) do
      keys[i] = k:sub(2)
    end
  end
  n = n + 1
  buf[n] = '{'
  for i, k in ipairs(keys) do
    n = n + 1
    buf[n] = (i > 1 and ',' or '') .. encode_string(tostring(k)) .. ':'
    n = put(v[k], depth + 1, buf, n)
  end
  n = n + 1
  buf[n] = '}'
  return n
end

--- Encode `v` as one line of JSON. Raises on what JSON cannot hold (functions, NaN, nesting
-- deeper than 20).
function M.encode(v)
  local buf = {}
  local n = put(v, 0, buf, 0)
  return table.concat(buf, '', 1, n)
end

-- Decoded numbers are floats: make the integral ones integers again.
local function integers(v, depth)
  if type(v) == 'table' and depth < 40 then
    for k, x in pairs(v) do
      if math.type(x) == 'float' and x == math.floor(x) and x >= math.mininteger
        and x <= math.maxinteger then
        v[k] = math.tointeger(x)
      elseif type(x) == 'table' then
        integers(x, depth + 1)
      end
    end
  end
  return v
end

--- Decode one JSON text: the value, or nil and why (cjson's message: "Expected value but
-- found invalid token at character 1"). Integral numbers become integers, `null` is
-- `json.null()`.
function M.decode(text)
  local ok, v = pcall(cjson().decode, text)
  if not ok then
    return nil, tostring(v)
  end
  return integers(v, 0)
end

--- The `null` value of decoded JSON (a light userdata).
function M.null()
  return cjson().null
end

return M
