-- Group C of reference.md section 4 (health semantics) and scenario 72, on the fake clock.
-- Adjusted per DECISIONS: default gracePeriod 5000 ms, default trigger fast until first success.
local H = require 'spec.support.helpers'

local function NOOP()
  return { result = 'success', message = 'ok' }
end

insulate('Daemons health semantics (group C)', function()
  local fake, orch = H.fake()
  local Daemons, trigger, healthCheck = orch.Daemons, orch.trigger, orch.healthCheck
  local fx = H.fake_effects_per_test(fake) -- no fake process may outlive a test

  local function results(list)
    local out = {}
    for i, r in ipairs(list) do
      out[i] = r.result
    end
    return out
  end

  local function messages(list)
    local out = {}
    for i, r in ipairs(list) do
      out[i] = r.message
    end
    return out
  end

  local function probes_only(list)
    local out = {}
    for _, r in ipairs(list) do
      if r.t > 0 then
        out[#out + 1] = r
      end
    end
    return out
  end

  local function daemon(cmd, ready, requires)
    ready.display = ready.display == nil and 'X' or ready.display
    return { exec = { command = { cmd } }, ready = ready, requires = requires or {} }
  end

  local function run(chain, until_ms)
    H.run(function()
      chain:build()
      H.at(until_ms)
      chain:term()
    end, until_ms + 100000)
  end

  it('22: default grace period (5000 ms): failures are reported as starting, internally failure',
    function()
      local chain = Daemons.of{ effects = fx }
        :addDaemon('main', daemon('main', { fn = function()
          return { result = 'failure', message = 'down' }
        end }))
        :addDaemon('dep', daemon('dep', { fn = NOOP }, { 'main' }))
      run(chain, 8000)
      local r = probes_only(fx.of('main'))
      -- the default trigger never sees a success: 5, 10, ... 4582 (within the grace period),
      -- 5154, ... 7337 (after it)
      assert.are.same(H.fast_probes(8000), H.times(r))
      for _, x in ipairs(r) do
        assert.are.equal(x.t <= 5000 and 'starting' or 'failure', x.result)
        assert.are.equal('down', x.message)
      end
      assert.are.equal('failure', fx.state('main').result) -- raw
      assert.are.equal(0, #fake.procs('dep'))
    end)

  it('23: a custom gracePeriod (inclusive boundary)', function()
    local chain = Daemons.of{ effects = fx }:addDaemon('g3', daemon('g3', {
      fn = function()
        return { result = 'failure', message = 'down' }
      end,
      gracePeriod = 3000,
      trigger = trigger.cooldownTrigger(1000),
    }))
    run(chain, 5500)
    local r = probes_only(fx.of('g3'))
    assert.are.same({ 1000, 2000, 3000, 4000, 5000 }, H.times(r))
    assert.are.same({ 'starting', 'starting', 'starting', 'failure', 'failure' }, results(r))
  end)

  it('24a: crash restarts do not reopen the grace window', function()
    fake.program('x', { runs = { { exit = 2000, code = 1 }, { exit = 6000, code = 1 }, {} } })
    local chain = Daemons.of{ effects = fx }:addDaemon('x', daemon('x', {
      fn = function()
        return { result = 'success', message = 'ok' }
      end,
      trigger = trigger.cooldownTrigger(100000),
    }))
    run(chain, 9000)
    local crashes = {}
    for _, r in ipairs(fx.of('x')) do
      if r.message == 'x daemon crashed' then
        crashes[#crashes + 1] = r
      end
    end
    assert.are.same({ 2000, 8000 }, H.times(crashes))
    assert.are.same({ 'starting', 'failure' }, results(crashes))
  end)

  it('24b: a dependency-driven stop/start opens a new grace window', function()
    local a_fn, a_state = H.switch('success')
    local b_fn, b_state = H.switch('success')
    local chain = Daemons.of{ effects = fx }
      :addHealthCheck('a', { ready = { display = 'A', fn = a_fn,
        trigger = trigger.cooldownTrigger(100) }, requires = {} })
      :addDaemon('b', daemon('b', { fn = b_fn, trigger = trigger.cooldownTrigger(1000) },
        { 'a' }))
    H.run(function()
      chain:build()
      H.at(39950)
      a_state.result = 'failure'
      H.at(40050)
      a_state.result = 'success' -- a: failure at 40000, success at 40100
      H.at(41500)
      b_state.result = 'failure'
      H.at(48000)
      chain:term()
    end, 200000)
    -- a's first success at 100 starts b; a fails at 40000 (b stops) and recovers at 40100
    assert.are.same({ 100, 40100 }, fake.spawn_times('b'))
    local fails = {}
    for _, r in ipairs(fx.of('b')) do
      if r.t > 41500 then
        fails[#fails + 1] = r
      end
    end
    -- b relaunched at 40100: probes at 42100 .. 45100 are within its new grace window
    assert.are.same({ 42100, 43100, 44100, 45100, 46100, 47100 }, H.times(fails))
    assert.are.same({ 'starting', 'starting', 'starting', 'starting', 'failure', 'failure' },
      results(fails))
  end)

  it('25: a hidden check is never reported but still gates its dependents', function()
    local chain = Daemons.of{ effects = fx }
      :addHealthCheck('h', { ready = { display = false, trigger = trigger.cooldownTrigger(1000),
        fn = function()
          return { result = orch.now() >= 2000 and 'success' or 'failure', message = 'h' }
        end }, requires = {} })
      :addDaemon('d', daemon('d', { display = 'D', fn = NOOP }, { 'h' }))
    run(chain, 60000)
    assert.are.equal(0, #fx.of('h'))
    assert.are.same({ 2000 }, fake.spawn_times('d'))
    assert.is_nil(fx.of('d')[1].message) -- the hidden dependency is not named
  end)

  it('26: every error raised by the probe becomes a failure with its message', function()
    local variants = {
      table_error = function()
        error({ message = 'boom' })
      end,
      string_error = function()
        error('boom')
      end,
      after_yield = function()
        orch.sleep(10)
        error('boom')
      end,
      error_object = function()
        error(setmetatable({}, { __tostring = function()
          return 'boom'
        end }))
      end,
    }
    local chain = Daemons.of{ effects = fx }
    local ids = {}
    for name, fn in pairs(variants) do
      local id = name:gsub('_', '-')
      ids[#ids + 1] = id
      chain = chain:addHealthCheck(id, { ready = { display = name, fn = fn, gracePeriod = 0 },
        requires = {} })
    end
    chain = chain:addHealthCheck('in-grace', { ready = { display = 'G', fn = variants.table_error },
      requires = {} })
    run(chain, 500)
    for _, id in ipairs(ids) do
      local r = probes_only(fx.of(id))
      assert.is_true(#r >= 3, id)
      for _, x in ipairs(r) do
        assert.are.same({ 'failure', 'boom' }, { x.result, x.message }, id)
      end
    end
    assert.are.same({ 'starting', 'boom' }, { fx.last('in-grace').result,
      fx.last('in-grace').message })
  end)

  it('27: runHealthScript: failure message, and the success message format', function()
    fake.program('sh -c exit 1', { exit = 0, code = 1 })
    fake.program('check', { stdout = 'all good', exit = 0, code = 0 })
    local chain = Daemons.of{ effects = fx }
      :addHealthCheck('bad', { ready = { display = 'Bad', gracePeriod = 0, fn = function()
        return healthCheck.runHealthScript({ 'sh', '-c', 'exit 1' }, { errorMessage = 'not ready' })
      end }, requires = {} })
      :addHealthCheck('good', { ready = { display = 'Good', fn = function()
        return healthCheck.runHealthScript({ 'check', '--all' })
      end }, requires = {} })
    fake.program('check --all', { stdout = 'all good', exit = 0, code = 0 })
    run(chain, 200)
    assert.are.same({ 'failure', 'not ready' }, { fx.last('bad').result, fx.last('bad').message })
    assert.are.same({ 'success', 'Have ran script check,--all and the result: all good' },
      { fx.last('good').result, fx.last('good').message })
  end)

  it('28: loading does not satisfy requires', function()
    local chain = Daemons.of{ effects = fx }
      :addDaemon('db', daemon('db', { display = 'Database', fn = function()
        return { result = 'loading', message = 'syncing' }
      end }))
      :addDaemon('api', daemon('api', { display = 'API', fn = NOOP }, { 'db' }))
    run(chain, 10000)
    assert.are.equal(0, #fake.procs('api'))
    assert.are.same({ 'waiting', 'Database' }, { fx.last('api').result, fx.last('api').message })
    -- before the first success the default trigger keeps probing at most 1 s apart: 5, 10,
    -- ... 7337, 8254, 9254
    local r = probes_only(fx.of('db'))
    assert.are.same(H.fast_probes(10000), H.times(r))
    assert.are.equal('loading', r[#r].result)
  end)

  it('28: loading after a success is probed on the 30 s cadence', function()
    local fn, calls = H.scripted({ 'success', 'loading' })
    local chain = Daemons.of{ effects = fx }:addDaemon('db', daemon('db', { fn = fn }))
    run(chain, 70000)
    assert.are.same({ 5, 30005, 60005 }, calls) -- first probe 5 ms after the start
  end)

  it('29: every probe is reported, not only changes', function()
    local chain = Daemons.of{ effects = fx }:addDaemon('x', daemon('x', { fn = function()
      return { result = 'success', message = 'ok' }
    end }))
    run(chain, 70000)
    local r = probes_only(fx.of('x'))
    assert.are.same({ 5, 30005, 60005 }, H.times(r))
    assert.are.same({ 'ok', 'ok', 'ok' }, messages(r))
  end)

  it('30: default trigger (DECISIONS): fast until the first success, then 30 s; 1 s after a '
    .. 'failure', function()
      local fn, calls = H.scripted({ 'failure', 'failure', 'failure', 'success', 'failure',
        'success' })
      local chain = Daemons.of{ effects = fx }:addDaemon('x', daemon('x', { fn = fn }))
      run(chain, 62000)
      -- fast: 5, 10, 15 fail, 20 succeeds; then 30 s after a success, 1 s after a failure
      assert.are.same({ 5, 10, 15, 20, 30020, 31020, 61020 }, calls)
    end)

  it('31: seed trigger changeOnFirstSuccess(1000 -> 30000): 31 s after the first success, then '
    .. '30 s for ever', function()
      local fn, calls = H.scripted({ 'failure', 'failure', 'failure', 'success', 'failure' })
      local chain = Daemons.of{ effects = fx }:addDaemon('x', daemon('x', { fn = fn,
        trigger = trigger.changeOnFirstSuccess {
          beforeFirstSuccess = trigger.cooldownTrigger(1000),
          afterFirstSuccess = trigger.cooldownTrigger(30000),
        } }))
      run(chain, 70000)
      assert.are.same({ 1000, 2000, 3000, 4000, 35000, 65000 }, calls)
    end)

  it('32: the cooldown is measured from the end of the probe', function()
    local starts = {}
    local chain = Daemons.of{ effects = fx }:addDaemon('x', daemon('x', {
      trigger = trigger.cooldownTrigger(2000),
      fn = function()
        starts[#starts + 1] = orch.now()
        orch.sleep(500)
        return { result = 'success' }
      end,
    }))
    run(chain, 7200)
    assert.are.same({ 2000, 4500, 7000 }, starts)
  end)

  it('33: statusTrigger(10000, {failure = 500})', function()
    local fn, calls = H.scripted({ 'failure', 'failure', 'failure', 'success', 'failure' })
    local chain = Daemons.of{ effects = fx }:addDaemon('x', daemon('x', { fn = fn,
      trigger = trigger.statusTrigger(10000, { failure = 500 }) }))
    run(chain, 22000)
    -- first probe: lastResult 'starting' -> default 10000; failing -> 500; success -> 10000
    assert.are.same({ 10000, 10500, 11000, 11500, 21500 }, calls)
  end)

  it('34: a trigger that ends stops probing for the session; the process keeps running',
    function()
      local function twice(_)
        local n = 0
        return function()
          n = n + 1
          orch.sleep(100)
          return n <= 2
        end
      end
      local fn, calls = H.scripted({ 'success', 'failure' })
      local chain = Daemons.of{ effects = fx }:addDaemon('x', daemon('x', { fn = fn,
        trigger = twice }))
      H.run(function()
        chain:build()
        H.at(5000)
        assert.are.equal(2, #calls)
        assert.are.equal('failure', fx.state('x').result) -- stays at the last result
        assert.is_true(fake.procs('x')[1].alive)
        chain:term()
      end)
    end)

  it('a trigger that raises ends probing for the session with a logged error', function()
    local function broken(_)
      local n = 0
      return function()
        n = n + 1
        orch.sleep(100)
        if n == 3 then
          error('trigger broke')
        end
        return true
      end
    end
    local fn, calls = H.scripted({ 'success' })
    local chain = Daemons.of{ effects = fx }:addDaemon('x', daemon('x', { fn = fn,
      trigger = broken }))
    run(chain, 2000)
    assert.are.same({ 100, 200 }, calls)
    assert.are.equal(1, #fx.logged('x: ready.trigger raised: trigger broke; probing stops'))
    assert.is_true(fake.procs('x')[1].t_exit == 2000) -- the process ran until term()
  end)

  it('72: an invalid health result becomes a failure and the loop continues', function()
    local fn, calls = H.scripted({
      { result = 'ok' }, 'nonsense', function()
        return nil
      end, { result = 'success', message = 'fine' },
    })
    local chain = Daemons.of{ effects = fx }:addDaemon('x', daemon('x', { fn = fn,
      gracePeriod = 0 }))
    run(chain, 1000)
    local r = probes_only(fx.of('x'))
    assert.are.same({ "invalid health result 'ok'", "invalid health result 'nonsense'",
      "invalid health result 'nil'", 'fine' }, messages(r))
    assert.are.same({ 'failure', 'failure', 'failure', 'success' }, results(r))
    assert.are.equal(4, #calls)
  end)

  it('forwards extra result fields to setHealth and fills a missing failure message', function()
    local chain = Daemons.of{ effects = fx }:addDaemon('x', daemon('x', { gracePeriod = 0,
      fn = function()
        return { result = 'failure', extra = 42 }
      end }))
    run(chain, 60)
    local r = fx.last('x')
    assert.are.same({ 'failure', '', 42 }, { r.result, r.message, r.raw.extra })
  end)

  it('an effects.setHealth that raises is logged and never stops the probe loop', function()
    local n = 0
    fx.setHealth = function()
      n = n + 1
      error('sink down')
    end
    local chain = Daemons.of{ effects = fx }:addDaemon('x', daemon('x', {
      fn = function()
        return { result = 'success' }
      end, trigger = trigger.cooldownTrigger(100) }))
    run(chain, 1000)
    assert.are.equal(10, n) -- the build report + the probes at 100 .. 900
    assert.are.equal(10, #fx.logged('effects.setHealth failed for x: sink down'))
  end)

  it('cancels an in-flight probe at once when the entry stops (H6)', function()
    local a_fn, a_state = H.switch('success')
    local closed
    local chain = Daemons.of{ effects = fx }
      :addHealthCheck('a', { ready = { display = 'A', fn = a_fn,
        trigger = trigger.cooldownTrigger(1000) }, requires = {} })
      :addDaemon('b', daemon('b', { fn = function()
        local guard <close> = setmetatable({}, { __close = function() -- luacheck: ignore 211
          closed = orch.now()
        end })
        orch.sleep(1000000) -- never returns on its own
        return { result = 'success' }
      end, trigger = trigger.cooldownTrigger(10) }, { 'a' }))
    H.run(function()
      chain:build()
      H.at(1500)
      a_state.result = 'failure'
      H.at(2500)
      assert.are.equal(2000, closed)
      assert.are.equal(2000, fake.procs('b')[1].t_exit)
      chain:term()
    end)
  end)
end)
