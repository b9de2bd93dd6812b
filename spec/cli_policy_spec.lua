-- Issue 14 end to end with real processes: exec.maxRestarts gives up, the dependents are
-- blocked, and `orch run --until-ready` exits 1 at once naming the chain of causes.
local R = require 'fixtures.cli.runner'

local F = R.FIXTURES

describe('restart limits #integration', function()
  it('orch run --until-ready exits 1 at once when a requirement gives up', function()
    local t0 = R.now()
    local r = R.run({ 'run', '--no-control', '--until-ready=60000', F .. '/gives_up.lua' })
    assert.equal(1, r.code, r.err)
    -- real clock: 3 runs and 2 backoffs of 100 and 200 ms, far from the 60 s limit
    assert.is_true(R.now() - t0 < 20, 'took ' .. tostring(R.now() - t0))
    assert.matches('^orch: Will never be ready %(db failed: gave up after 2 restarts in %d+ '
      .. 'ms: /bin/sh exited with code 3; blocked: app, web%): db,app,web\n', r.err)
    assert.equal(3, select(2, r.out:gsub('db   | db crashing', '')))
    assert.matches('app: waiting %-> disabled %(blocked: db failed%)', r.out)
    assert.matches('web: waiting %-> disabled %(blocked: db failed %(via app%)%)', r.out)
    assert.matches('db: gave up after 2 restarts', r.out)
  end)
end)
