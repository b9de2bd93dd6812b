-- `orch run --status-file` with another user who may write the status file's directory (issue
-- 11, item 1): root runs orch, `nobody` attacks. Runs the real build/bin/orch (#integration).
local R = require 'fixtures.cli.runner'
local cjson = require 'cjson'

local FIX = R.ROOT .. '/spec/fixtures/status'
local session = R.session()
local start, tmpdir = session.start, session.tmpdir
local NOBODY = 65534

local function sh(cmd)
  assert(os.execute(cmd), cmd)
end

describe('orch run --status-file #integration', function()
  local attacker -- pid of the attacking process, killed after each spec
  after_each(function()
    if attacker then
      os.execute(('kill -KILL %d 2>/dev/null'):format(attacker))
      attacker = nil
    end
    session.cleanup()
  end)

  it('refuses a directory that other users can write into (exit 1, naming it)', function()
    local dir = tmpdir()
    sh('chmod 0777 ' .. dir)
    local r = R.run({ 'run', '--until-ready=10000', '--status-file', dir .. '/status.json',
      R.FIXTURES .. '/ok.lua' })
    assert.equal(1, r.code)
    assert.matches('cannot write the status file ' .. dir:gsub('%p', '%%%0')
      .. '/status.json: directory .* is writable by other users', r.err)
    assert.equal('', R.capture('ls -A ' .. R.quote(dir)))
  end)

  it('never writes through the links another user plants where it writes #root', function()
    if R.capture('id -u') ~= '0\n' then
      pending('needs root and a second user')
      return
    end
    -- A sticky world-writable directory, as /tmp: accepted, so the attack gets its chance.
    -- (fs.protected_symlinks = 1 would stop root following nobody's links there anyway; the
    -- link is not followed whatever that setting is.)
    local dir, secret = tmpdir(), tmpdir()
    sh('chmod 1777 ' .. dir)
    local target = secret .. '/target'
    R.write_file(target, 'secret')
    local log = secret .. '/attacker.out'
    -- /usr/bin/python3: a python3 found on root's PATH may be under /root, out of nobody's reach.
    attacker = tonumber(R.capture(('setpriv --reuid=%d --regid=%d --clear-groups '
      .. '/usr/bin/python3 -u %s/plant_links.py %s %s >%s 2>&1 & echo $!'):format(NOBODY,
      NOBODY, FIX, R.quote(dir), R.quote(target), R.quote(log))))
    R.wait_until(function()
      return (R.read_file(log) or ''):find('ready', 1, true)
    end, 5000, 'the attacker')
    local path = dir .. '/status.json'
    local p = start({ 'run', '--status-file', path, FIX .. '/flip.lua' })
    -- Links planted after several writes: each was at the name of a write gone by.
    R.wait_until(function()
      local _, n = (R.read_file(log) or ''):gsub('planted', '')
      return n >= 5
    end, 10000, 'five links planted')
    R.wait_until(function()
      assert.equal('secret', R.read_file(target), 'written through a planted link')
      local ok, d = pcall(cjson.decode, R.read_file(path) or '')
      return ok and tonumber(d.entries[1].message) >= 8
    end, 10000, 'more writes after the links were planted')
    p:signal('TERM')
    assert.equal(0, p:wait())
    assert.equal('secret', R.read_file(target))
    assert.equal('root', (R.capture('stat -c %U ' .. R.quote(path)):gsub('\n$', '')))
    assert.equal('stopped', cjson.decode(R.read_file(path)).orch.phase)
  end)
end)
