--- Users and groups of an image, from its own `/etc/passwd` and `/etc/group` (never the
-- host's): a user given as a name, a uid, `uid:gid` or `name:group` resolves to the uid, the
-- primary gid, the supplementary groups and HOME, as the seed's start-container does.
-- @module orch.subcontainer.passwd
local M = {}

local MAX_ID = 4294967294

-- The lines of `path` split on ':' (a missing file: none).
local function entries(path)
  local out = {}
  local f = io.open(path, 'r')
  if not f then
    return out
  end
  for line in f:lines() do
    if line ~= '' and line:sub(1, 1) ~= '#' then
      local fields = {}
      for field in (line .. ':'):gmatch('([^:]*):') do
        fields[#fields + 1] = field
      end
      out[#out + 1] = fields
    end
  end
  f:close()
  return out
end

local function id_of(text)
  local n = text and text:match('^%d+$') and math.tointeger(tonumber(text))
  return n and n <= MAX_ID and n or nil
end

--- Resolve `user` (default `'root'`) against the image root `root` (a host path).
-- @treturn table|nil `{uid, gid, groups = {gid...}, home, name}`
-- @treturn string why not ("unknown user 'x' in the image")
function M.resolve(root, user)
  user = user == nil and 'root' or user
  if math.type(user) == 'integer' then
    user = tostring(user)
  end
  if type(user) ~= 'string' then
    return nil, ('user must be a name, a uid or "uid:gid", got %s'):format(type(user))
  end
  local uname, gname = user:match('^([^:]+):([^:]+)$')
  uname = uname or user
  local pw = entries(root .. '/etc/passwd')
  local entry
  for _, e in ipairs(pw) do
    if e[1] == uname or (id_of(uname) and id_of(e[3]) == id_of(uname)) then
      entry = e
      break
    end
  end
  local uid = entry and id_of(entry[3]) or id_of(uname)
  if not uid then
    return nil, ("unknown user '%s' in the image (its /etc/passwd)"):format(uname)
  end
  local grp = entries(root .. '/etc/group')
  local gid = entry and id_of(entry[4]) or uid
  if gname then
    gid = id_of(gname)
    if not gid then
      for _, g in ipairs(grp) do
        if g[1] == gname then
          gid = id_of(g[3])
        end
      end
    end
    if not gid then
      return nil, ("unknown group '%s' in the image (its /etc/group)"):format(gname)
    end
  end
  local groups, seen = { gid }, { [gid] = true }
  local name = entry and entry[1]
  if name and not gname then
    for _, g in ipairs(grp) do
      local g_id = id_of(g[3])
      if g_id and not seen[g_id] then
        for member in (g[4] or ''):gmatch('[^,]+') do
          if member == name then
            seen[g_id] = true
            groups[#groups + 1] = g_id
          end
        end
      end
    end
  end
  return { uid = uid, gid = gid, groups = groups, name = name,
    home = entry and entry[6] ~= '' and entry[6] or '/' }
end

return M
