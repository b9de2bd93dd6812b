--- `orch image import|ls|rm`: the images of a data directory (orch.runtime.datadir).
--
-- An import unpacks an OCI layout directory, an OCI archive or a `docker save` archive with
-- Debian's tools (skopeo turns archives, and layouts umoci cannot address, into an OCI layout;
-- `umoci raw unpack` applies the layers, whiteouts included), or copies a plain directory, into
-- `images/.import-<id>-<random>/`, writes config.json from the OCI image config, and renames the
-- result to `images/<id>` only once everything worked: an image is there whole or not at all.
-- Nothing is fetched from a network.
-- Over the guide's 400 lines on purpose: import, ls and rm share the staging-directory and
-- config.json rules that make an import atomic; the unpacking itself is umoci's and skopeo's.
-- @module orch.cli.image
local core = require 'orch.core'
local datadir = require 'orch.runtime.datadir'
local json = require 'orch.runtime.json'
local control_paths = require 'orch.control.paths'
local USAGE = require 'orch.cli.usage'
local cli_args = require 'orch.cli.args'
local data_dir = require 'orch.cli.data_dir'

local out, err, usage_error = cli_args.out, cli_args.err, cli_args.usage_error

local M = {}

local OPTIONS = { data = 'value', name = 'value', ref = 'value', json = 'flag', help = 'flag' }

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Run a shell command line; true, or nil and 'exit N'.
local function sh(cmd)
  local ok, how, code = os.execute(cmd)
  if ok then
    return true
  end
  return nil, ('%s %s'):format(how == 'signal' and 'killed by signal' or 'exit', tostring(code))
end

local function have(tool)
  return sh('command -v ' .. quote(tool) .. ' >/dev/null 2>&1')
end

local function read_file(path)
  local f, ferr = io.open(path, 'rb')
  if not f then
    return nil, ferr
  end
  local s, rerr = f:read('a')
  f:close()
  return s, rerr
end

local function read_json(path)
  local text, rerr = read_file(path)
  if not text then
    return nil, rerr
  end
  local v, derr = json.decode(text)
  if v == nil then
    return nil, ('%s: %s'):format(path, derr)
  end
  return v
end

-- An error of the import (exit 1), as a value the caller prints.
local ImportError = {}
local function fail(fmt, ...)
  error(setmetatable({ message = fmt:format(...) }, ImportError), 0)
end

