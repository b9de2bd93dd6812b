-- Group B of reference.md section 4: startup and dependency gating (fake clock).
-- Adjusted per DECISIONS: the default trigger probes fast until the first success (5 ms apart
-- at first, then 1/8 of the time since the start: 5, 10, ... 50, 56, 63, ... ms) instead of once
-- a second.
local H = require 'spec.support.helpers'

insulate('Daemons startup and gating (group B)', function()
  local fake, orch = H.fake()
  local Daemons, trigger = orch.Daemons, orch.trigger
  local fx = H.fake_effects_per_test(fake) -- no fake process may outlive a test

  -- A probe that succeeds from loop time `t` on.
  local function success_from(t, msg)
    return function()
      if orch.now() >= t then
        return { result = 'success', message = msg or 'ok' }
      end
      return { result = 'failure', message = 'not yet' }
    end
  end

  local function daemon(cmd, display, fn, requires, extra)
    local o = {
      exec = { command = { cmd } },
      ready = { display = display, fn = fn },
      requires = requires or {},
    }
    for k, v in pairs(extra or {}) do
      o.ready[k] = v
    end
    return o
  end

  local function first(list, pred)
    for _, x in ipairs(list) do
      if pred(x) then
        return x
      end
    end
  end

  it('13: single daemon: starting and spawn at t0, success from the probe, build() returns at '
    .. 'once', function()
      fake.program('main', { listen = 8080, listen_after = 300 })
      local chain = Daemons.of{ effects = fx }:addDaemon('main', daemon('main', 'Main',
        function()
          return orch.healthCheck.checkPortListening(8080, {
            successMessage = 'Main is ready', errorMessage = 'Main is not listening',
          })
        end))
      H.run(function()
        local t0 = orch.now()
        chain:build()
        assert.are.equal(t0, orch.now()) -- build() does not wait
        H.at(31000)
        chain:term()
      end, 60000)
      local r = fx.of('main')
      assert.are.same({ 0, 'main', 'Main', 'starting' }, { r[1].t, r[1].id, r[1].name,
        r[1].result })
      assert.is_nil(r[1].message)
      assert.are.equal(0, fake.procs('main')[1].t0)
      -- fast probes at 5, 10, ... 245, 275 (failures shown as starting within grace), the
      -- first one after the bind at 300 succeeds (309), then 30 s later (30309)
      local ready = H.fast_first(300)
      local expected, results = { 0 }, { 'starting' }
      for _, t in ipairs(H.fast_probes(ready)) do
        expected[#expected + 1] = t
        results[#results + 1] = t < ready and 'starting' or 'success'
      end
      expected[#expected + 1] = ready + 30000
      results[#results + 1] = 'success'
      assert.are.same(expected, H.times(r))
      assert.are.same(results, (function()
        local out = {}
        for i, x in ipairs(r) do
          out[i] = x.result
        end
        return out
      end)())
      assert.are.equal('Main is ready', r[#r - 1].message)
      assert.are.equal('Main is not listening', r[2].message)
      assert.are.equal('Main is not listening', r[#r - 2].message)
    end)

  it('14: a dependent reports waiting with the dependency names, then starts the instant it '
    .. 'is ready', function()
      local chain = Daemons.of{ effects = fx }
        :addDaemon('db', daemon('db', 'Database', success_from(1000), {},
          { trigger = trigger.cooldownTrigger(1000) }))
        :addDaemon('api', daemon('api', 'API', success_from(0), { 'db' }))
      H.run(function()
        chain:build()
        H.at(3000)
        chain:term()
      end)
      local api = fx.of('api')
      assert.are.same({ 0, 'waiting', 'Database' }, { api[1].t, api[1].result, api[1].message })
      local starting = first(api, function(x)
        return x.result == 'starting'
      end)
      assert.are.equal(1000, starting.t)
      assert.is_nil(starting.message)
      assert.are.equal(1000, fake.procs('api')[1].t0)
      local ok = first(api, function(x)
        return x.result == 'success'
      end)
      assert.are.equal(1005, ok.t) -- first probe of the default trigger, 5 ms after launch
    end)

  it('15: hidden and oneshot dependencies are not named; visible ones are, in requires order',
    function()
      fake.program('migrate', {}) -- never exits: stays not ready
      local never = function()
        return { result = 'failure', message = 'no' }
      end
      local base = Daemons.of{ effects = fx }
        :addHealthCheck('cache', { ready = { display = false, fn = never }, requires = {} })
        :addOneshot('migrate', { exec = { command = { 'migrate' } }, requires = {} })
      local c1 = base:addDaemon('app', daemon('app', 'App', never, { 'cache', 'migrate' }))
      local c2 = base
        :addHealthCheck('db', { ready = { display = 'Database', fn = never }, requires = {} })
        :addDaemon('app', daemon('app', 'App', never, { 'cache', 'migrate', 'db' }))
      local c3 = base
        :addHealthCheck('db', { ready = { display = 'Database', fn = never }, requires = {} })
        :addHealthCheck('cache-ui', { ready = { display = 'Cache UI', fn = never },
          requires = {} })
        :addDaemon('app', daemon('app', 'App', never, { 'cache-ui', 'db', 'cache' }))
      for i, chain in ipairs { c1, c2, c3 } do
        fake.reset()
        fake.program('migrate', {})
        local rec = H.effects() -- a recorder per chain
        chain.effects = rec
        H.run(function()
          chain:build()
          H.at(2000)
          local app = rec.last('app')
          assert.are.equal('waiting', app.result)
          assert.are.equal(({ nil, 'Database', 'Cache UI, Database' })[i], app.message)
          chain:term()
        end)
      end
    end)

  it('16: AND of dependencies: c starts only when both a and b are ready', function()
    local cool = { trigger = trigger.cooldownTrigger(1000) }
    local chain = Daemons.of{ effects = fx }
      :addDaemon('a', daemon('a', 'A', success_from(1000), {}, cool))
      :addDaemon('b', daemon('b', 'B', success_from(5000), {}, cool))
      :addDaemon('c', daemon('c', 'C', success_from(0), { 'a', 'b' }))
    H.run(function()
      chain:build()
      H.at(6000)
      chain:term()
    end)
    assert.are.same({ 5000 }, fake.spawn_times('c'))
  end)

  it('17: declaration order is not start order', function()
    local chain = Daemons.of{ effects = fx }
      :addDaemon('x', daemon('x', 'X', success_from(500), {},
        { trigger = trigger.cooldownTrigger(500) }))
      :addDaemon('y', daemon('y', 'Y', success_from(0), { 'x' }))
      :addDaemon('z', daemon('z', 'Z', success_from(0), {}))
    H.run(function()
      chain:build()
      H.at(1000)
      chain:term()
    end)
    assert.are.same({ 0 }, fake.spawn_times('x'))
    assert.are.same({ 0 }, fake.spawn_times('z'))
    assert.are.same({ 500 }, fake.spawn_times('y'))
  end)

  it('18: a oneshot gates its dependents until it exits 0, and is never reported', function()
    fake.program('init', { exit = 2000, code = 0 })
    local chain = Daemons.of{ effects = fx }
      :addOneshot('init', { exec = { command = { 'init' } }, requires = {} })
      :addDaemon('app', daemon('app', 'App', success_from(0), { 'init' }))
    H.run(function()
      chain:build()
      H.at(3000)
      chain:term()
    end)
    assert.are.same({ 0 }, fake.spawn_times('init'))
    assert.are.same({ 2000 }, fake.spawn_times('app'))
    assert.are.equal(0, #fx.of('init'))
    assert.are.equal('success', fx.state('init').result) -- orch extension: onState sees it
    assert.are.equal('oneshot', fx.state('init').kind)
  end)

  it('19: a oneshot fn returning nil counts as success when it returns', function()
    local worked
    local chain = Daemons.of{ effects = fx }
      :addOneshot('prep', {
        exec = { fn = function(sub, abort)
          assert.is_nil(sub)
          assert.is_false(abort.aborted)
          orch.sleep(100)
          worked = orch.now()
          return nil
        end },
        requires = {},
      })
      :addDaemon('app', daemon('app', 'App', success_from(0), { 'prep' }))
    H.run(function()
      chain:build()
      H.at(500)
      chain:term()
    end)
    assert.are.equal(100, worked)
    assert.are.same({ 100 }, fake.spawn_times('app'))
  end)

  it('20: a standalone health check waits for its requirement, then probes under its own id',
    function()
      local chain = Daemons.of{ effects = fx }
        :addDaemon('app', daemon('app', 'App', success_from(1000), {},
          { trigger = trigger.cooldownTrigger(1000) }))
        :addHealthCheck('sync', { ready = { display = 'Sync', fn = success_from(0, 'synced') },
          requires = { 'app' } })
      H.run(function()
        chain:build()
        H.at(2000)
        chain:term()
      end)
      local sync = fx.of('sync')
      assert.are.same({ 'waiting', 'App' }, { sync[1].result, sync[1].message })
      local ok = first(sync, function(x)
        return x.result == 'success'
      end)
      -- its first probe, 5 ms after app's success at 1000 started it
      assert.are.same({ 1005, 'sync', 'Sync', 'synced' }, { ok.t, ok.id, ok.name, ok.message })
      assert.are.equal(0, #fake.procs('sync'))
    end)

  it('uses the effects build() is given when Daemons.of() gets none', function()
    local sink = H.effects()
    local chain = Daemons.of():addDaemon('x', daemon('x', 'X', success_from(0)))
    H.run(function()
      chain:build({ effects = sink })
      H.at(100)
      chain:term()
    end)
    assert.are.same({ 'starting', 'success' }, { sink.of('x')[1].result, sink.last('x').result })
    assert.are.equal('spawn', sink.events('x')[1].event)
  end)

  it("keeps a chain's own effects over those build() is given", function()
    local sink = H.effects()
    local chain = Daemons.of{ effects = fx }:addDaemon('x', daemon('x', 'X', success_from(0)))
    H.run(function()
      chain:build({ effects = sink })
      H.at(100)
      chain:term()
    end)
    assert.are.equal(0, #sink.of('x'))
    assert.are.equal('starting', fx.of('x')[1].result)
  end)

  it('rejects build options that are not a table', function()
    local chain = Daemons.of{ effects = fx }:addDaemon('x', daemon('x', 'X', success_from(0)))
    assert.has_error(function()
      chain:build('fast')
    end, "bad argument #1 to 'build' (table or nil expected, got string)")
  end)

  it('accepts the SDK\'s positional Daemons.of(effects)', function()
    local rec = H.effects() -- a plain recorder: positional effects must be a non-empty table
    local chain = Daemons.of(rec):addDaemon('x', daemon('x', 'X', success_from(0)))
    H.run(function()
      chain:build()
      chain:term()
    end)
    assert.are.equal('starting', rec.of('x')[1].result)
  end)

  it('21: build() does not wait for health', function()
    local chain = Daemons.of{ effects = fx }:addDaemon('x', daemon('x', 'X', function()
      return { result = 'failure', message = 'never' }
    end))
    local real0 = os.clock()
    H.run(function()
      local t0 = orch.now()
      chain:build()
      assert.are.equal(t0, orch.now())
      chain:term()
    end)
    assert.is_true(os.clock() - real0 < 0.1)
  end)
end)
