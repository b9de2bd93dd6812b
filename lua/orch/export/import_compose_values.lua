--- The values of `orch import compose` (orch.export.import_compose): compose's as read
-- (durations, commands split as a shell would, `$$` and interpolation) and Lua's as written
-- (strings, keys, lists of strings in main.lua source).
-- @module orch.export.import_compose_values
local M = {}

--- Milliseconds of a compose duration (`1m30s`, `500ms`, `10s`, or a number of seconds).
function M.duration(v)
  if type(v) == 'number' then
    return math.tointeger(v * 1000)
  end
  if type(v) ~= 'string' or v == '' then
    return nil
  end
  local total, rest = 0, v
  local units = { h = 3600000, m = 60000, s = 1000, ms = 1, us = 0.001 }
  while rest ~= '' do
    local num, unit, tail = rest:match('^(%d+%.?%d*)(%a+)(.*)$')
    if not num or not units[unit] then
      return nil
    end
    total = total + tonumber(num) * units[unit]
    rest = tail
  end
  return math.tointeger(math.floor(total + 0.5))
end

-- A command string split into words as a shell would (quotes, backslashes).
local function split_words(s)
  local words, cur, q, any = {}, {}, nil, false
  local i = 1
  while i <= #s do
    local c = s:sub(i, i)
    if q then
      if c == q then
        q = nil
      elseif c == '\\' and q == '"' and i < #s then
        i = i + 1
        cur[#cur + 1] = s:sub(i, i)
      else
        cur[#cur + 1] = c
      end
    elseif c == '"' or c == "'" then
      q, any = c, true
    elseif c == '\\' and i < #s then
      i = i + 1
      cur[#cur + 1] = s:sub(i, i)
      any = true
    elseif c:match('%s') then
      if #cur > 0 or any then
        words[#words + 1] = table.concat(cur)
        cur, any = {}, false
      end
    else
      cur[#cur + 1] = c
      any = true
    end
    i = i + 1
  end
  if #cur > 0 or any then
    words[#words + 1] = table.concat(cur)
  end
  return words
end

--- Each of `list` as a string.
function M.strings(list)
  local out = {}
  for i, v in ipairs(list) do
    out[i] = tostring(v)
  end
  return out
end

--- The argv of a compose command: a list as is, a string split as a shell would; or nil.
function M.command_of(v)
  if type(v) == 'string' then
    return split_words(v)
  elseif type(v) == 'table' then
    return M.strings(v)
  end
  return nil
end

--- compose's `$$` is a literal `$` (other interpolation is left as written, with a loss).
function M.unescape(s)
  return (tostring(s):gsub('%$%$', '$'))
end

--- Whether `s` has an interpolation (`$VAR`, `${VAR}`) that compose would expand.
function M.has_interpolation(s)
  return tostring(s):gsub('%$%$', ''):find('%$[{%w_]') ~= nil
end

--- Lua source for the string `s`.
function M.lua_string(s)
  return (('%q'):format(s):gsub('\\\n', '\\n'):gsub('\\9', '\\t'))
end

--- Lua source for the key `k` of a table constructor: as is, or `["k"]`.
function M.lua_key(k)
  if k:match('^[%a_][%w_]*$') then
    return k
  end
  return '[' .. M.lua_string(k) .. ']'
end

--- Lua source for a list of strings.
function M.lua_list(list)
  local parts = {}
  for i, v in ipairs(list) do
    parts[i] = M.lua_string(v)
  end
  return '{ ' .. table.concat(parts, ', ') .. ' }'
end

return M
