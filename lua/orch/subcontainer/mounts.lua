--- `orch.Mounts`: what a subcontainer binds into its root, as the seed's `Mounts` builder.
-- `Mounts.of():mountVolume{volumeId, subpath, mountpoint, readonly, filetype}`,
-- `:mountAssets{subpath, mountpoint, filetype}`, `:mountDependency{packageId, volumeId, subpath,
-- mountpoint, readonly, filetype}` (read-only unless `readonly = false`),
-- `:mountBackups{subpath, mountpoint, readonly, filetype}`; `:build()` returns the list of
-- descriptors `{type, volumeId, packageId, subpath, mountpoint, readonly, filetype}`.
-- `sources(list, data)` prepares them (2.12 of the reference: `filetype` file, directory or
-- infer; missing sources are created) and gives bubblewrap's bind arguments; `readonly` is a
-- read-only bind (enforced, unlike upstream).
-- @module orch.subcontainer.mounts
local core = require 'orch.core'
local datadir = require 'orch.runtime.datadir'

local M = {}

local Mounts = {}
Mounts.__index = Mounts

--- A new, empty mount list.
function M.of()
  return setmetatable({ _list = {} }, Mounts)
end

local FILETYPES = { file = true, directory = true, infer = true }

-- Check one mount's options and add its descriptor.
local function add(self, kind, o, method)
  if type(o) ~= 'table' then
    error(('Mounts:%s: options must be a table, got %s'):format(method, type(o)), 3)
  end
  local function bad(field, what)
    error(('Mounts:%s: %s must be %s, got %s'):format(method, field, what,
      o[field] == nil and 'nil' or ('%q'):format(tostring(o[field]))), 4)
  end
  local mp = o.mountpoint
  if type(mp) ~= 'string' or mp:sub(1, 1) ~= '/' or mp:find('\0', 1, true)
    or mp:find('/%.%.?/') or mp:find('/%.%.?$') then
    bad('mountpoint', 'an absolute path without . or .. parts')
  end
  if o.subpath ~= nil and (type(o.subpath) ~= 'string' or o.subpath:find('%.%.')
    or o.subpath:find('\0', 1, true)) then
    bad('subpath', 'a path without ..')
  end
  if o.readonly ~= nil and type(o.readonly) ~= 'boolean' then
    bad('readonly', 'a boolean')
  end
  local ft = o.filetype or 'directory'
  if not FILETYPES[ft] then
    bad('filetype', "'file', 'directory' or 'infer'")
  end
  local d = { type = kind, mountpoint = mp, subpath = o.subpath, filetype = ft }
  if kind == 'volume' or kind == 'dependency' then
    local ok, why = datadir.check_id(o.volumeId, 'volume')
    if not ok then
      error(('Mounts:%s: volumeId: %s'):format(method, why), 3)
    end
    d.volumeId = o.volumeId
  end
  if kind == 'dependency' then
    local ok, why = datadir.check_id(o.packageId, 'package')
    if not ok then
      error(('Mounts:%s: packageId: %s'):format(method, why), 3)
    end
    d.packageId = o.packageId
    d.readonly = o.readonly ~= false
  elseif kind == 'assets' then
    d.readonly = true
  else
    d.readonly = o.readonly == true
  end
  self._list[#self._list + 1] = d
  return self
end

function Mounts:mountVolume(o)
  return add(self, 'volume', o, 'mountVolume')
end

function Mounts:mountAssets(o)
  return add(self, 'assets', o, 'mountAssets')
end

function Mounts:mountDependency(o)
  return add(self, 'dependency', o, 'mountDependency')
end

function Mounts:mountBackups(o)
  return add(self, 'backup', o, 'mountBackups')
end

--- The descriptors, in the order they were added (copies).
function Mounts:build()
  local out = {}
  for i, d in ipairs(self._list) do
    local c = {}
    for k, v in pairs(d) do
      c[k] = v
    end
    out[i] = c
  end
  return out
end

--- Whether `v` is a Mounts builder.
function M.is(v)
  return getmetatable(v) == Mounts
end

-- The host path a descriptor binds, under the data directory `data` (datadir.DataDir).
local function source_of(d, data)
  local sub = d.subpath and d.subpath ~= '' and ('/' .. d.subpath:gsub('^/+', '')) or ''
  if d.type == 'volume' then
    return data:volume(d.volumeId) .. sub
  elseif d.type == 'assets' then
    return data:assets() .. sub
  elseif d.type == 'backup' then
    return data:backups() .. sub
  end
  -- another package's volume: the data directory of the orch named packageId, beside ours
  local parent = data.root:match('^(.*)/[^/]+$') or '.'
  return parent .. '/' .. d.packageId .. '/volumes/' .. d.volumeId .. sub
end

-- Create the source as `filetype` says when it is missing; the kind it is ('file'/'directory').
local function prepare(src, ft)
  local st = core.lstat(src)
  if st then
    local dir = st.type == 'directory'
    if st.type == 'link' then -- what it points to
      local f = io.open(src .. '/.', 'r')
      dir = f ~= nil
      if f then
        f:close()
      end
    end
    return dir and 'directory' or 'file'
  end
  local parent = src:match('^(.*)/[^/]*$')
  local ok, err = datadir.mkdir_p(ft == 'file' and parent or src)
  if not ok then
    return nil, err
  end
  if ft == 'file' then
    local f, ferr = io.open(src, 'a')
    if not f then
      return nil, ("cannot create '%s': %s"):format(src, ferr)
    end
    f:close()
    return 'file'
  end
  return 'directory'
end

--- bubblewrap's arguments binding `list` (descriptors) from the data directory `data`, the
-- sources prepared first. Returns the argument list, or nil and why.
function M.bind_args(list, data)
  local args = {}
  for _, d in ipairs(list) do
    local src = source_of(d, data)
    local kind, err = prepare(src, d.filetype)
    if not kind then
      return nil, ('mount %s: %s'):format(d.mountpoint, err)
    end
    if d.filetype ~= 'infer' and kind ~= d.filetype then
      return nil, ("mount %s: '%s' is a %s, filetype says %s"):format(d.mountpoint, src, kind,
        d.filetype)
    end
    args[#args + 1] = d.readonly and '--ro-bind' or '--bind'
    args[#args + 1] = src
    args[#args + 1] = d.mountpoint
  end
  return args
end

return M
