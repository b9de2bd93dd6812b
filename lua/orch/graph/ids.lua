--- What an entry id may be, and how messages show one.
-- An id prefixes every line of its output (`<id> | <line>`) and names it in orch's own records
-- (`orch | <id>: ...`), the status view and the control protocol; exporters map it to unit and
-- object names. So an id must not be able to pass for something else: it is valid UTF-8 of at
-- most 63 bytes (a Kubernetes name's limit), has no control or format character (C0, DEL, C1
-- including U+0085, U+2028/U+2029, bidi overrides and isolates, zero-width characters, BOM...),
-- no `|`, no leading or trailing whitespace, and is not `orch`. A visible entry's id must also
-- be a valid health check id (`^[a-z0-9]+(-[a-z0-9]+)*$`).
-- @module orch.graph.ids
local M = {}

--- The longest id, in bytes (a Kubernetes object name stops at 63).
M.MAX_BYTES = 63

--- The id orch's own log records carry.
M.RESERVED = 'orch'

-- Code points that are not graphic: Unicode's Cc (C1; C0 and DEL are checked bytewise), Cf,
-- Zl and Zp, as ranges {first, last}.
local INVISIBLE = {
  { 0x80, 0x9F }, { 0xAD, 0xAD }, { 0x600, 0x605 }, { 0x61C, 0x61C }, { 0x6DD, 0x6DD },
  { 0x70F, 0x70F }, { 0x890, 0x891 }, { 0x8E2, 0x8E2 }, { 0x180E, 0x180E },
  { 0x200B, 0x200F }, { 0x2028, 0x202E }, { 0x2060, 0x2064 }, { 0x2066, 0x206F },
  { 0xFEFF, 0xFEFF }, { 0xFFF9, 0xFFFB }, { 0x110BD, 0x110BD }, { 0x110CD, 0x110CD },
  { 0x13430, 0x1343F }, { 0x1BCA0, 0x1BCA3 }, { 0x1D173, 0x1D17A }, { 0xE0001, 0xE0001 },
  { 0xE0020, 0xE007F },
}

-- Unicode white space that is graphic (Zs), besides the ASCII space.
local SPACE = { [0xA0] = true, [0x1680] = true, [0x202F] = true, [0x205F] = true,
  [0x3000] = true }
for c = 0x2000, 0x200A do
  SPACE[c] = true
end

local function invisible(c)
  for _, r in ipairs(INVISIBLE) do
    if c >= r[1] and c <= r[2] then
      return true
    end
  end
  return false
end

local function space(c)
  return c == 0x20 or SPACE[c] == true
end

local NAMED = { ['\n'] = '\\n', ['\t'] = '\\t', ['\r'] = '\\r', ['"'] = '\\"', ['\\'] = '\\\\' }

--- An id as messages show it: `'web'` when every character is plain, else a Lua string
-- literal in double quotes with each control byte, invalid byte and invisible or non-ASCII
-- white space character escaped (`"web\n"`, `"a\u{202E}b"`), so a message cannot be bent by
-- the id it reports.
function M.show(id)
  local plain = utf8.len(id) ~= nil and not id:find('[%c"\\]')
  if plain then
    for _, c in utf8.codes(id) do
      if invisible(c) or (c ~= 0x20 and space(c)) then
        plain = false
        break
      end
    end
  end
  if plain then
    return ("'%s'"):format(id)
  end
  local out, i = {}, 1
  while i <= #id do
    local c = id:byte(i)
    local len = c < 0x80 and 1 or c >= 0xF0 and 4 or c >= 0xE0 and 3 or c >= 0xC0 and 2 or 1
    local ch = id:sub(i, i + len - 1)
    local ok, cp = pcall(utf8.codepoint, ch)
    if len == 1 and (c < 0x20 or c == 0x7F or c >= 0x80 or ch == '"' or ch == '\\') then
      out[#out + 1] = NAMED[ch] or ('\\%d'):format(c)
    elseif len == 1 then
      out[#out + 1] = ch
    elseif not ok or #ch ~= len then
      out[#out + 1] = ('\\%d'):format(c) -- an invalid sequence: its bytes one by one
      len = 1
    elseif invisible(cp) or space(cp) then
      out[#out + 1] = ('\\u{%X}'):format(cp)
    else
      out[#out + 1] = ch
    end
    i = i + len
  end
  return '"' .. table.concat(out) .. '"'
end

--- What is wrong with id `id` (a non-empty string), or nil: returns how to show it and what
-- is wrong (`'"web\n"', 'contains a control character'`).
function M.problem(id)
  if #id > M.MAX_BYTES then
    return M.show(id:sub(1, 40)) .. '...', ('is %d bytes long; an id has at most %d bytes')
      :format(#id, M.MAX_BYTES)
  end
  if not id:find('[^!-{}~]') then -- the common case: printable ASCII, no space, no '|'
    if id == M.RESERVED then
      return M.show(id), "is reserved (orch's own records carry it)"
    end
    return nil
  end
  if id:find('[%c]') then
    return M.show(id), 'contains a control character'
  end
  if utf8.len(id) == nil then
    return M.show(id), 'is not valid UTF-8'
  end
  local first, last
  for _, c in utf8.codes(id) do
    if invisible(c) then
      return M.show(id), ('contains a control or format character (U+%04X)'):format(c)
    end
    first = first or c
    last = c
  end
  local blank = true
  for _, c in utf8.codes(id) do
    if not space(c) then
      blank = false
      break
    end
  end
  if blank then
    return M.show(id), 'is only white space'
  end
  if space(first) or space(last) then
    return M.show(id), 'starts or ends with white space'
  end
  if id:find('|', 1, true) then
    return M.show(id), "contains '|' (orch's output uses it to end the id of a line)"
  end
  if id == M.RESERVED then
    return M.show(id), "is reserved (orch's own records carry it)"
  end
  return nil
end

--- Whether `id` is a valid health check id: `^[a-z0-9]+(-[a-z0-9]+)*$`.
function M.valid_health_id(id)
  return id:match('^[a-z0-9%-]+$') ~= nil and not id:find('^%-') and not id:find('%-$')
    and not id:find('%-%-')
end

return M
