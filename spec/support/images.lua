--- Test images without network: a root filesystem made of Debian's busybox-static (one static
-- binary and its applet links), an /etc/passwd and /etc/group, and the image's config.json, in
-- a data directory laid out as orch.runtime.datadir says (images/<id>/rootfs, config.json).
-- @module spec.support.images
local M = {}

--- Where Debian's busybox-static puts the binary.
M.BUSYBOX = '/bin/busybox'

local APPLETS = { 'sh', 'cat', 'echo', 'ls', 'id', 'sleep', 'grep', 'ps', 'mount', 'touch',
  'mkdir', 'rm', 'pwd', 'env', 'true', 'false', 'test', 'kill', 'hostname', 'wc', 'stat',
  'head', 'tail', 'sed', 'chown', 'chmod', 'readlink', 'find', 'printf', 'tr', 'nc', 'wget',
  'httpd', 'date', 'setsid' }

local function sh(cmd)
  local ok = os.execute(cmd)
  assert(ok, 'failed: ' .. cmd)
end

local function write(path, text)
  local f = assert(io.open(path, 'w'))
  f:write(text)
  f:close()
end

--- Whether busybox-static is installed (the specs that need it are pending otherwise).
function M.available()
  local f = io.open(M.BUSYBOX, 'rb')
  if not f then
    return false
  end
  local head = f:read(4096) or ''
  f:close()
  return not head:find('ld%-linux') -- static: no program interpreter
end

--- Make image `id` in the data directory `data`: `opts.config` (a table written as JSON:
-- `{user, workdir, env = {'K=V'}, entrypoint, cmd}`), `opts.files` (path -> text, made inside
-- the rootfs). Returns the rootfs path.
function M.busybox(data, id, opts)
  opts = opts or {}
  local root = data .. '/images/' .. id .. '/rootfs'
  sh(('mkdir -p %q/bin %q/etc %q/tmp %q/root %q/home/app %q/proc %q/dev %q/sys %q/run'):format(
    root, root, root, root, root, root, root, root, root))
  sh(('cp %q %q/bin/busybox && chmod 1777 %q/tmp'):format(M.BUSYBOX, root, root))
  for _, a in ipairs(APPLETS) do
    sh(('ln -sf busybox %q/bin/%s'):format(root, a))
  end
  write(root .. '/etc/passwd', 'root:x:0:0:root:/root:/bin/sh\n'
    .. 'app:x:1000:1000:app:/home/app:/bin/sh\n')
  write(root .. '/etc/group', 'root:x:0:\napp:x:1000:\nextra:x:2000:app\n')
  sh(('chown 1000:1000 %q/home/app'):format(root))
  for path, text in pairs(opts.files or {}) do
    local dir = (root .. path):match('^(.*)/[^/]*$')
    sh(('mkdir -p %q'):format(dir))
    write(root .. path, text)
  end
  local json = require 'orch.runtime.json'
  local cfg = opts.config or {}
  local obj = {}
  for k, v in pairs(cfg) do
    obj[k] = type(v) == 'table' and json.array({ table.unpack(v) }) or v
  end
  write(data .. '/images/' .. id .. '/config.json', json.encode(obj) .. '\n')
  return root
end

return M
