--- A YAML reader for the subset compose files use: block mappings and sequences, flow
-- sequences and mappings on one line, plain, single- and double-quoted scalars, `|` and `>`
-- block scalars, comments and `---`. Anchors, aliases, tags and multi-line flow collections
-- are errors with the line number, never a wrong value. Scalars stay strings, except that
-- `true`/`false`, `null`/`~` and integers are converted (`keep_strings` leaves them).
-- @module orch.export.yaml_read
local M = {}

local function perr(n, fmt, ...)
  error(('line %d: ' .. fmt):format(n, ...), 0)
end

local function scalar(s, n)
  if s == '' or s == '~' or s == 'null' or s == 'Null' or s == 'NULL' then
    return nil
  end
  local c = s:sub(1, 1)
  if c == '"' then
    local body = s:match('^"(.*)"$')
    if not body then
      perr(n, 'unterminated double-quoted string')
    end
    local esc = { n = '\n', t = '\t', r = '\r', ['"'] = '"', ['\\'] = '\\', ['/'] = '/',
      ['0'] = '\0', [' '] = ' ' }
    return (body:gsub('\\(x%x%x)', function(h)
      return string.char(tonumber(h:sub(2), 16))
    end):gsub('\\u(%x%x%x%x)', function(h)
      return utf8.char(tonumber(h, 16))
    end):gsub('\\(.)', function(ch)
      return esc[ch] or ('\\' .. ch)
    end))
  elseif c == "'" then
    local body = s:match("^'(.*)'$")
    if not body then
      perr(n, 'unterminated single-quoted string')
    end
    return (body:gsub("''", "'"))
  elseif c == '&' or c == '*' or c == '!' then
    perr(n, 'anchors, aliases and tags are not supported (%s)', s)
  end
  if s == 'true' or s == 'True' then
    return true
  elseif s == 'false' or s == 'False' then
    return false
  end
  if s:match('^[-+]?%d+$') then
    return math.tointeger(tonumber(s))
  end
  if s:match('^[-+]?%d+%.%d*$') then
    return tonumber(s)
  end
  return s
end

-- Strip a trailing comment (a '#' after white space, outside quotes).
local function uncomment(s)
  local q
  for i = 1, #s do
    local c = s:sub(i, i)
    if q then
      if c == q then
        q = nil
      end
    elseif c == '"' or c == "'" then
      if i == 1 or s:sub(i - 1, i - 1):match('[%s%[{,:]') then
        q = c
      end
    elseif c == '#' and (i == 1 or s:sub(i - 1, i - 1):match('%s')) then
      return (s:sub(1, i - 1):gsub('%s+$', ''))
    end
  end
  return (s:gsub('%s+$', ''))
end

