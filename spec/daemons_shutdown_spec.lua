-- Group E of reference.md section 4: shutdown (fake clock).
-- Adjusted per DECISIONS: the default SIGKILL timeout is 30000 ms (48); 50 and 53 use a
-- subcontainer provider object with a destroy() method (host mode has nothing to tear down).
local H = require 'spec.support.helpers'

insulate('Daemons:term (group E)', function()
  local fake, orch = H.fake()
  local Daemons, trigger = orch.Daemons, orch.trigger
  local fx = H.fake_effects_per_test(fake) -- no fake process may outlive a test

  local function ok_fn()
    return { result = 'success', message = 'ok' }
  end

  local function daemon(cmd, requires, exec_extra)
    local exec = { command = { cmd } }
    for k, v in pairs(exec_extra or {}) do
      exec[k] = v
    end
    return { exec = exec, ready = { display = cmd:upper(), fn = ok_fn }, requires = requires or {} }
  end

  local function sigterm_at(name)
    local p = fake.procs(name)[1]
    for _, s in ipairs(p.signals) do
      if s.sig == 'SIGTERM' then
        return s.t
      end
    end
  end

  -- Build, let everything become ready by 1000, then term() at T = 1000; returns T and the time
  -- term() returned.
  local function build_then_term(chain, after)
    local returned
    H.run(function()
      chain:build()
      H.at(1000)
      chain:term()
      returned = orch.now()
      if after then
        after()
      end
    end, 200000)
    return 1000, returned
  end

  it('45: reverse-dependency layers, each waiting for the previous one', function()
    for _, n in ipairs { 'a', 'b', 'c' } do
      fake.program(n, { on_term = 2000 })
    end
    local chain = Daemons.of{ effects = fx }
      :addDaemon('a', daemon('a'))
      :addDaemon('b', daemon('b', { 'a' }))
      :addDaemon('c', daemon('c', { 'b' }))
    local T, returned = build_then_term(chain)
    assert.are.same({ T, T + 2000, T + 4000 }, { sigterm_at('c'), sigterm_at('b'),
      sigterm_at('a') })
    assert.are.equal(T + 6000, returned)
  end)

  it('46: siblings stop in parallel and the next layer waits for the slowest', function()
    fake.program('a', { on_term = 200 })
    fake.program('b', { on_term = 1000 })
    fake.program('c', { on_term = 3000 })
    fake.program('e', { on_term = 50 })
    local chain = Daemons.of{ effects = fx }
      :addDaemon('a', daemon('a'))
      :addDaemon('b', daemon('b', { 'a' }))
      :addDaemon('c', daemon('c', { 'a' }))
      :addDaemon('e', daemon('e'))
    local T, returned = build_then_term(chain)
    assert.are.same({ T, T, T }, { sigterm_at('b'), sigterm_at('c'), sigterm_at('e') })
    assert.are.equal(T + 3000, sigterm_at('a'))
    assert.are.equal(T + 3200, returned)
  end)

  it('47: SIGKILL after sigtermTimeout; the unclean exit is logged, not raised', function()
    fake.program('stubborn', { on_term = 'ignore' })
    local chain = Daemons.of{ effects = fx }
      :addDaemon('x', daemon('stubborn', {}, { sigtermTimeout = 2000 }))
    local T, returned = build_then_term(chain)
    local p = fake.procs('stubborn')[1]
    assert.are.same({ { sig = 'SIGTERM', t = T }, { sig = 'SIGKILL', t = T + 2000 } }, p.signals)
    assert.are.equal(T + 2000, returned)
    assert.are.equal(1, #fx.logged('x: stubborn exited with signal SIGKILL on stop'))
    assert.are.same({ 'term', 'kill', 'exit' }, {
      fx.events('x', 'term')[1].event, fx.events('x', 'kill')[1].event,
      fx.events('x', 'exit')[1].event })
    assert.are.equal(T + 2000, fx.events('x', 'kill')[1].t)
  end)

  it('48: the default SIGKILL timeout is 30000 ms (DECISIONS)', function()
    fake.program('stubborn', { on_term = 'ignore' })
    local chain = Daemons.of{ effects = fx }:addDaemon('x', daemon('stubborn'))
    local T, returned = build_then_term(chain)
    assert.are.same({ { sig = 'SIGTERM', t = T }, { sig = 'SIGKILL', t = T + 30000 } },
      fake.procs('stubborn')[1].signals)
    assert.are.equal(T + 30000, returned)
  end)

  it('49: term() during a backoff returns at once and nothing is spawned afterwards', function()
    fake.program('crashy', { exit = 0, code = 1 })
    local chain = Daemons.of{ effects = fx }:addDaemon('crashy', daemon('crashy'))
    H.run(function()
      chain:build()
      H.at(15500) -- spawns at 0 0 1000 3000 6000 10000 15000; now in the 6000 ms backoff
      local t = orch.now()
      chain:term()
      assert.are.equal(t, orch.now())
      H.at(80000)
    end, 200000)
    assert.are.equal(7, #fake.procs('crashy'))
  end)

  it('50: term() of an entry that never started sends no signal; its subcontainer is destroyed',
    function()
      local destroyed = {}
      local sub = setmetatable({}, { __index = { destroy = function(self)
        destroyed[#destroyed + 1] = self
      end } })
      local chain = Daemons.of{ effects = fx }
        :addHealthCheck('a', { ready = { display = 'A', fn = function()
          return { result = 'failure', message = 'never' }
        end }, requires = {} })
        :addDaemon('b', { subcontainer = sub, exec = { command = { 'b' } },
          ready = { display = 'B', fn = ok_fn }, requires = { 'a' } })
      local _, returned = build_then_term(chain)
      assert.are.equal(0, #fake.procs('b'))
      assert.are.equal(1000, returned)
      assert.are.same({ sub }, destroyed)
      assert.are.equal(0, #fx.events('b'))
    end)

  it('51: term() is memoised: one SIGTERM per process, concurrent calls share the shutdown',
    function()
      fake.program('a', { on_term = 500 })
      fake.program('b', { on_term = 500 })
      local chain = Daemons.of{ effects = fx }
        :addDaemon('a', daemon('a'))
        :addDaemon('b', daemon('b', { 'a' }))
      local done = {}
      H.run(function()
        chain:build()
        H.at(1000)
        local t1 = orch.spawn(function()
          chain:term()
          done[#done + 1] = orch.now()
        end)
        local t2 = orch.spawn(function()
          chain:term()
          done[#done + 1] = orch.now()
        end)
        t1:wait()
        t2:wait()
        local t = orch.now()
        chain:term()
        assert.are.equal(t, orch.now()) -- a third call after completion returns at once
      end)
      assert.are.same({ 2000, 2000 }, done)
      assert.are.same({ { sig = 'SIGTERM', t = 1000 } }, fake.procs('b')[1].signals)
      assert.are.same({ { sig = 'SIGTERM', t = 1500 } }, fake.procs('a')[1].signals)
    end)

  it('52: nothing happens after term() returns, even if a dependency changed during shutdown',
    function()
      fake.program('a', { on_term = 2000 })
      local a_fn, a_state, a_calls = H.switch('success')
      local b_fn, _, b_calls = H.switch('success')
      local chain = Daemons.of{ effects = fx }
        :addDaemon('a', { exec = { command = { 'a' } }, ready = { display = 'A', fn = a_fn,
          trigger = trigger.cooldownTrigger(100) }, requires = {} })
        :addHealthCheck('b', { ready = { display = 'B', fn = b_fn,
          trigger = trigger.cooldownTrigger(100) }, requires = { 'a' } })
      local n_reports, n_a, n_b, n_spawn, n_states
      H.run(function()
        chain:build()
        H.at(1000)
        orch.spawn(function()
          -- during the shutdown (b already terminated, a still stopping): a flaps
          H.at(1250)
          a_state.result = 'failure'
          H.at(1450)
          a_state.result = 'success'
        end)
        chain:term()
        n_reports, n_a, n_b = #fx.reports, #a_calls, #b_calls
        n_spawn, n_states = #fake.procs(), #fx.states
        H.at(61000)
      end, 200000)
      assert.are.equal(n_reports, #fx.reports)
      assert.are.equal(n_a, #a_calls)
      assert.are.equal(n_b, #b_calls)
      assert.are.equal(n_spawn, #fake.procs())
      assert.are.equal(n_states, #fx.states)
      for _, r in ipairs(fx.of('b')) do
        assert.is_true(r.t <= 1000) -- b reported nothing once terminated
      end
    end)

  it('53: a shared subcontainer is destroyed once, after its last user exited', function()
    local log = {}
    local sub = setmetatable({}, { __index = { destroy = function()
      log[#log + 1] = { 'destroy', orch.now() }
    end } })
    fake.program('chown', { exit = 100, code = 0 })
    fake.program('app', { on_term = 700 })
    local chain = Daemons.of{ effects = fx }
      :addOneshot('chown', { subcontainer = sub, exec = { command = { 'chown' } }, requires = {} })
      :addDaemon('app', { subcontainer = sub, exec = { command = { 'app' } },
        ready = { display = 'App', fn = ok_fn }, requires = { 'chown' } })
    local T = build_then_term(chain)
    assert.are.equal(T + 700, fake.procs('app')[1].t_exit)
    assert.are.same({ { 'destroy', T + 700 } }, log)
  end)

  it('54: an unclean exit during shutdown is logged; term() resolves and later layers proceed',
    function()
      fake.program('b', { on_term = 100, term_code = 1 })
      fake.program('a', {})
      local chain = Daemons.of{ effects = fx }
        :addDaemon('a', daemon('a'))
        :addDaemon('b', daemon('b', { 'a' }))
      local T, returned = build_then_term(chain)
      assert.are.equal(1, #fx.logged('b: b exited with code 1 on stop'))
      assert.are.equal(T + 100, sigterm_at('a'))
      assert.are.equal(T + 100, returned)
    end)

  it('kill_all SIGKILLs every live group at once and nothing restarts', function()
    fake.program('a', { on_term = 'ignore' })
    fake.program('b', { on_term = 'ignore' })
    local chain = Daemons.of{ effects = fx }
      :addDaemon('a', daemon('a'))
      :addDaemon('b', daemon('b', { 'a' }))
    H.run(function()
      chain:build()
      H.at(1000)
      local term = orch.spawn(function()
        chain:term()
      end)
      H.at(1500)
      chain:kill_all()
      term:wait()
      assert.are.equal(1500, orch.now())
      H.at(60000)
    end, 100000)
    assert.are.same({ { sig = 'SIGTERM', t = 1000 }, { sig = 'SIGKILL', t = 1500 } },
      fake.procs('b')[1].signals)
    assert.are.same({ { sig = 'SIGKILL', t = 1500 } }, fake.procs('a')[1].signals)
    assert.are.equal(1, #fake.procs('a'))
  end)

  it('term() before build() does nothing; build() after term() is an error', function()
    local chain = Daemons.of{ effects = fx }:addDaemon('a', daemon('a'))
    H.run(function()
      chain:term()
    end)
    assert.has_error(function()
      chain:build()
    end, 'Daemons: build() after term()')
    assert.are.equal(0, #fake.procs())
  end)
end)
