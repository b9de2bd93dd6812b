--- Test images, built offline from what the machine has: a root filesystem from Debian's
-- busybox-static (applet links, /etc/passwd and /etc/group with root, an unprivileged user and
-- a supplementary group), the same with python3 copied in (binary, the shared libraries ldd
-- names, the standard library), an OCI layout made from a directory with umoci, a docker save
-- archive made from a layout with skopeo, and an image installed straight into a data
-- directory (orch.runtime.datadir layout) for specs that need one fast.
--
--     local images = require 'spec.support.images'
--     local rootfs = images.busybox_rootfs(dir .. '/rootfs')
--     images.busybox(data_root, 'main', { config = { user = 'app', workdir = '/srv' },
--       files = { ['/etc/motd'] = 'hi\n' } })
-- @module spec.support.images
local M = {}

--- The unprivileged user of the test images: name, uid, gid, home.
M.USER = { name = 'app', uid = 1000, gid = 1000, home = '/home/app' }
--- A supplementary group `app` is a member of.
M.GROUP = { name = 'extra', gid = 2000 }

local function quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function sh(cmd)
  local ok, how, code = os.execute(cmd)
  assert(ok, ('%s: %s %s'):format(cmd, how, code))
end

local function capture(cmd)
  local p = assert(io.popen(cmd))
  local s = p:read('a')
  p:close()
  return s
end

local function write(path, text)
  local f = assert(io.open(path, 'w'))
  f:write(text)
  f:close()
end

local function is_root()
  return capture('id -u'):match('^0') ~= nil
end

local function exists(path)
  return os.execute('test -e ' .. quote(path) .. ' -o -L ' .. quote(path))
end

-- Whether the file at `p` is a static executable (no program interpreter).
local function is_static(p)
  local f = io.open(p, 'rb')
  if not f then
    return false
  end
  local head = f:read(4096) or ''
  f:close()
  return head:sub(1, 4) == '\127ELF' and not head:find('ld%-linux')
end

--- Where Debian's busybox-static puts the binary.
M.BUSYBOX = '/bin/busybox'

--- The busybox of busybox-static (a static binary, so a root filesystem needs nothing else).
function M.busybox_path()
  for _, p in ipairs({ M.BUSYBOX, '/usr/bin/busybox' }) do
    if is_static(p) then
      return p
    end
  end
  error('no static busybox: apt-get install busybox-static (make deps)')
end

--- Whether busybox-static is installed (specs that need an image are pending otherwise).
function M.available()
  return is_static(M.BUSYBOX) or is_static('/usr/bin/busybox')
end

local PASSWD = [[
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
]]

local GROUP = [[
root:x:0:
app:x:1000:
extra:x:2000:app
nogroup:x:65534:
]]

