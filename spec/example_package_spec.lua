-- examples/package (#integration, as root): its image is built offline by build-image.sh
-- (busybox-static -> umoci OCI layout -> orch image import), then `orch run --until-ready`
-- runs the package: the oneshot initialises the volume in the subcontainer, the daemon (the
-- image's entrypoint, as the image's user) serves it, the health script inside the
-- subcontainer fetches the page. A second run finds the volume as the first left it; nothing
-- is left mounted.
local R = require 'fixtures.cli.runner'

local session = R.session()

local function missing()
  if not R.capture('id -u'):match('^0%s') then
    return 'subcontainers need root here'
  end
  for _, tool in ipairs({ 'bwrap', 'umoci', 'busybox' }) do
    if not R.capture('command -v ' .. tool .. ' || true'):match('%S') then
      return tool .. ' is not installed (make deps)'
    end
  end
end

describe('examples/package #integration', function()
  teardown(session.cleanup)

  it('builds its image offline, runs, keeps its volume across runs, leaves no mount', function()
    local why = missing()
    if why then
      pending(why)
      return
    end
    local data = session.tmpdir() .. '/data'
    local ex = R.ROOT .. '/examples/package'
    local build = R.capture(('ORCH=%s %s/build-image.sh %s 2>&1; echo "rc=$?"'):format(
      R.quote(R.ORCH), ex, R.quote(data)))
    assert.matches("imported image 'web' from the OCI layout .*\nrc=0", build)
    local c = R.run({ 'check', '--data', data, ex .. '/main.lua' })
    assert.equal(0, c.code, c.err)
    assert.matches('valid, 3 entries %(1 oneshot, 1 daemon, 1 health check%)', c.out)

    local port = tostring(R.free_port())
    local env = { ORCH_INIT = R.ORCH:gsub('/orch$', '/orch-init') }
    local r = R.run({ 'run', '--until-ready=40000', '--data', data, ex .. '/main.lua', port },
      { env = env, timeout = 60 })
    assert.equal(0, r.code, r.out .. r.err)
    assert.matches('init%-volume | volume initialised', r.out)
    assert.matches('init%-volume | boot 1\n', r.out)
    assert.matches('primary: starting %-> success %(listening on port ' .. port .. '%)', r.out)
    assert.matches('site: starting %-> success %(the home page is served%)', r.out)
    local vol = data .. '/volumes/main'
    assert.matches('from a subcontainer', R.read_file(vol .. '/www/index.html'))
    assert.equal('1000', R.capture('stat -c %u ' .. R.quote(vol .. '/www')):match('%d+'))

    r = R.run({ 'run', '--until-ready=40000', '--data', data, ex .. '/main.lua', port },
      { env = env, timeout = 60 })
    assert.equal(0, r.code, r.out .. r.err)
    assert.is_nil(r.out:find('volume initialised', 1, true))
    assert.matches('init%-volume | boot 2\n', r.out)
    assert.equal('2\n', R.read_file(vol .. '/boots'))

    assert.is_nil(R.read_file('/proc/mounts'):find(data, 1, true))
    assert.same({}, (function()
      local left = {}
      for name in R.capture('ls -A ' .. R.quote(data .. '/.mnt') .. ' 2>/dev/null')
        :gmatch('[^\n]+') do
        left[#left + 1] = name
      end
      return left
    end)())
  end)
end)