-- Split a flow collection's body at top-level commas.
local function split_flow(body)
  local parts, depth, q, start = {}, 0, nil, 1
  for i = 1, #body do
    local c = body:sub(i, i)
    if q then
      if c == q then
        q = nil
      end
    elseif c == '"' or c == "'" then
      q = c
    elseif c == '[' or c == '{' then
      depth = depth + 1
    elseif c == ']' or c == '}' then
      depth = depth - 1
    elseif c == ',' and depth == 0 then
      parts[#parts + 1] = body:sub(start, i - 1)
      start = i + 1
    end
  end
  local last = body:sub(start)
  if last:match('%S') then
    parts[#parts + 1] = last
  end
  return parts
end

local value_of

local function flow(s, n)
  local c = s:sub(1, 1)
  if c == '[' then
    if s:sub(-1) ~= ']' then
      perr(n, 'a flow sequence must end on its line')
    end
    local out = {}
    for _, p in ipairs(split_flow(s:sub(2, -2))) do
      out[#out + 1] = value_of(p:match('^%s*(.-)%s*$'), n)
    end
    return out
  elseif c == '{' then
    if s:sub(-1) ~= '}' then
      perr(n, 'a flow mapping must end on its line')
    end
    local out = {}
    for _, p in ipairs(split_flow(s:sub(2, -2))) do
      local k, v = p:match('^%s*(.-)%s*:%s+(.-)%s*$')
      if not k then
        k, v = p:match('^%s*(.-)%s*:?%s*$'), ''
      end
      out[scalar(k, n)] = value_of(v, n)
    end
    return out
  end
  return nil
end

function value_of(s, n)
  if s:sub(1, 1) == '[' or s:sub(1, 1) == '{' then
    return flow(s, n)
  end
  return scalar(s, n)
end

-- `key: rest` of a mapping line (quoted keys allowed), or nil.
local function key_value(s)
  local k, rest = s:match('^("[^"]*")%s*:(.*)$')
  if not k then
    k, rest = s:match("^('[^']*')%s*:(.*)$")
  end
  if not k then
    k, rest = s:match('^([^%s#\'"%[{][^:]-)%s*:(.*)$')
    if k and rest ~= '' and not rest:match('^%s') then
      return nil -- `a:b` is a scalar, not a key
    end
  end
  if not k then
    return nil
  end
  return k, rest:match('^%s*(.-)$')
end

--- Parse `text` (one document); returns the value, or nil and `line N: why`.
function M.decode(text)
  local lines = {}
  local n = 0
  for raw in (text .. '\n'):gmatch('([^\n]*)\n') do
    n = n + 1
    if raw:find('\t', 1, true) and raw:match('^%s*'):find('\t') then
      return nil, ('line %d: tabs are not allowed in indentation'):format(n)
    end
    lines[#lines + 1] = { n = n, raw = raw:gsub('\r$', '') }
  end
  local pos = 1
  local function peek()
    while pos <= #lines do
      local l = lines[pos]
      local body = uncomment(l.raw)
      if body:match('%S') and not body:match('^%-%-%-') and not body:match('^%.%.%.') then
        return l, #body:match('^( *)'), body:match('^%s*(.-)$')
      end
      pos = pos + 1
    end
    return nil
  end
  local parse_block

  local function block_scalar(indicator, parent_indent)
    local out, indent = {}, nil
    while pos <= #lines do
      local raw = lines[pos].raw
      local ind = #raw:match('^( *)')
      if raw:match('^%s*$') then
        out[#out + 1] = ''
        pos = pos + 1
      elseif ind > parent_indent then
        indent = indent or ind
        out[#out + 1] = raw:sub(indent + 1)
        pos = pos + 1
      else
        break
      end
    end
    while #out > 0 and out[#out] == '' do
      out[#out] = nil
    end
    local keep = indicator:find('+', 1, true)
    local strip = indicator:find('-', 1, true)
    local s
    if indicator:sub(1, 1) == '>' then
      s = table.concat(out, ' '):gsub(' \n', '\n')
    else
      s = table.concat(out, '\n')
    end
    if not strip or keep then
      s = s .. '\n'
    end
    return s
  end

  -- The value after `key:` or `- ` when nothing follows on the line: a nested block or null.
  local function nested(indent)
    local l, ind = peek()
    if l and ind > indent then
      return parse_block(ind)
    end
    if l and ind == indent and uncomment(l.raw):match('^%s*%- ') then
      return parse_block(ind) -- a sequence may sit at its key's indentation
    end
    return nil
  end

  local function inline(rest, indent, at)
    if rest == '' then
      return nested(indent)
    elseif rest:match('^[|>][-+]?%d*$') then
      return block_scalar(rest, indent)
    end
    return value_of(rest, at)
  end

  function parse_block(indent)
    local ind
    local l, _, body = peek()
    if not l then
      return nil
    end
    if body:match('^%-%s') or body == '-' then
      local out = {}
      while true do
        l, ind, body = peek()
        if not l or ind ~= indent or not (body:match('^%-%s') or body == '-') then
          break
        end
        local rest = body:match('^%-%s*(.-)$')
        if key_value(rest) then
          -- `- key: value` starts a mapping indented past the dash
          local sub = ind + (#body - #rest)
          lines[pos].raw = string.rep(' ', sub) .. rest
          out[#out + 1] = parse_block(sub)
        else
          pos = pos + 1
          out[#out + 1] = inline(rest, ind, l.n)
        end
      end
      return out
    end
    local out = {}
    while true do
      l, ind, body = peek()
      if not l or ind ~= indent then
        if l and ind > indent then
          perr(l.n, 'unexpected indentation')
        end
        break
      end
      local k, rest = key_value(body)
      if not k then
        perr(l.n, 'expected "key: value", got %s', body)
      end
      pos = pos + 1
      local key = scalar(k, l.n)
      if key == nil then
        key = 'null'
      end
      out[tostring(key)] = inline(rest, ind, l.n)
    end
    return out
  end

  local ok, v = pcall(function()
    local l, ind = peek()
    if not l then
      return nil
    end
    local r = parse_block(ind)
    local rest = peek()
    if rest then
      perr(rest.n, 'unexpected indentation')
    end
    return r
  end)
  if not ok then
    return nil, v
  end
  return v
end

return M
