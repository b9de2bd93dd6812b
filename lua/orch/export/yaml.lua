--- A small YAML writer for the exporters: block style, keys in the order given, strings quoted
-- whenever a plain scalar could be read as something else. A mapping is made with `map(k1, v1,
-- k2, v2, ...)` (nil values are left out); a plain Lua array is a sequence.
-- @module orch.export.yaml
local M = {}

local ORDER = setmetatable({}, { __mode = 'k' })

--- An ordered mapping: `map('a', 1, 'b', nil, 'c', {})` is `{a = 1, c = {}}`, keys in order.
function M.map(...)
  local t, keys = {}, {}
  for i = 1, select('#', ...), 2 do
    local k, v = select(i, ...)
    if v ~= nil then
      keys[#keys + 1] = k
      t[k] = v
    end
  end
  ORDER[t] = keys
  return t
end

--- Append `k: v` to mapping `t` (made by `map`); nil does nothing.
function M.set(t, k, v)
  if v == nil then
    return t
  end
  if t[k] == nil then
    local keys = ORDER[t]
    keys[#keys + 1] = k
  end
  t[k] = v
  return t
end

--- Whether `t` is a mapping made by `map`.
function M.is_map(t)
  return ORDER[t] ~= nil
end

local RESERVED = {
  ['true'] = true, ['false'] = true, yes = true, no = true, on = true, off = true, y = true,
  n = true, null = true, ['~'] = true,
}

local function quote(s)
  local out = s:gsub('[%c"\\\127]', function(c)
    local named = { ['\n'] = '\\n', ['\t'] = '\\t', ['"'] = '\\"', ['\\'] = '\\\\',
      ['\r'] = '\\r' }
    return named[c] or ('\\x%02x'):format(c:byte())
  end)
  return '"' .. out .. '"'
end

--- A scalar as YAML.
function M.scalar(v)
  local t = type(v)
  if t == 'boolean' then
    return tostring(v)
  elseif t == 'number' then
    if math.type(v) == 'integer' then
      return tostring(v)
    end
    return ('%.17g'):format(v)
  end
  local s = tostring(v)
  if s:match('^[%w_/.][%w_/.:@%-]*$') and not s:match(':$') and not RESERVED[s:lower()]
    and not tonumber(s) and not s:match('^[%d.:+-]+$') and not s:match('^%.') then
    return s
  end
  return quote(s)
end

local function emit(v, indent, lines, prefix)
  local pad = string.rep('  ', indent)
  if type(v) == 'table' and ORDER[v] then
    local keys = ORDER[v]
    if #keys == 0 then
      lines[#lines + 1] = prefix .. '{}'
      return
    end
    for i, k in ipairs(keys) do
      local lead = (i == 1 and prefix ~= '') and prefix or pad
      local val = v[k]
      local key = M.scalar(k)
      if type(val) == 'table' and ((ORDER[val] and #ORDER[val] > 0) or (not ORDER[val]
        and #val > 0)) then
        lines[#lines + 1] = lead .. key .. ':'
        emit(val, indent + 1, lines, '')
      else
        emit(val, indent + 1, lines, lead .. key .. ': ')
      end
    end
  elseif type(v) == 'table' then
    if #v == 0 then
      lines[#lines + 1] = prefix .. '[]'
      return
    end
    for _, item in ipairs(v) do
      if type(item) == 'table' and ((ORDER[item] and #ORDER[item] > 0) or (not ORDER[item]
        and #item > 0)) then
        emit(item, indent + 1, lines, pad .. '- ')
      else
        emit(item, indent + 1, lines, pad .. '- ')
      end
    end
  else
    lines[#lines + 1] = prefix .. M.scalar(v)
  end
end

--- One YAML document for `v` (no `---`), ending with a newline.
function M.encode(v)
  local lines = {}
  emit(v, 0, lines, '')
  return table.concat(lines, '\n') .. '\n'
end

return M
