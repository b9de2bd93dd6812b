--- What a child gets from orch's policy: its environment (orch's own overlaid by the entry's)
-- and its credentials (a user name, a uid or `uid:gid` resolved to the numbers the core takes,
-- with HOME, USER and LOGNAME of that user).
-- @module orch.runtime.process_env
local core = require 'orch.core'

local M = {}

-- orch's own environment as sorted names and `K=V` strings, read once: nothing changes it
-- while orch runs, and re-reading and re-sorting it for every spawn was a quarter of the Lua
-- time of starting 1000 daemons.
local own_env

local function sorted_env(map)
  local names = {}
  for k in pairs(map) do
    names[#names + 1] = k
  end
  table.sort(names)
  local list = {}
  for i, k in ipairs(names) do
    list[i] = k .. '=' .. map[k]
  end
  return names, list
end

--- Names of orch's own environment a child never inherits (it may still set them in its own
-- `env`): they address orch's own systemd unit (sd_notify, socket activation), and a child that
-- speaks sd_notify would otherwise talk to it.
M.NOT_INHERITED = { NOTIFY_SOCKET = true, LISTEN_FDS = true, LISTEN_PID = true,
  LISTEN_FDNAMES = true }

--- The orchestrator's environment (or `base`, a map) overlaid by `env` (false removes a name),
-- as `K=V` strings in a deterministic order: the names not in `env`, sorted, then those `env`
-- sets, sorted.
-- orch's environment without the names of an overlay, per set of names (most spawns overlay
-- the same few): copying it beats filtering ~50 names on every spawn.
local kept_for = {}

function M.merge_env(env, base)
  local names, list
  if base then
    names, list = sorted_env(base)
  else
    if not own_env then
      local mine = core.environ()
      for name in pairs(M.NOT_INHERITED) do
        mine[name] = nil
      end
      own_env = { sorted_env(mine) }
    end
    names, list = own_env[1], own_env[2]
  end
  if env == nil or next(env) == nil then
    return table.move(list, 1, #list, 1, {})
  end
  local set = {}
  for k in pairs(env) do
    set[#set + 1] = k
  end
  table.sort(set)
  local sig = not base and table.concat(set, '\0') or nil
  local kept = sig and kept_for[sig]
  if not kept then
    kept = {}
    for i, k in ipairs(names) do
      if env[k] == nil then
        kept[#kept + 1] = list[i]
      end
    end
    if sig then
      kept_for[sig] = kept
    end
  end
  local out = table.move(kept, 1, #kept, 1, {})
  for _, k in ipairs(set) do
    local v = env[k]
    if v ~= false then
      out[#out + 1] = k .. '=' .. tostring(v)
    end
  end
  return out
end

-- The largest uid or gid: (uid_t)-1 means "unchanged" to the kernel, and a wider number would
-- wrap to 0 (root) in the C cast.
local MAX_ID = 4294967294

local function parse_id(text)
  local n = text:match('^%d+$') and math.tointeger(tonumber(text))
  if n and n <= MAX_ID then
    return n
  end
end

--- Resolve `user` (a name, a uid, or `'uid:gid'`) into `{uid =, gid =, pw = passwd entry or
-- nil}`: a uid's primary group is its passwd entry's (the uid itself without one).
-- @return the table, or nil and why not
function M.resolve_user(user)
  local uid, gid
  if math.type(user) == 'integer' then
    uid = user >= 0 and user <= MAX_ID and user or nil
  elseif type(user) ~= 'string' then
    return nil, ('user must be a name, a uid or "uid:gid", got %s'):format(type(user))
  elseif user:find('\0', 1, true) then
    return nil, ('user %q holds a NUL byte'):format(user)
  elseif user:match('^%d+:%d+$') then
    local u, g = user:match('^(%d+):(%d+)$')
    uid, gid = parse_id(u), parse_id(g)
    if not gid then
      uid = nil
    end
  elseif user:match('^%d+$') then
    uid = parse_id(user)
  else
    local pw = core.getpwnam(user)
    if not pw then
      return nil, ("unknown user '%s'"):format(user)
    end
    return { uid = pw.uid, gid = pw.gid, pw = pw }
  end
  if not uid then
    return nil, ("user '%s': uid and gid must be integers from 0 to %d"):format(tostring(user),
      MAX_ID)
  end
  local pw = core.getpwnam(uid)
  return { uid = uid, gid = gid or (pw and pw.gid) or uid, pw = pw }
end

-- HOME, USER and LOGNAME of the target user (`u` from resolve_user), unless the caller set them.
function M.user_env(u, env)
  local pw = u and u.pw
  if not pw then
    return env
  end
  local out = {}
  for k, v in pairs(env or {}) do
    out[k] = v
  end
  if out.HOME == nil then
    out.HOME = pw.dir
  end
  if out.USER == nil then
    out.USER = pw.name
  end
  if out.LOGNAME == nil then
    out.LOGNAME = pw.name
  end
  return out
end


return M
