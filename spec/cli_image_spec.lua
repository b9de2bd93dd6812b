-- orch image import|ls|rm (#integration): images built offline (spec.support.images: busybox,
-- umoci, skopeo) imported from an OCI layout, a docker save archive, an OCI archive and a plain
-- directory, whiteouts applied by umoci, the OCI config in config.json; imports are atomic and
-- bad input fails with a clear message and leaves nothing; and --data on run and check.
local R = require 'fixtures.cli.runner'
local images = require 'spec.support.images'
local cjson = require 'cjson'

local session = R.session()

local function sh(cmd)
  assert(os.execute(cmd), cmd)
end

local function exists(path)
  return os.execute('test -e ' .. R.quote(path) .. ' -o -L ' .. R.quote(path)) == true
end

local function is_root()
  return R.capture('id -u'):match('^0%s') ~= nil
end

local function image(args, data)
  local a = { 'image' }
  table.move(args, 1, #args, 2, a)
  a[#a + 1] = '--data'
  a[#a + 1] = data
  return R.run(a)
end

-- Only the image directories a data directory holds (also .import-* leftovers).
local function entries(data)
  local out = {}
  local ls = R.capture('ls -A ' .. R.quote(data .. '/images') .. ' 2>/dev/null')
  for name in ls:gmatch('[^\n]+') do
    out[#out + 1] = name
  end
  return out
end

local CONFIG = { user = 'app', workdir = '/srv',
  env = { 'PATH=/usr/bin:/bin', 'GREETING=hi there' }, entrypoint = { '/bin/sh', '-c' },
  cmd = { 'echo "$GREETING"' } }

describe('orch image #integration', function()
  local dir, rootfs, layout

  setup(function()
    dir = session.tmpdir()
    rootfs = images.busybox_rootfs(dir .. '/rootfs')
    sh(('echo doomed > %s/etc/doomed && mkdir %s/opt && echo old > %s/opt/old'):format(rootfs,
      rootfs, rootfs))
    layout = images.oci_layout(rootfs, dir .. '/layout', 'main', CONFIG)
  end)

  teardown(session.cleanup)

  it('imports an OCI layout: the root filesystem, and the config from the OCI config', function()
    local data = session.tmpdir() .. '/data'
    local r = image({ 'import', layout, 'main' }, data)
    assert.equal(0, r.code, r.err)
    assert.matches("imported image 'main' from the OCI layout", r.out)
    local root = data .. '/images/main/rootfs'
    assert.truthy(exists(root .. '/bin/busybox'))
    assert.equal('/bin/busybox', R.capture('readlink ' .. R.quote(root .. '/bin/sh')):match('%S+'))
    assert.matches('app:x:1000:1000:', R.read_file(root .. '/etc/passwd'))
    assert.same(CONFIG, cjson.decode(R.read_file(data .. '/images/main/config.json')))
    -- what the subcontainer runtime reads
    local datadir = require 'orch.runtime.datadir'
    assert.same(CONFIG, datadir.open(data):image_config('main'))
    if is_root() then -- ownership survives (a rootless import maps it to the user)
      assert.equal('1000', R.capture('stat -c %u ' .. R.quote(root .. '/home/app')):match('%d+'))
    end
    assert.same({ 'main' }, entries(data))
  end)

  it('imports a docker save archive (through skopeo) and an OCI archive', function()
    local data = session.tmpdir() .. '/data'
    local tar = images.docker_archive(layout, 'main', dir .. '/docker.tar')
    local oci = images.oci_archive(layout, 'main', dir .. '/oci.tar')
    local r = image({ 'import', tar, 'web' }, data)
    assert.equal(0, r.code, r.err)
    assert.matches('from the docker save archive', r.out)
    r = image({ 'import', oci, 'web2' }, data)
    assert.equal(0, r.code, r.err)
    assert.matches('from the OCI archive', r.out)
    for _, id in ipairs({ 'web', 'web2' }) do
      assert.truthy(exists(data .. '/images/' .. id .. '/rootfs/bin/busybox'), id)
      assert.same(CONFIG, cjson.decode(R.read_file(data .. '/images/' .. id .. '/config.json')))
    end
    -- no skopeo work left inside the image
    assert.is_false(exists(data .. '/images/web/oci'))
    assert.same({ 'web', 'web2' }, entries(data))
  end)

  it('imports a plain directory as the root filesystem, with an empty config', function()
    local data = session.tmpdir() .. '/data'
    local r = image({ 'import', rootfs, 'plain' }, data)
    assert.equal(0, r.code, r.err)
    assert.matches('from the directory', r.out)
    assert.equal('doomed\n', R.read_file(data .. '/images/plain/rootfs/etc/doomed'))
    assert.truthy(exists(rootfs .. '/etc/doomed')) -- copied, not moved
    assert.same({}, cjson.decode(R.read_file(data .. '/images/plain/config.json')))
  end)

  it('applies the layers in order with their whiteouts (umoci)', function()
    local lay = session.tmpdir() .. '/layout'
    images.oci_layout(rootfs, lay, 'v2', CONFIG)
    local extra = session.tmpdir()
    sh(('mkdir %s/opt && echo new > %s/opt/new && echo v2 > %s/version'):format(extra, extra,
      extra))
    local tag = R.quote(lay .. ':v2')
    sh(('umoci --log=error insert --image %s --whiteout /etc/doomed'):format(tag))
    sh(('umoci --log=error insert --image %s --opaque %s/opt /opt'):format(tag, extra))
    sh(('umoci --log=error insert --image %s %s/version /etc/version'):format(tag, extra))
    local data = session.tmpdir() .. '/data'
    local r = image({ 'import', lay, 'layered' }, data)
    assert.equal(0, r.code, r.err)
    local root = data .. '/images/layered/rootfs'
    assert.is_false(exists(root .. '/etc/doomed'))      -- whiteout
    assert.is_false(exists(root .. '/opt/old'))         -- opaque directory
    assert.equal('new\n', R.read_file(root .. '/opt/new'))
    assert.equal('v2\n', R.read_file(root .. '/etc/version'))
    assert.truthy(exists(root .. '/etc/passwd'))        -- the rest of the first layer
    assert.is_nil(R.capture('find ' .. R.quote(root) .. ' -name ".wh.*"'):match('%S'))
  end)

  it('picks the image of a layout holding several with --ref, and says which exist', function()
    local lay = session.tmpdir() .. '/layout'
    images.oci_layout(rootfs, lay, 'one', { cmd = { 'one' } })
    images.oci_layout(rootfs, lay, 'two', { cmd = { 'two' } })
    local data = session.tmpdir() .. '/data'
    local r = image({ 'import', lay, 'x' }, data)
    assert.equal(1, r.code)
    assert.matches('holds 2 images %(one, two%): choose one with %-%-ref', r.err)
    r = image({ 'import', lay, 'x', '--ref', 'three' }, data)
    assert.equal(1, r.code)
    assert.matches("has no image 'three' %(it has: one, two%)", r.err)
    r = image({ 'import', '--ref=two', lay, 'x' }, data)
    assert.equal(0, r.code, r.err)
    assert.same({ cmd = { 'two' } }, cjson.decode(R.read_file(data .. '/images/x/config.json')))
  end)

  it('imports a layout whose image has no ref name (skopeo picks the only one)', function()
    local lay = session.tmpdir() .. '/noref'
    sh(('skopeo --insecure-policy copy --quiet %s %s'):format(R.quote('oci:' .. layout .. ':main'),
      R.quote('oci:' .. lay)))
    assert.is_nil(R.read_file(lay .. '/index.json'):find('ref.name', 1, true))
    local data = session.tmpdir() .. '/data'
    local r = image({ 'import', lay, 'noref' }, data)
    assert.equal(0, r.code, r.err)
    assert.same(CONFIG, cjson.decode(R.read_file(data .. '/images/noref/config.json')))
  end)

  it('lists the images, as a table and as JSON', function()
    local data = session.tmpdir() .. '/data'
    local r = image({ 'ls' }, data)
    assert.equal(0, r.code, r.err)
    assert.equal(('no images in %s/images\n'):format(data), r.out)
    assert.equal('[]\n', image({ 'ls', '--json' }, data).out)
    assert.equal(0, image({ 'import', layout, 'main' }, data).code)
    assert.equal(0, image({ 'import', rootfs, 'plain' }, data).code)
    r = image({ 'ls' }, data)
    assert.equal(0, r.code, r.err)
    assert.equal(table.concat({
      'ID     USER  WORKDIR  COMMAND',
      'main   app   /srv     /bin/sh -c \'echo "$GREETING"\'',
      'plain  -     -        -',
    }, '\n') .. '\n', r.out)
    local list = cjson.decode(image({ 'ls', '--json' }, data).out)
    assert.equal(2, #list)
    assert.equal('main', list[1].id)
    assert.equal(data .. '/images/main/rootfs', list[1].rootfs)
    assert.same(CONFIG.env, list[1].env)
    -- a broken config is shown, not fatal
    R.write_file(data .. '/images/plain/config.json', '{"user":')
    r = image({ 'ls' }, data)
    assert.equal(0, r.code)
    assert.matches('plain  %?     %?        %(.*config.json is not valid JSON', r.out)
  end)

  it('removes images, and refuses unknown ones', function()
    local data = session.tmpdir() .. '/data'
    assert.equal(0, image({ 'import', rootfs, 'a' }, data).code)
    assert.equal(0, image({ 'import', rootfs, 'b' }, data).code)
    local r = image({ 'rm', 'a', 'b' }, data)
    assert.equal(0, r.code, r.err)
    assert.equal("removed image 'a'\nremoved image 'b'\n", r.out)
    assert.same({}, entries(data))
    r = image({ 'rm', 'a' }, data)
    assert.equal(1, r.code)
    assert.matches("orch: image rm: no image 'a' in " .. data:gsub('%p', '%%%0'), r.err)
  end)

  it('refuses to remove an image a mount uses (an overlay lower layer)', function()
    if not is_root() then
      pending('mounting an overlay needs root')
      return
    end
    local data = session.tmpdir() .. '/my data' -- a space: mountinfo shows it as \040
    assert.equal(0, image({ 'import', rootfs, 'busy' }, data).code)
    local m = session.tmpdir()
    sh(('mkdir %s/up %s/work %s/mnt && mount -t overlay overlay -o %s %s/mnt'):format(m, m, m,
      R.quote(('lowerdir=%s/images/busy/rootfs,upperdir=%s/up,workdir=%s/work'):format(data, m,
      m)), m))
    local ok, r = pcall(image, { 'rm', 'busy' }, data)
    os.execute(('umount %s/mnt'):format(m))
    assert(ok, r)
    assert.equal(1, r.code)
    assert.matches("image 'busy' is in use by a running subcontainer", r.err)
    assert.truthy(exists(data .. '/images/busy/rootfs/bin/busybox'))
    -- once unmounted it goes; a mount namespace made meanwhile (a contained orch of a spec run
    -- beside this one) holds a copy of the overlay until that process ends, so: until it does
    R.wait_until(function()
      return image({ 'rm', 'busy' }, data).code == 0
    end, 15000, 'the image removed once no mount uses it')
  end)

  it('fails on bad input with a clear message, leaving nothing behind', function()
    local data = session.tmpdir() .. '/data'
    local junk = session.tmpdir()
    R.write_file(junk .. '/notes.txt', 'hello\n')
    sh(('tar -C %s -cf %s/notes.tar notes.txt'):format(junk, junk))
    -- a layout whose layer blob is cut short: umoci's digest check fails
    local broken = session.tmpdir() .. '/broken'
    sh(('cp -a %s %s'):format(layout, broken))
    local manifest = cjson.decode(R.read_file(broken .. '/index.json')).manifests[1].digest
    local layer = cjson.decode(R.read_file(broken .. '/blobs/sha256/'
      .. manifest:match(':(%x+)'))).layers[1].digest:match(':(%x+)')
    sh(('truncate -s 100 %s/blobs/sha256/%s'):format(broken, layer))
    local cases = {
      { { 'import', junk .. '/none', 'x' }, 1, "cannot read '.-/none': no such file" },
      { { 'import', junk .. '/notes.txt', 'x' }, 1,
        'is not an OCI layout, an OCI archive, a docker save archive or a directory' },
      { { 'import', junk .. '/notes.tar', 'x' }, 1, 'is not an OCI layout' },
      { { 'import', broken, 'x' }, 1, "umoci could not unpack '.-/broken'" },
      { { 'import', layout, '../x' }, 2, "invalid image id '%.%./x'" },
      { { 'import', layout, '.hidden' }, 2, "invalid image id '%.hidden'" },
      { { 'import', layout }, 2, 'usage: orch image import PATH ID' },
      { { 'frob' }, 2, "unknown subcommand 'frob'" },
      { { 'ls', '--ref', 'x' }, 2, '%-%-ref goes with import only' },
      { { 'rm', 'a/b' }, 2, "invalid image id 'a/b'" },
    }
    for _, c in ipairs(cases) do
      local r = image(c[1], data)
      local what = table.concat(c[1], ' ')
      assert.equal(c[2], r.code, what .. ': ' .. r.err)
      assert.matches(c[3], r.err, 1, what)
      assert.same({}, entries(data), what)
    end
    -- an existing image is never replaced
    assert.equal(0, image({ 'import', rootfs, 'x' }, data).code)
    local r = image({ 'import', layout, 'x' }, data)
    assert.equal(1, r.code)
    assert.matches("image 'x' exists already in .-%(orch image rm x first%)", r.err)
    assert.same({}, cjson.decode(R.read_file(data .. '/images/x/config.json')))
    assert.same({ 'x' }, entries(data))
  end)

  it('imports as an unprivileged user (umoci --rootless)', function()
    if not is_root() then
      pending('needs root to switch to an unprivileged user')
      return
    end
    local home = session.tmpdir()
    sh(('chmod 755 %s && chown 65534:65534 %s && chmod -R a+rX %s'):format(home, home, dir))
    local data = home .. '/data'
    local r = R.run({ 'image', 'import', layout, 'main', '--data', data },
      { prefix = 'setpriv --reuid=65534 --regid=65534 --clear-groups', env = { HOME = home } })
    assert.equal(0, r.code, r.err)
    assert.truthy(exists(data .. '/images/main/rootfs/bin/busybox'))
    assert.equal('65534', R.capture('stat -c %u ' .. R.quote(data .. '/images/main/rootfs/etc'))
      :match('%d+'))
    assert.same(CONFIG, cjson.decode(R.read_file(data .. '/images/main/config.json')))
  end)

  it('bash completes the subcommands, and the image ids for rm', function()
    local data = session.tmpdir() .. '/data'
    assert.equal(0, image({ 'import', rootfs, 'alpha' }, data).code)
    assert.equal(0, image({ 'import', rootfs, 'beta' }, data).code)
    local function complete(words)
      local q = { R.quote(R.ORCH) }
      for i, w in ipairs(words) do
        q[i + 1] = R.quote(w)
      end
      local script = ('source %s; COMP_WORDS=(%s); COMP_CWORD=%d; _orch; '
        .. 'printf "%%s\\n" "${COMPREPLY[@]}"'):format(R.quote(R.ROOT .. '/completions/orch.bash'),
        table.concat(q, ' '), #words)
      local list = {}
      for line in R.capture('bash -c ' .. R.quote(script) .. ' 2>&1'):gmatch('[^\n]+') do
        list[#list + 1] = line
      end
      table.sort(list)
      return list
    end
    assert.same({ 'import', 'ls', 'rm' }, complete({ 'image', '' }))
    assert.same({ 'alpha', 'beta' }, complete({ 'image', 'rm', '--data', data, '' }))
    assert.same({ 'beta' }, complete({ 'image', '--data=' .. data, 'rm', 'alpha', 'b' }))
  end)

  it('orch run and orch check give the script the data directory (--data, or the default)',
    function()
      local d = session.tmpdir()
      R.write_file(d .. '/main.lua', [[
local orch = require 'orch'
return orch.setupMain(function(ctx)
  local dd = assert(require('orch.runtime.datadir').current())
  io.stdout:write('DATA ', tostring(ctx.dataDir), ' ', dd.root, '\n')
  return orch.Daemons.of{ effects = ctx.effects }
    :addOneshot('x', { exec = { command = 'true' }, requires = {} })
end)
]])
      local r = R.run({ 'check', '--data', 'rel/dir/', d .. '/main.lua' }, { cwd = d })
      assert.equal(0, r.code, r.err)
      assert.matches(('DATA %s/rel/dir %s/rel/dir\n'):format(d, d):gsub('%-', '%%-'), r.out)
      local name = d:match('[^/]+$')
      r = R.run({ 'check', d .. '/main.lua' }, { env = { XDG_DATA_HOME = '/xdg' } })
      local want = is_root() and ('/var/lib/orch/' .. name) or ('/xdg/orch/' .. name)
      assert.matches(('DATA %s %s\n'):format(want, want):gsub('%p', '%%%0'), r.out)
      r = R.run({ 'check', '--name', 'web', d .. '/main.lua' },
        { env = { XDG_DATA_HOME = '/xdg' } })
      want = is_root() and '/var/lib/orch/web' or '/xdg/orch/web'
      assert.matches(('DATA %s %s\n'):format(want, want):gsub('%p', '%%%0'), r.out)
      r = R.run({ 'run', '--no-contain', '--until-ready', '--data', d .. '/data',
        d .. '/main.lua' })
      assert.equal(0, r.code, r.err)
      assert.matches(('DATA %s/data %s/data\n'):format(d, d):gsub('%p', '%%%0'), r.out)
      r = R.run({ 'run', '--data=', d .. '/main.lua' })
      assert.equal(2, r.code)
      assert.matches('%-%-data needs a directory', r.err)
    end)
end)
