-- Daemons without a readiness check (orch's extension, #integration): ready as soon as the
-- process runs, dependents start then, a crash is a failure until the next spawn, and nothing
-- is ever probed (no timer runs for them: idle means idle).
local H = require 'spec.support.helpers'

insulate('Daemons without ready #integration', function()
  local orch = H.real()
  local Daemons = orch.Daemons
  local fx = H.effects_per_test() -- no process a test spawned may outlive it

  local function results(id)
    local out = {}
    for _, s in ipairs(fx.states_of(id)) do
      out[#out + 1] = s.result .. (s.message and (' ' .. s.message) or '')
    end
    return out
  end

  it('is success once spawned, and its dependents start then', function()
    local chain = Daemons.of{ effects = fx }
      :addDaemon('db', { exec = { command = { 'sleep', '30' } }, requires = {} })
      :addDaemon('api', { exec = { command = { 'sleep', '30' } }, requires = { 'db' } })
    H.run(function()
      chain:build()
      H.wait_until(function()
        local s = fx.state('api')
        return s and s.result == 'success'
      end, 5000, 5, 'api running')
      chain:term()
    end, 10000)
    assert.are.same({ 'starting', 'success running' }, { table.unpack(results('db'), 1, 2) })
    local db_spawn, api_spawn = fx.events('db', 'spawn')[1], fx.events('api', 'spawn')[1]
    local db_ok
    for _, s in ipairs(fx.states_of('db')) do
      db_ok = db_ok or (s.result == 'success' and s)
    end
    assert.is_true(db_ok.t >= db_spawn.t)
    assert.is_true(api_spawn.t >= db_ok.t, 'api started before db ran')
    -- hidden: nothing to display, so nothing goes to setHealth
    assert.are.same({}, fx.of('db'))
    assert.is_false(fx.state('db').visible)
  end)

  it('a crash is a failure until the restart runs again', function()
    local chain = Daemons.of{ effects = fx }
      :addDaemon('flaky', { exec = { command = 'sleep 0.2; exit 3' }, requires = {} })
    H.run(function()
      chain:build()
      H.wait_until(function()
        return #fx.events('flaky', 'spawn') >= 2
      end, 5000, 5, 'a restart')
      H.wait_until(function()
        return fx.state('flaky').result == 'success'
      end, 2000, 5, 'running again')
      chain:term()
    end, 10000)
    local seq = results('flaky')
    assert.are.same({ 'starting', 'success running', 'failure flaky daemon crashed',
      'success running' }, { table.unpack(seq, 1, 4) })
  end)

  it('runs no probe loop: nothing wakes up for them once they run', function()
    local chain = Daemons.of{ effects = fx }
      :addDaemon('a', { exec = { command = { 'sleep', '30' } }, requires = {} })
      :addDaemon('b', { exec = { command = { 'sleep', '30' } }, requires = { 'a' } })
      :addDaemon('c', { exec = { command = { 'sleep', '30' } }, requires = {},
        ready = { display = 'C', fn = function() return { result = 'success' } end } })
    local probing = {}
    H.run(function()
      chain:build()
      H.wait_until(function()
        local s, c = fx.state('b'), fx.state('c')
        return s and s.result == 'success' and c and c.result == 'success'
      end, 5000, 5, 'b and c running')
      for _, hd in ipairs(chain._hds) do
        probing[hd.id] = hd._probe ~= nil and not hd._probe:finished()
      end
      chain:term()
    end, 10000)
    -- c has a check, so its probe loop runs (and would wake every 30 s); a and b have none
    assert.are.same({ a = false, b = false, c = true }, probing)
    assert.are.equal(1, #fx.events('a', 'spawn'))
  end)

  it('orch check shows it as ready when running', function()
    local chain = Daemons.of{ effects = fx }
      :addDaemon('db', { exec = { command = { 'sleep', '30' } }, requires = {} })
    local text = require('orch.cli').format_entries(chain:entries())
    assert.truthy(text:find('db%s+daemon%s+%-%s+when running%s+always%s+sleep 30'), text)
  end)

  it('addHealthCheck still requires ready', function()
    assert.has_error(function()
      Daemons.of{}:addHealthCheck('x', { requires = {} })
    end, "Daemons: entry 'x': ready is required ({display = ..., fn = ...})")
  end)
end)
