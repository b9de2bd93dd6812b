--- The data directory of an orch: where its images, volumes, assets and backups live.
--
-- `orch run --data DIR` (and `orch check`, `orch image`) names it; the default is
-- `/var/lib/orch/<name>` as root, else `$XDG_DATA_HOME/orch/<name>`, else
-- `~/.local/share/orch/<name>`, where `<name>` is the orch's name (the one of its control
-- socket). The layout:
--
--     images/<id>/rootfs/        the image's root filesystem (never written by a subcontainer)
--     images/<id>/config.json    {"user", "workdir", "env": ["K=V"...], "entrypoint": [...],
--                                "cmd": [...]}, every key optional
--     volumes/<id>/              a volume (Mounts:mountVolume)
--     assets/                    Mounts:mountAssets
--     backups/                   Mounts:mountBackups
--
-- Entries of `images/` whose name starts with `.` are work in progress (an import being
-- unpacked) and are no image. Under `orch run` the data directory of the run is reached with
-- `datadir.current()` (the evaluation's scope; the script also sees it as `ctx.dataDir`).
-- @module orch.runtime.datadir
local core = require 'orch.core'
local json = require 'orch.runtime.json'
local sched = require 'orch.runtime.sched'

local M = {}

local DIR_MODE = tonumber('755', 8)

--- The longest image or volume id accepted.
M.MAX_ID = 128

--- The default data directory of the orch named `name`: `/var/lib/orch/<name>` as root
-- (`uid` 0), else `$XDG_DATA_HOME/orch/<name>` (an absolute XDG_DATA_HOME only, as the XDG
-- specification says), else `$HOME/.local/share/orch/<name>`.
-- @treturn string|nil the path
-- @treturn string why not (no HOME)
function M.default_path(name, uid, getenv)
  uid = uid or core.getuid()
  getenv = getenv or os.getenv
  if uid == 0 then
    return '/var/lib/orch/' .. name
  end
  local xdg = getenv('XDG_DATA_HOME')
  if xdg and xdg:sub(1, 1) == '/' then
    return (xdg:gsub('/+$', '')) .. '/orch/' .. name
  end
  local home = getenv('HOME')
  if home and home:sub(1, 1) == '/' then
    return (home:gsub('/+$', '')) .. '/.local/share/orch/' .. name
  end
  return nil, 'no data directory: neither XDG_DATA_HOME nor HOME is set (use --data DIR)'
end

--- Check an image or volume id (`what`: 'image' or 'volume'): letters, digits, `.`, `_` and
-- `-`, starting with a letter or a digit, at most `MAX_ID` characters.
-- @treturn string|nil the id
-- @treturn string why not, naming the id
function M.check_id(id, what)
  what = what or 'image'
  if type(id) ~= 'string' then
    return nil, ('the %s id must be a string, got %s'):format(what, type(id))
  elseif id == '' then
    return nil, ('the %s id must not be empty'):format(what)
  elseif #id > M.MAX_ID then
    return nil, ("the %s id '%s' is too long (%d characters at most)"):format(what, id,
      M.MAX_ID)
  elseif not id:match('^[%w][%w._%-]*$') then
    return nil, ("invalid %s id '%s' (use letters, digits, '.', '_' and '-', starting with a "
      .. 'letter or a digit)'):format(what, id)
  end
  return id
end

--- Create `path` and its missing parents (mode 0755, like `mkdir -p`). True, or nil and why.
function M.mkdir_p(path, mode)
  mode = mode or DIR_MODE
  local sofar = path:sub(1, 1) == '/' and '' or '.'
  for part in path:gmatch('[^/]+') do
    sofar = sofar .. '/' .. part
    local st = core.lstat(sofar)
    if not st then
      local ok, merr, code = core.mkdir(sofar, mode)
      if not ok and code ~= 'EEXIST' then
        return nil, ("cannot create '%s': %s"):format(sofar, merr)
      end
    elseif st.type == 'link' then
      local f = io.open(sofar .. '/.', 'r') -- a link to a directory is fine (like mkdir -p)
      if not f then
        return nil, ("cannot create '%s': not a directory"):format(path)
      end
      f:close()
    elseif st.type ~= 'directory' then
      return nil, ("cannot create '%s': '%s' is not a directory"):format(path, sofar)
    end
  end
  return true
end

local DataDir = {}
DataDir.__index = DataDir

--- The data directory at `root` (a path; nothing is created or checked).
-- @treturn DataDir with the field `root`
function M.open(root)
  assert(type(root) == 'string' and root ~= '', 'datadir.open: a path is needed')
  return setmetatable({ root = (root:gsub('(.)/+$', '%1')) }, DataDir)
end

--- The data directory of the running orch: the one of the evaluation's scope (`orch run`,
-- `orch check`: `--data` or the default), else `$ORCH_DATA` (orch used as a library).
-- @treturn DataDir|nil
-- @treturn string why not
function M.current()
  local scope = sched.scope()
  local root = type(scope) == 'table' and scope.data_dir or nil
  root = root or os.getenv('ORCH_DATA')
  if not root or root == '' then
    return nil, 'no data directory: run the script with orch run (--data DIR) or set ORCH_DATA'
  end
  return M.open(root)
