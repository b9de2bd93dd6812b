-- The Debian package (#integration, ctest entry package-deb, label package): `tools/deb.sh`
-- (what `make deb` runs) builds it out of the source tree; extracted into a scratch root it
-- runs (orch --version, orch check) with nothing but its own files, its Lua library loads
-- under lua5.4, its systemd unit passes `systemd-analyze verify`, and lintian reports no
-- error or warning. Slow-ish (a package build): not among the spec/*_spec.lua entries.
local R = require 'fixtures.cli.runner'

local BUILD = R.ORCH:gsub('/bin/orch$', '')
local OUT = BUILD .. '/deb-spec'

local function have(tool)
  return R.capture('command -v ' .. tool .. ' || true'):match('%S') ~= nil
end

-- Run `cmd` in sh; returns its exit status and its output (stdout and stderr).
local function sh(cmd)
  local out = R.capture(cmd .. ' 2>&1; echo "rc=$?"')
  local code = tonumber(out:match('rc=(%d+)%s*$'))
  return code, (out:gsub('rc=%d+%s*$', ''))
end

describe('the Debian package #integration', function()
  local deb, root, version, scratch

  setup(function()
    if not (have('dpkg-buildpackage') and have('dh')) then
      return
    end
    version = R.capture('dpkg-parsechangelog -l debian/changelog -S Version'):gsub('%s+$', '')
    local code, out = sh(('DEB_BUILD_OPTIONS="parallel=$(nproc) noautodbgsym" %s %s')
      :format(R.quote(R.ROOT .. '/tools/deb.sh'), R.quote(OUT)))
    assert(code == 0, 'tools/deb.sh failed:\n' .. out)
    deb = out:match('([^\n]+%.deb)%s*$')
    scratch = R.tmpdir()
    root = scratch .. '/root'
    local xcode, xout = sh(('dpkg -x %s %s'):format(R.quote(deb), R.quote(root)))
    assert(xcode == 0, xout)
  end)

  teardown(function()
    R.cleanup(scratch)
  end)

  local function need_package()
    if not deb then
      pending('dpkg-buildpackage or debhelper is not installed (make deps installs them)')
      return false
    end
    return true
  end

  it('ships the bytecode of the library, made for where it installs it', function()
    if not need_package() then
      return
    end
    local f = assert(io.open(root .. '/usr/lib/orch/bytecode', 'rb'))
    local head = f:read(256)
    f:close()
    assert.equal('ORCHBC1\0', head:sub(1, 8))
    assert.equal('/usr/share/orch/lua', (string.unpack('s4', head, 9)))
  end)

  it('is built out of the source tree', function()
    if not need_package() then
      return
    end
    assert.matches('^' .. OUT:gsub('%p', '%%%0') .. '/orch_' .. version:gsub('%p', '%%%0'), deb)
    for _, p in ipairs({ 'debian/orch', 'debian/.debhelper', 'debian/files', '_build',
      'debian/debhelper-build-stamp', 'debian/orch.substvars' }) do
      assert.equal('', R.capture('ls -d ' .. R.quote(R.ROOT .. '/' .. p) .. ' 2>/dev/null'),
        p .. ' was left in the source tree')
    end
  end)

  it('runs from a scratch root with its own Lua library', function()
    if not need_package() then
      return
    end
    local orch = root .. '/usr/bin/orch'
    -- no ORCH_LUA_PATH, and a cwd without lua/: only the files beside the binary can serve
    local code, out = sh(('cd / && env -u ORCH_LUA_PATH %s --version'):format(R.quote(orch)))
    assert.equal(0, code, out)
    assert.equal(('orch %s (Lua 5.4)\n'):format(version), out)
    local dir = scratch .. '/app'
    os.execute('mkdir -p ' .. R.quote(dir))
    R.write_file(dir .. '/main.lua', [[
local orch = require 'orch'
return orch.Daemons.of{}:addDaemon('web', { exec = { command = { 'true' } }, requires = {} })
]])
    code, out = sh(('cd / && env -u ORCH_LUA_PATH %s check %s'):format(R.quote(orch),
      R.quote(dir .. '/main.lua')))
    assert.equal(0, code, out)
    assert.matches('valid, 1 entr', out)
    assert.truthy(R.read_file(root .. '/usr/bin/orch-relay'), 'orch-relay beside orch')
  end)

  it('puts the library on the Lua 5.4 module paths, and the docs where man and shells look',
    function()
      if not need_package() then
        return
      end
      local multiarch = R.capture('dpkg-architecture -qDEB_HOST_MULTIARCH'):gsub('%s+$', '')
      local code, out = sh(('cd / && LUA_PATH=%s LUA_CPATH=%s lua5.4 -e %s'):format(
        R.quote(root .. '/usr/share/lua/5.4/?.lua;' .. root .. '/usr/share/lua/5.4/?/init.lua'),
        R.quote(root .. '/usr/lib/' .. multiarch .. '/lua/5.4/?.so'),
        R.quote("local o = require 'orch'; assert(o.Daemons.of); "
          .. "io.write(require('orch.core').version, ' ', package.searchpath('orch', "
          .. 'package.path))')))
      assert.equal(0, code, out)
      assert.equal(version .. ' ' .. root .. '/usr/share/lua/5.4/orch/init.lua', out)
      for _, page in ipairs({ 'man1/orch.1.gz', 'man7/orch-lua.7.gz', 'man1/orch-relay.1.gz' }) do
        code, out = sh(('LC_ALL=C MANWIDTH=80 man -l %s'):format(
          R.quote(root .. '/usr/share/man/' .. page)))
        assert.equal(0, code, out)
        assert.matches('\nNAME\n', out)
      end
      assert.truthy(R.read_file(root .. '/usr/share/bash-completion/completions/orch'))
      assert.truthy(R.read_file(root .. '/usr/share/zsh/vendor-completions/_orch'))
    end)

  it('has the orch@.service template, which systemd-analyze verify accepts', function()
    if not need_package() then
      return
    end
    local unit = assert(R.read_file(root .. '/lib/systemd/system/orch@.service'))
    assert.matches('\nType=notify\n', unit)
    assert.matches('\nExecStart=/usr/bin/orch run /etc/orch/%%i/main%.lua\n', unit)
    assert.matches('\nExecReload=/bin/kill %-HUP %$MAINPID\n', unit)
    assert.matches('\nKillMode=mixed\n', unit)
    assert.matches('\nRestartPreventExitStatus=2\n', unit)
    assert.matches('\nWantedBy=multi%-user%.target\n', unit)
    if not have('systemd-analyze') then
      pending('systemd-analyze is not installed (package systemd; make deps installs it)')
      return
    end
    -- An instance of it with the paths moved into the scratch root (verify checks that
    -- ExecStart's binary exists); a copy whose binary is missing must fail, or the check
    -- proves nothing.
    local function verify(binary)
      local dir = scratch .. '/units-' .. tostring(#binary)
      os.execute('mkdir -p ' .. R.quote(dir) .. ' ' .. R.quote(scratch .. '/etc/orch/demo'))
      R.write_file(scratch .. '/etc/orch/demo/main.lua', 'return nil\n')
      local text = unit:gsub('/usr/bin/orch', binary):gsub('/etc/orch', scratch .. '/etc/orch')
      R.write_file(dir .. '/orch@demo.service', text)
      return sh(('cd %s && SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no %s')
        :format(R.quote(dir), R.quote(dir .. '/orch@demo.service')))
    end
    local code, out = verify(root .. '/usr/bin/orch')
    assert.equal(0, code, out)
    assert.is_nil(out:find('orch@demo', 1, true), out)
    code, out = verify(root .. '/usr/bin/no-such-orch')
    assert.are_not.equal(0, code, out)
    assert.matches('no%-such%-orch', out)
  end)

  it('passes lintian without errors or warnings', function()
    if not need_package() then
      return
    end
    if not have('lintian') then
      pending('lintian is not installed (make deps installs it)')
      return
    end
    local code, out = sh('lintian --fail-on error,warning ' .. R.quote(deb))
    assert.equal(0, code, out)
    assert.is_nil(out:match('\n?[EW]: [^\n]+'), out)
  end)
end)