-- Options anywhere among `args[i..]`; returns opts and the positional arguments.
local function parse(args, i)
  local opts, pos = {}, {}
  while i <= #args do
    local a = args[i]
    if a == '--' then
      table.move(args, i + 1, #args, #pos + 1, pos)
      break
    elseif a == '-h' then
      opts.help = true
    elseif a:sub(1, 2) == '--' then
      local name, value = a:match('^%-%-([^=]+)=(.*)$')
      name = name or a:sub(3)
      opts[name], i = cli_args.option_value('image', OPTIONS[name], '--' .. name, value, args, i)
    elseif a:match('^%-.') then
      usage_error('image', "unknown option '%s' for 'image'", a)
    else
      pos[#pos + 1] = a
    end
    i = i + 1
  end
  return opts, pos
end

-- The blob `digest` (`sha256:<hex>`) of the layout at `dir`, decoded.
local function read_blob(dir, digest)
  local algo, hex = tostring(digest):match('^(%w+):(%x+)$')
  if not algo then
    fail("'%s': invalid digest '%s'", dir, tostring(digest))
  end
  local v, rerr = read_json(('%s/blobs/%s/%s'):format(dir, algo, hex))
  if v == nil then
    fail("'%s': cannot read the blob %s: %s", dir, digest, rerr)
  end
  return v
end

local MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
local REF_NAME = 'org.opencontainers.image.ref.name'

-- The manifests of the OCI layout `dir` (its index.json).
local function manifests(dir)
  local index, ierr = read_json(dir .. '/index.json')
  if type(index) ~= 'table' or type(index.manifests) ~= 'table' then
    fail("'%s' is not an OCI layout: index.json: %s", dir, ierr or 'no manifests list')
  end
  return index.manifests
end

local function ref_of(m)
  return type(m.annotations) == 'table' and m.annotations[REF_NAME] or nil
end

-- How to reach the image of the OCI layout `dir` chosen by `ref`: the tag umoci can unpack
-- directly, or nil when skopeo must copy it first (no ref name, or an index of manifests).
local function pick_in_layout(dir, ref)
  local list, refs = manifests(dir), {}
  for _, m in ipairs(list) do
    refs[#refs + 1] = ref_of(m) or m.digest
    if ref and ref_of(m) == ref then
      return m.mediaType == MANIFEST and ref or nil
    end
  end
  if ref then
    fail("'%s' has no image '%s' (it has: %s)", dir, ref, table.concat(refs, ', '))
  elseif #list == 0 then
    fail("'%s' holds no image", dir)
  elseif #list > 1 then
    fail("'%s' holds %d images (%s): choose one with --ref", dir, #list, table.concat(refs, ', '))
  end
  local only = list[1]
  return (ref_of(only) and only.mediaType == MANIFEST) and ref_of(only) or nil
end

-- The image config of `tag` in the layout `dir` (its `config` object; {} when absent).
local function oci_config(dir, tag)
  for _, m in ipairs(manifests(dir)) do
    if ref_of(m) == tag then
      local manifest = read_blob(dir, m.digest)
      local cfg = read_blob(dir, type(manifest.config) == 'table' and manifest.config.digest)
      return type(cfg.config) == 'table' and cfg.config or {}
    end
  end
  fail("'%s' has no image '%s'", dir, tag)
end

-- The keys of config.json from an OCI image config (empty strings and nulls left out).
local function to_orch_config(c)
  local null = json.null()
  local function str(v)
    return type(v) == 'string' and v ~= '' and v or nil
  end
  local function list(v)
    return (v ~= null and type(v) == 'table') and v or nil
  end
  return { user = str(c.User), workdir = str(c.WorkingDir), env = list(c.Env),
    entrypoint = list(c.Entrypoint), cmd = list(c.Cmd) }
end

-- What `path` is: 'oci' (layout directory), 'dir', 'docker-archive' or 'oci-archive'.
local function kind_of(path)
  local st, serr = core.lstat(path)
  if st and st.type == 'link' then
    local f = io.open(path .. '/.', 'r')
    st = { type = f and 'directory' or 'file' }
    if f then
      f:close()
    end
  end
  if not st then
    fail("cannot read '%s': %s", path, (serr:gsub("^lstat '.-': ", '')))
  elseif st.type == 'directory' then
    return core.lstat(path .. '/oci-layout') and 'oci' or 'dir'
  elseif st.type ~= 'file' then
    fail("'%s' is neither a directory nor an archive", path)
  end
  local p = assert(io.popen('tar -tf ' .. quote(path) .. ' 2>/dev/null'))
  local names = {}
  for line in p:lines() do
    names[line:gsub('^%./', '')] = true
  end
  p:close()
  if names['manifest.json'] then
    return 'docker-archive'
  elseif names['oci-layout'] and names['index.json'] then
    return 'oci-archive'
  end
  fail("'%s' is not an OCI layout, an OCI archive, a docker save archive or a directory", path)
end

local DESCRIPTION = { oci = 'OCI layout', dir = 'directory', ['docker-archive'] =
  'docker save archive', ['oci-archive'] = 'OCI archive' }

local function need(tool, what)
  if not have(tool) then
    fail('importing %s needs %s (Debian package %s: apt-get install %s)', what, tool, tool, tool)
  end
end

-- Unpack `path` (of `kind`) into the new directory `tmp`: tmp/rootfs and tmp/config.json.
local function unpack_into(tmp, path, kind, ref)
  local what = (kind == 'dir' and 'a ' or kind == 'docker-archive' and 'a ' or 'an ')
    .. DESCRIPTION[kind]
  if kind == 'dir' then
    local ok, why = sh(('cp -a %s %s'):format(quote(path .. '/.'), quote(tmp .. '/rootfs')))
    if not ok then
      fail("cannot copy '%s' (cp: %s)", path, why)
    end
    return {}
  end
  local layout, tag = path, nil
  if kind == 'oci' then
    tag = pick_in_layout(path, ref)
  end
  if not tag then
    need('skopeo', what)
    layout, tag = tmp .. '/oci', 'orch'
    local transport = kind == 'oci' and 'oci' or kind
    local src = transport .. ':' .. path .. (ref and (':' .. ref) or '')
    local ok, why = sh(('skopeo --insecure-policy copy --quiet %s %s'):format(quote(src),
      quote('oci:' .. layout .. ':' .. tag)))
    if not ok then
      fail("skopeo could not read '%s' as %s (%s)", path, what, why)
    end
  end
  need('umoci', what)
  local ok, why = sh(('umoci --log=error raw unpack %s--image %s %s'):format(
    core.getuid() == 0 and '' or '--rootless ', quote(layout .. ':' .. tag),
    quote(tmp .. '/rootfs')))
  if not ok then
    fail("umoci could not unpack '%s' (%s)", path, why)
  end
  local cfg = to_orch_config(oci_config(layout, tag))
  if layout ~= path then
    sh('rm -rf ' .. quote(layout))
  end
  return cfg
end

local function random_hex()
  local b = core.random(6) or tostring(os.time())
  return (b:gsub('.', function(c)
    return ('%02x'):format(c:byte())
  end))
end

--- Import `path` as the image `id` of the data directory `dd`: atomic, never over an existing
-- image. Returns the kind of source ('oci', 'dir', 'docker-archive', 'oci-archive'); raises an
-- ImportError otherwise, leaving nothing behind.
function M.import(dd, path, id, ref)
  if dd:has_image(id) or core.lstat(dd:image(id)) then
    fail("image '%s' exists already in %s (orch image rm %s first)", id, dd:images(), id)
  end
  local kind = kind_of(path)
  local ok, merr = datadir.mkdir_p(dd:images())
  if not ok then
    fail('%s', merr)
  end
  local tmp = ('%s/.import-%s-%s'):format(dd:images(), id, random_hex())
  local mk, mkerr = core.mkdir(tmp, tonumber('755', 8))
  if not mk then
    fail('cannot create %s: %s', tmp, mkerr)
  end
  local done, res = pcall(function()
    local cfg = unpack_into(tmp, path, kind, ref)
    local wok, werr = datadir.write_config(tmp .. '/config.json', cfg)
    if not wok then
      fail('cannot write %s/config.json: %s', tmp, werr)
    end
    local rok, rerr = os.rename(tmp, dd:image(id))
    if not rok then
      fail("cannot move the image into place as '%s': %s", dd:image(id), rerr)
    end
  end)
  if not done then
    sh('rm -rf ' .. quote(tmp))
    error(res, 0)
  end
  return kind
end

-- Whether a mount (of any process's mount namespace) names the image directory `dir`: an
-- overlay with it as lower layer (a running subcontainer), or a mount point below it. The pid
-- of a process that sees such a mount, or nil.
local function in_use(dir)
  -- mountinfo writes a space, tab, newline and backslash of a path as an octal escape
  local shown = dir:gsub('[ \t\n\\]', function(c)
    return ('\\%03o'):format(c:byte())
  end)
  local pat = shown:gsub('%p', '%%%0') .. '[/:,%s]'
  for _, pid in ipairs(core.readdir('/proc') or {}) do
    if pid:match('^%d+$') then
      local text = read_file('/proc/' .. pid .. '/mountinfo')
      if text and (text .. '\n'):find(pat) then
        return pid
      end
    end
  end
end

--- Remove the image `id` of `dd`: renamed out of the way first (so no new subcontainer finds
-- half of it), then deleted. Refused while a mount uses it.
function M.remove(dd, id)
  local dir = dd:image(id)
  if not core.lstat(dir) then
    fail("no image '%s' in %s", id, dd:images())
  end
  local pid = in_use(dir)
  if pid then
    fail("image '%s' is in use by a running subcontainer (a mount of process %s uses %s)", id,
      pid, dir)
  end
  local gone = ('%s/.rm-%s-%s'):format(dd:images(), id, random_hex())
  local ok, rerr = os.rename(dir, gone)
  if not ok then
    fail("cannot remove image '%s': %s", id, rerr)
  end
  local rok, why = sh('rm -rf ' .. quote(gone))
  if not rok then
    fail("image '%s' is gone, but removing %s failed (rm: %s)", id, gone, why)
  end
end

local function command_of(cfg)
  local parts = {}
  for _, k in ipairs({ 'entrypoint', 'cmd' }) do
    for _, a in ipairs(cfg[k] or {}) do
      parts[#parts + 1] = a:find('[%s\'"]') and quote(a) or a
    end
  end
  return #parts > 0 and table.concat(parts, ' ') or '-'
end

--- The `orch image ls` table (or `--json` array) of the images of `dd`.
function M.list(dd, as_json)
  local rows, objs = { { 'ID', 'USER', 'WORKDIR', 'COMMAND' } }, {}
  for _, id in ipairs(dd:image_ids()) do
    local cfg, cerr = dd:image_config(id)
    local obj = { id = id, rootfs = dd:image_rootfs(id) }
    if cfg then
      for k, v in pairs(cfg) do
        obj[k] = type(v) == 'table' and json.array(v) or v
      end
      rows[#rows + 1] = { id, cfg.user or '-', cfg.workdir or '-', command_of(cfg) }
    else
      obj.error = cerr
      rows[#rows + 1] = { id, '?', '?', '(' .. cerr:gsub("^image '[^']*': ", '') .. ')' }
    end
    objs[#objs + 1] = obj
  end
  if as_json then
    return json.encode(json.array(objs)) .. '\n'
  elseif #rows == 1 then
    return ('no images in %s\n'):format(dd:images())
  end
  local widths = {}
  for _, row in ipairs(rows) do
    for i, c in ipairs(row) do
      widths[i] = math.max(widths[i] or 0, #c)
    end
  end
  local lines = {}
  for _, row in ipairs(rows) do
    for i = 1, #row - 1 do
      row[i] = row[i] .. (' '):rep(widths[i] - #row[i])
    end
    lines[#lines + 1] = table.concat(row, '  ')
  end
  return table.concat(lines, '\n') .. '\n'
end

local ARITY = { import = { 2, 'orch image import PATH ID' }, ls = { 0, 'orch image ls' },
  rm = { 1, 'orch image rm ID...' } }

--- `orch image ...`: `args[start..]` are what follows `image`; returns the exit status.
function M.main(args, start)
  local opts, pos = parse(args, start)
  if opts.help then
    out(USAGE.image)
    return 0
  end
  local sub = table.remove(pos, 1)
  if not sub then
    usage_error('image', 'missing the subcommand: import, ls or rm')
  elseif not ARITY[sub] then
    usage_error('image', "unknown subcommand '%s' (import, ls or rm)", sub)
  end
  local n, synopsis = ARITY[sub][1], ARITY[sub][2]
  if (sub == 'rm' and #pos < 1) or (sub ~= 'rm' and #pos ~= n) then
    usage_error('image', 'usage: %s', synopsis)
  elseif opts.ref and sub ~= 'import' then
    usage_error('image', '--ref goes with import only')
  elseif opts.json and sub ~= 'ls' then
    usage_error('image', '--json goes with ls only')
  end
  if opts.name then
    local _, nerr = control_paths.check_name(opts.name)
    if nerr then
      usage_error('image', '%s', nerr)
    end
  end
  local root, derr = data_dir.resolve('image', opts.data,
    opts.name or control_paths.default_name(nil))
  if not root then
    err(('orch: %s\n'):format(derr))
    return 1
  end
  local dd = datadir.open(root)
  local ids = sub == 'import' and { pos[2] } or sub == 'rm' and pos or {}
  for _, id in ipairs(ids) do
    local _, ierr = datadir.check_id(id)
    if ierr then
      usage_error('image', '%s', ierr)
    end
  end
  local ok, res = pcall(function()
    if sub == 'import' then
      local kind = M.import(dd, pos[1], pos[2], opts.ref)
      out(("imported image '%s' from the %s %s into %s\n"):format(pos[2], DESCRIPTION[kind],
        pos[1], dd:image(pos[2])))
    elseif sub == 'rm' then
      for _, id in ipairs(pos) do
        M.remove(dd, id)
        out(("removed image '%s'\n"):format(id))
      end
    else
      out(M.list(dd, opts.json))
    end
  end)
  if not ok then
    if getmetatable(res) ~= ImportError then
      error(res, 0)
    end
    err(('orch: image %s: %s\n'):format(sub, res.message))
    return 1
  end
  return 0
end

return M
