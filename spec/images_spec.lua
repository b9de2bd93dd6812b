-- spec/support/images.lua (#integration): the test images the subcontainer specs run are what
-- they say, checked with chroot (as root) and umoci, all offline.
local images = require 'spec.support.images'
local R = require 'fixtures.cli.runner'

local session = R.session()

local function is_root()
  return R.capture('id -u'):match('^0%s') ~= nil
end

local function in_root(root, cmd)
  return R.capture(('chroot %s /bin/sh -c %s 2>&1; echo "rc=$?"'):format(R.quote(root),
    R.quote(cmd)))
end

describe('test images #integration', function()
  teardown(session.cleanup)

  it('busybox: applets in /bin and their usual places, the users and groups', function()
    local dir = session.tmpdir()
    local root = images.busybox_rootfs(dir .. '/rootfs')
    assert.equal('/bin/busybox', R.capture('readlink ' .. R.quote(root .. '/usr/bin/wget'))
      :match('%S+'))
    assert.equal('/bin/busybox', R.capture('readlink ' .. R.quote(root .. '/bin/wget'))
      :match('%S+'))
    assert.matches('^app:x:1000:1000:app:/home/app:/bin/sh$',
      R.read_file(root .. '/etc/passwd'):match('\n(app:[^\n]*)'))
    if not is_root() then
      pending('chroot needs root')
      return
    end
    assert.equal('uid=1000(app) gid=1000(app) groups=1000(app),2000(extra)\nrc=0\n',
      in_root(root, 'PATH=/bin id app'))
    assert.equal('1777\nrc=0\n', in_root(root, 'PATH=/bin stat -c %a /tmp'))
  end)

  it('busybox(data, id, opts): an image in a data directory, files and config', function()
    local data = session.tmpdir()
    local root = images.busybox(data, 'main', { config = { user = 'app', cmd = { 'sh' } },
      files = { ['/etc/app/conf'] = 'x=1\n' } })
    assert.equal(data .. '/images/main/rootfs', root)
    assert.equal('x=1\n', R.read_file(root .. '/etc/app/conf'))
    local datadir = require 'orch.runtime.datadir'
    assert.same({ user = 'app', cmd = { 'sh' } }, datadir.open(data):image_config('main'))
  end)

  it('python: python3 with its libraries and standard library runs inside', function()
    if not is_root() then
      pending('chroot needs root')
      return
    end
    local root = images.python_rootfs(session.tmpdir() .. '/rootfs')
    assert.equal('ok\nrc=0\n', in_root(root,
      [[/usr/bin/python3 -c 'import http.server, json, socket, subprocess; print("ok")']]))
    assert.is_nil(R.capture('ls ' .. R.quote(root) .. '/usr/lib/python3*/test 2>/dev/null')
      :match('%S'))
  end)

  it('oci_layout: one layer and the config, readable by umoci', function()
    local dir = session.tmpdir()
    local root = images.busybox_rootfs(dir .. '/rootfs')
    local lay = images.oci_layout(root, dir .. '/layout', 'v1', { user = 'app',
      workdir = '/srv', env = { 'A=1' }, entrypoint = { 'sh' }, cmd = { '-c', 'true' } })
    assert(os.execute(('umoci stat --image %s >/dev/null'):format(R.quote(lay .. ':v1'))))
    local index = require('cjson').decode(R.read_file(lay .. '/index.json'))
    assert.equal(1, #index.manifests)
    assert.equal('v1', index.manifests[1].annotations['org.opencontainers.image.ref.name'])
    local unpacked = dir .. '/unpacked'
    assert(os.execute(('umoci --log=error raw unpack %s--image %s %s'):format(
      is_root() and '' or '--rootless ', R.quote(lay .. ':v1'), R.quote(unpacked))))
    assert.equal(R.read_file(root .. '/etc/passwd'), R.read_file(unpacked .. '/etc/passwd'))
  end)
end)