end

--- `images/`.
function DataDir:images()
  return self.root .. '/images'
end

--- `images/<id>/` (the id is not checked: see `datadir.check_id`).
function DataDir:image(id)
  return self.root .. '/images/' .. id
end

--- `images/<id>/rootfs`: the image's root filesystem.
function DataDir:image_rootfs(id)
  return self.root .. '/images/' .. id .. '/rootfs'
end

--- `images/<id>/config.json`.
function DataDir:image_config_path(id)
  return self.root .. '/images/' .. id .. '/config.json'
end

--- `volumes/<id>/`.
function DataDir:volume(id)
  return self.root .. '/volumes/' .. id
end

--- `assets/`.
function DataDir:assets()
  return self.root .. '/assets'
end

--- `backups/`.
function DataDir:backups()
  return self.root .. '/backups'
end

--- Whether the image `id` exists (its rootfs is a directory).
function DataDir:has_image(id)
  local st = M.check_id(id) and core.lstat(self:image_rootfs(id))
  return st and st.type == 'directory' or false
end

--- The ids of the images, sorted (those with a rootfs directory).
function DataDir:image_ids()
  local ids = {}
  for _, name in ipairs(core.readdir(self:images()) or {}) do
    if name:sub(1, 1) ~= '.' and self:has_image(name) then
      ids[#ids + 1] = name
    end
  end
  table.sort(ids)
  return ids
end

local CONFIG_KEYS = { user = 'string', workdir = 'string', env = 'list', entrypoint = 'list',
  cmd = 'list' }

-- One value of config.json: a string, or a list of strings (`env`: NAME=VALUE each).
local function check_value(k, kind, v)
  if kind == 'string' then
    if type(v) ~= 'string' then
      return nil, ("'%s' must be a string, got %s"):format(k, type(v))
    end
    return v
  end
  if type(v) ~= 'table' then
    return nil, ("'%s' must be an array of strings, got %s"):format(k, type(v))
  end
  local list = {}
  for i = 1, #v do
    if type(v[i]) ~= 'string' then
      return nil, ("'%s[%d]' must be a string, got %s"):format(k, i, type(v[i]))
    elseif k == 'env' and not v[i]:match('^[^=]+=') then
      return nil, ("'env[%d]' must be NAME=VALUE, got '%s'"):format(i, v[i])
    end
    list[i] = v[i]
  end
  if next(v) ~= nil and #list == 0 then
    return nil, ("'%s' must be an array of strings, got an object"):format(k)
  end
  return list
end

-- `cfg` (decoded config.json) checked and normalised: JSON nulls dropped, `env` entries K=V.
local function check_config(cfg)
  if type(cfg) ~= 'table' or (next(cfg) ~= nil and cfg[1] ~= nil) then
    return nil, 'not a JSON object'
  end
  local null = json.null()
  local out = {}
  for k, v in pairs(cfg) do
    local kind = CONFIG_KEYS[k]
    if kind == nil then
      return nil, ("unknown key '%s' (valid: cmd, entrypoint, env, user, workdir)"):format(
        tostring(k))
    end
    if v ~= null then -- null is the same as missing
      local val, verr = check_value(k, kind, v)
      if verr then
        return nil, verr
      end
      out[k] = val
    end
  end
  return out
end

--- The config of image `id`: `{user=, workdir=, env={'K=V'...}, entrypoint={...}, cmd={...}}`
-- with the keys config.json has (missing or null ones are nil).
-- @treturn table|nil the config
-- @treturn string why not: "image 'main': ..." (no such image, unreadable or malformed file)
function DataDir:image_config(id)
  local ok, ierr = M.check_id(id)
  if not ok then
    return nil, ierr
  end
  local path = self:image_config_path(id)
  if not self:has_image(id) then
    return nil, ("image '%s': no such image in %s (import it with orch image import PATH %s)")
      :format(id, self:images(), id)
  end
  local f, ferr = io.open(path, 'r')
  if not f then
    return nil, ("image '%s': cannot read its config: %s"):format(id, ferr)
  end
  local text, rerr = f:read('a')
  f:close()
  if not text then
    return nil, ("image '%s': cannot read its config %s: %s"):format(id, path, rerr)
  end
  local cfg, derr = json.decode(text)
  if cfg == nil then
    return nil, ("image '%s': %s is not valid JSON: %s"):format(id, path, derr)
  end
  local out, cerr = check_config(cfg)
  if not out then
    return nil, ("image '%s': %s: %s"):format(id, path, cerr)
  end
  return out
end

--- Write `cfg` (as `image_config` returns it) as JSON into `path` (used by the importer).
function M.write_config(path, cfg)
  local obj = {}
  for k in pairs(CONFIG_KEYS) do
    local v = cfg[k]
    if type(v) == 'table' then
      obj[k] = json.array({ table.unpack(v) })
    elseif v ~= nil then
      obj[k] = v
    end
  end
  local f, ferr = io.open(path, 'w')
  if not f then
    return nil, ferr
  end
  local ok, werr = f:write(json.encode(obj), '\n')
  local cok, cerr = f:close()
  if not ok or not cok then
    return nil, werr or cerr
  end
  return true
end

M.DataDir = DataDir

return M