--- Make a busybox root filesystem at `dir` (created; its parent must exist): /bin/busybox and
-- a link per applet where `busybox --list-full` puts it and in /bin, /etc/passwd and /etc/group
-- (root, app 1000:1000 in the supplementary group extra 2000, nobody), /root, /home/app (owned
-- by app when
-- run as root), /tmp and /var/tmp (1777), empty /proc, /dev, /sys, /run, /srv and /data.
-- @treturn string dir
function M.busybox_rootfs(dir)
  local bb = M.busybox_path()
  sh(('mkdir %s'):format(quote(dir)))
  local dirs = { 'bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'root', 'home/app', 'tmp',
    'var/tmp', 'proc', 'dev', 'sys', 'run', 'srv', 'data' }
  for i, d in ipairs(dirs) do
    dirs[i] = quote(dir .. '/' .. d)
  end
  sh('mkdir -p ' .. table.concat(dirs, ' '))
  sh(('cp %s %s/bin/busybox'):format(quote(bb), quote(dir)))
  -- the applet links where busybox puts them, and all of them in /bin too (PATH=/bin is
  -- enough), by busybox itself (a link per `ln` took 5 s under load): chrooted, in a user
  -- namespace of its own when not root
  local chroot = (is_root() and 'chroot ' or 'unshare -r chroot ') .. quote(dir)
  if not os.execute(('%s /bin/busybox --install -s 2>/dev/null && '
    .. '%s /bin/busybox --install -s /bin 2>/dev/null'):format(chroot, chroot)) then
    local links = {}
    for path in capture(quote(bb) .. ' --list-full'):gmatch('[^\n]+') do
      if path ~= 'bin/busybox' then
        local name = path:match('[^/]+$')
        links[#links + 1] = ('ln -sf /bin/busybox %s'):format(quote(dir .. '/' .. path))
        if not path:match('^bin/') then
          links[#links + 1] = ('ln -sf /bin/busybox %s'):format(quote(dir .. '/bin/' .. name))
        end
      end
    end
    sh(table.concat(links, ' && '))
  end
  write(dir .. '/etc/passwd', PASSWD)
  write(dir .. '/etc/group', GROUP)
  sh(('chmod 1777 %s/tmp %s/var/tmp && chmod 700 %s/root'):format(quote(dir), quote(dir),
    quote(dir)))
  if is_root() then
    sh(('chown 1000:1000 %s/home/app'):format(quote(dir)))
  end
  return dir
end

local PY_SKIP = { 'test', 'idlelib', 'tkinter', 'turtledemo', 'lib2to3', 'ensurepip',
  'pydoc_data', 'config-3.*' }

-- The python3 of the machine (Debian's, not a shim): binary and standard library.
local function host_python()
  local bin = capture([[readlink -f /usr/bin/python3 2>/dev/null]]):match('[^\n]+')
  assert(bin and exists(bin), 'no /usr/bin/python3 (apt-get install python3)')
  local stdlib = capture(quote(bin) .. [[ -c 'import os; print(os.path.dirname(os.__file__))']])
    :match('[^\n]+')
  return bin, stdlib
end

-- The python3 part of `python_rootfs`, added to the busybox root filesystem `dir`.
local function add_python(dir)
  local bin, stdlib = host_python()
  local excludes = {}
  for i, e in ipairs(PY_SKIP) do
    excludes[i] = '--exclude=' .. quote('./' .. e)
  end
  sh(('mkdir -p %s && tar -C %s %s -cf - . | tar -C %s -xf -'):format(quote(dir .. stdlib),
    quote(stdlib), table.concat(excludes, ' '), quote(dir .. stdlib)))
  sh(('mkdir -p %s && cp %s %s && ln -sf %s %s/usr/bin/python3'):format(
    quote(dir .. bin:match('^(.*)/')), quote(bin), quote(dir .. bin), quote(bin), quote(dir)))
  -- the libraries of the interpreter and of lib-dynload, copied at the paths ldd resolves
  local libs = capture(('ldd %s %s/lib-dynload/*.so 2>/dev/null'):format(quote(bin),
    quote(stdlib)))
  local seen = {}
  for path in libs:gmatch('(/[^%s]+%.so[^%s]*) %(0x') do
    if not seen[path] then
      seen[path] = true
      sh(('mkdir -p %s && cp -L %s %s'):format(quote(dir .. path:match('^(.*)/')), quote(path),
        quote(dir .. path)))
    end
  end
end

--- Make a busybox root filesystem at `dir` with python3 copied in: the interpreter at its host
-- path (and /usr/bin/python3), every shared library ldd names for it and for the standard
-- library's extension modules, and the standard library (without tests, IDLE and tkinter).
-- The first one is built into a cache (/tmp/orch-test-pyroot-<uid>-<python>), 50 MB that
-- take seconds to gather; later ones are copies of it.
-- @treturn string dir
function M.python_rootfs(dir)
  local bin = host_python()
  local cache = ('/tmp/orch-test-pyroot-%s-%s-v1'):format(capture('id -u'):match('%d+'),
    bin:match('[^/]+$'))
  if not exists(cache .. '/usr/bin/python3') then
    local tmp = ('%s.tmp%d'):format(cache, math.random(1, 1e9))
    M.busybox_rootfs(tmp)
    add_python(tmp)
    if not os.execute(('mv -T %s %s 2>/dev/null'):format(quote(tmp), quote(cache))) then
      sh('rm -rf ' .. quote(tmp)) -- built at the same time by another spec: use theirs
    end
  end
  sh(('cp -a %s %s'):format(quote(cache), quote(dir)))
  return dir
end

--- Add the config of `cfg` ({user, workdir, env = {'K=V'}, entrypoint = {...}, cmd = {...}})
-- to `layout:tag` with `umoci config`.
function M.umoci_config(layout, tag, cfg)
  local args = {}
  local function add(flag, v)
    args[#args + 1] = flag .. '=' .. quote(v)
  end
  if cfg.user then
    add('--config.user', cfg.user)
  end
  if cfg.workdir then
    add('--config.workingdir', cfg.workdir)
  end
  for _, e in ipairs(cfg.env or {}) do
    add('--config.env', e)
  end
  for _, e in ipairs(cfg.entrypoint or {}) do
    add('--config.entrypoint', e)
  end
  for _, e in ipairs(cfg.cmd or {}) do
    add('--config.cmd', e)
  end
  if #args > 0 then
    sh(('umoci --log=error config --image %s %s'):format(quote(layout .. ':' .. tag),
      table.concat(args, ' ')))
  end
end

--- Make an OCI layout at `layout` (created when missing) whose image `tag` (default 'latest')
-- is the directory `rootfs` as one layer, with the config `cfg` (see `umoci_config`).
-- @treturn string layout
function M.oci_layout(rootfs, layout, tag, cfg)
  tag = tag or 'latest'
  local rootless = is_root() and '' or '--rootless '
  if not exists(layout) then
    sh(('umoci --log=error init --layout %s'):format(quote(layout)))
  end
  sh(('umoci --log=error new --image %s'):format(quote(layout .. ':' .. tag)))
  sh(('umoci --log=error insert %s--no-history --image %s %s /'):format(rootless,
    quote(layout .. ':' .. tag), quote(rootfs)))
  M.umoci_config(layout, tag, cfg or {})
  return layout
end

--- Write the image `tag` of the OCI layout `layout` as a `docker save` archive `file` with
-- skopeo, named `name` (default 'orch-test/image:latest').
-- @treturn string file
function M.docker_archive(layout, tag, file, name)
  sh(('skopeo --insecure-policy copy --quiet %s %s'):format(quote('oci:' .. layout .. ':' .. tag),
    quote('docker-archive:' .. file .. ':' .. (name or 'orch-test/image:latest'))))
  return file
end

--- Write the image `tag` of the OCI layout `layout` as an OCI archive `file` with skopeo.
-- @treturn string file
function M.oci_archive(layout, tag, file)
  sh(('skopeo --insecure-policy copy --quiet %s %s'):format(quote('oci:' .. layout .. ':' .. tag),
    quote('oci-archive:' .. file .. ':' .. tag)))
  return file
end

--- Install a test image straight into the data directory `root` as the image `id`, the way
-- `orch image import` leaves one (images/<id>/rootfs and config.json), without umoci: a
-- busybox root filesystem (`opts.python`: with python3) and the config `opts.config` (default
-- `{env = {'PATH=/usr/sbin:/usr/bin:/sbin:/bin'}}`), `opts.files` (path -> text, made inside
-- the rootfs, directories as needed); `opts.setup(rootfs)` may add more.
-- @treturn string the image's rootfs
function M.install(root, id, opts)
  opts = opts or {}
  local dir = root .. '/images/' .. id
  sh(('mkdir -p %s'):format(quote(dir)))
  local rootfs = dir .. '/rootfs'
  if opts.python then
    M.python_rootfs(rootfs)
  else
    M.busybox_rootfs(rootfs)
  end
  for path, text in pairs(opts.files or {}) do
    sh(('mkdir -p %s'):format(quote((rootfs .. path):match('^(.*)/[^/]*$'))))
    write(rootfs .. path, text)
  end
  if opts.setup then
    opts.setup(rootfs)
  end
  local datadir = require 'orch.runtime.datadir'
  assert(datadir.write_config(dir .. '/config.json', opts.config
    or { env = { 'PATH=/usr/sbin:/usr/bin:/sbin:/bin' } }))
  return rootfs
end

--- `install` under its first name: the image `id` of the data directory `data`.
M.busybox = M.install

return M
