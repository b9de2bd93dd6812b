--- Where the control socket of an orch is, and whether its directory can be trusted.
--
-- The default directory is `/run/orch` as root, else `$XDG_RUNTIME_DIR/orch`, else
-- `/tmp/orch-<uid>`; the socket in it is `<name>.sock`. A default directory must be a real
-- directory of mode 0700 owned by the user (or root): `/tmp/orch-<uid>` can be made by anyone
-- first, and a socket in someone else's directory can be someone else's server.
-- @module orch.control.paths
local core = require 'orch.core'

local M = {}

local PRIVATE = tonumber('700', 8)

local function basename(path)
  path = path:gsub('/+$', '')
  return path:match('([^/]*)$')
end

--- The directory part of `path` (`.` when there is none).
function M.dirname(path)
  local d = path:match('^(.*)/[^/]*$')
  if d == nil then
    return '.'
  end
  return d == '' and '/' or d
end

-- `path` made absolute against `cwd`, with `.` and `..` components resolved textually.
local function absolute(path, cwd)
  if path:sub(1, 1) ~= '/' then
    path = (cwd or '/') .. '/' .. path
  end
  local parts = {}
  for part in path:gmatch('[^/]+') do
    if part == '..' then
      parts[#parts] = nil
    elseif part ~= '.' then
      parts[#parts + 1] = part
    end
  end
  return '/' .. table.concat(parts, '/')
end

--- Check a `--name`: letters, digits, `.`, `_` and `-`, not starting with a dot.
-- @treturn string|nil the name
-- @treturn string why not
function M.check_name(name)
  if type(name) ~= 'string' or name == '' then
    return nil, 'the name must not be empty'
  end
  if #name > 64 then
    return nil, ("the name '%s' is too long (64 characters at most)"):format(name)
  end
  if not name:match('^[%w_%-][%w._%-]*$') then
    return nil, ("invalid name '%s' (use letters, digits, '.', '_' and '-', not a leading '.')")
      :format(name)
  end
  return name
end

--- The default name of an orch: the name of the directory holding `script` (or of `cwd` when
-- there is no script), with characters outside `[A-Za-z0-9._-]` replaced by `_`.
function M.default_name(script, cwd)
  cwd = cwd or core.cwd() or '/'
  local dir = script and M.dirname(absolute(script, cwd)) or absolute('.', cwd)
  local name = basename(dir)
  if name == '' then
    return 'root'
  end
  name = name:gsub('[^%w._%-]', '_'):gsub('^%.', '_')
  return name:sub(1, 64)
end

--- The directory of the default sockets: `/run/orch` as root, else `$XDG_RUNTIME_DIR/orch`,
-- else `/tmp/orch-<uid>`.
function M.default_dir(uid, getenv)
  uid = uid or core.getuid()
  getenv = getenv or os.getenv
  if uid == 0 then
    return '/run/orch'
  end
  local xdg = getenv('XDG_RUNTIME_DIR')
  if xdg and xdg:sub(1, 1) == '/' then
    return (xdg:gsub('/+$', '')) .. '/orch'
  end
  return ('/tmp/orch-%d'):format(uid)
end

--- Where the control socket is: `opts.control` (a path), else `<default_dir>/<name>.sock` with
-- `opts.name`, else the default name of `opts.script` (or of the current directory).
-- @treturn table|nil `{path, dir, name, default}` (`default`: the directory is orch's own)
-- @treturn string the error
function M.resolve(opts)
  opts = opts or {}
  if opts.control then
    if opts.control == '' then
      return nil, '--control needs a path'
    end
    local path = absolute(opts.control, opts.cwd or core.cwd())
    return { path = path, dir = M.dirname(path), name = opts.name, default = false }
  end
  local name, err
  if opts.name then
    name, err = M.check_name(opts.name)
    if not name then
      return nil, err
    end
  else
    name = M.default_name(opts.script, opts.cwd)
  end
  local dir = M.default_dir(opts.uid, opts.getenv)
  return { path = dir .. '/' .. name .. '.sock', dir = dir, name = name, default = true }
end

--- The names of the sockets in a default directory, sorted (some may be stale: see
-- `orch.control.client.running`).
function M.list(dir)
  local names = {}
  for _, f in ipairs(core.readdir(dir) or {}) do
    local n = f:match('^(.+)%.sock$')
    if n then
      names[#names + 1] = n
    end
  end
  table.sort(names)
  return names
end

--- Whether the directory `dir` can hold the control socket of `uid`: a directory (not a
-- symlink) owned by `uid` or root, mode 0700 when `private`. True, or nil and why.
function M.trusted_dir(dir, uid, private)
  local st, msg = core.lstat(dir)
  if not st then
    return nil, ('cannot use the control directory: %s'):format(msg)
  end
  if st.type ~= 'directory' then
    return nil, ("'%s' is not a directory"):format(dir)
  end
  if st.uid ~= uid and st.uid ~= 0 then
    return nil, ("the control directory '%s' belongs to uid %d, not %d"):format(dir, st.uid,
      uid)
  end
  if private and st.mode ~= PRIVATE then
    return nil, ("the control directory '%s' has mode %04o, not 0700"):format(dir, st.mode)
  end
  return true
end

--- Make sure the socket's directory exists (server side): a default one is created 0700, made
-- private again when it is ours, and refused when it is not. True, or nil and why.
function M.prepare_dir(where, uid)
  local dir = where.dir
  local st, msg, code = core.lstat(dir)
  if not st and code == 'ENOENT' then
    local ok, merr, mcode = core.mkdir(dir, PRIVATE)
    if not ok and mcode ~= 'EEXIST' then
      return nil, ('cannot create the control directory: %s'):format(merr)
    end
    st, msg = core.lstat(dir)
  end
  if not st then
    return nil, ('cannot use the control directory: %s'):format(msg)
  end
  if st.type ~= 'directory' then
    return nil, ("'%s' is not a directory"):format(dir)
  end
  if where.default then
    if st.uid ~= uid then
      return nil, ("the control directory '%s' belongs to uid %d, not %d"):format(dir, st.uid,
        uid)
    end
    if st.mode ~= PRIVATE then
      local ok, cerr = core.chmod(dir, PRIVATE)
      if not ok then
        return nil, ('cannot make the control directory private: %s'):format(cerr)
      end
    end
  end
  return true
end

return M
