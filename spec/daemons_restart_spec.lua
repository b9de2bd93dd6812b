-- Group D of reference.md section 4: crashes, restarts and dependencies (fake clock).
-- Adjusted per DECISIONS: backoff resets after 30 s of uptime (37), default gracePeriod 5000,
-- oneshot failures visible through effects.onState (42), 44 reinterpreted for host mode.
local H = require 'spec.support.helpers'

insulate('Daemons restarts and dependencies (group D)', function()
  local fake, orch = H.fake()
  local Daemons, trigger = orch.Daemons, orch.trigger
  local fx = H.fake_effects_per_test(fake) -- no fake process may outlive a test

  local function ok_fn()
    return { result = 'success', message = 'ok' }
  end

  local function daemon(cmd, display, fn, requires, extra)
    local ready = { display = display, fn = fn or ok_fn }
    for k, v in pairs(extra or {}) do
      ready[k] = v
    end
    return { exec = { command = { cmd } }, ready = ready, requires = requires or {} }
  end

  local function gaps(times)
    local out = {}
    for i = 2, #times do
      out[#out + 1] = times[i] - times[i - 1]
    end
    return out
  end

  local function run(chain, until_ms)
    H.run(function()
      chain:build()
      H.at(until_ms)
      chain:term()
    end, until_ms + 100000)
  end

  local function reports_with(id, msg)
    local out = {}
    for _, r in ipairs(fx.of(id)) do
      if r.message == msg then
        out[#out + 1] = r
      end
    end
    return out
  end

  it('35: crash backoff schedule 0, 1, 2, 3, 4 s', function()
    fake.program('crashy', { exit = 0, code = 1 })
    local chain = Daemons.of{ effects = fx }:addDaemon('crashy', daemon('crashy', 'Crashy'))
    run(chain, 10500)
    assert.are.same({ 0, 0, 1000, 3000, 6000, 10000 }, fake.spawn_times('crashy'))
    local crashes = reports_with('crashy', 'crashy daemon crashed')
    assert.are.same({ 0, 0, 1000, 3000, 6000, 10000 }, H.times(crashes))
    for _, r in ipairs(crashes) do
      assert.are.equal(r.t <= 5000 and 'starting' or 'failure', r.result)
    end
    assert.are.equal(5, chain:states()[1].restarts)
  end)

  it('36: a daemon exiting 0 is reported as exited and restarted with the same backoff',
    function()
      fake.program('quitter', { exit = 1000, code = 0 })
      local chain = Daemons.of{ effects = fx }:addDaemon('quitter', daemon('quitter', 'Q', nil,
        nil, { trigger = trigger.cooldownTrigger(100000) }))
      run(chain, 12000)
      assert.are.same({ 0, 1000, 3000, 6000, 10000 }, fake.spawn_times('quitter'))
      assert.are.same({ 1000, 2000, 4000, 7000, 11000 },
        H.times(reports_with('quitter', 'quitter daemon exited')))
      assert.are.equal(0, #reports_with('quitter', 'quitter daemon crashed'))
    end)

  it('37: the backoff is capped at 30 s, and resets after an incarnation stayed up 30 s',
    function()
      local runs = {}
      for i = 1, 40 do
        runs[i] = { exit = 0, code = 1 }
      end
      runs[41] = { exit = 3600 * 1000, code = 1 } -- healthy for an hour, then crashes
      runs[42] = { exit = 0, code = 1 }
      runs[43] = { exit = 0, code = 1 }
      runs[44] = {}
      fake.program('c', { runs = runs })
      local chain = Daemons.of{ effects = fx }:addDaemon('c', daemon('c', 'C', nil, nil,
        { trigger = trigger.cooldownTrigger(10 * 3600 * 1000) }))
      H.run(function()
        chain:build()
        H.wait_until(function()
          return #fake.procs('c') == 44
        end, 5 * 3600 * 1000, 1000)
        chain:term()
      end, 6 * 3600 * 1000)
      local g = gaps(fake.spawn_times('c'))
      for k = 1, 39 do
        assert.are.equal(math.min(1000 * (k - 1), 30000), g[k], 'delay after exit ' .. k)
      end
      assert.are.equal(30000, g[31])
      assert.are.equal(30000, g[39])
      assert.are.equal(30000, g[40] - 0) -- before the long run: still capped
      assert.are.equal(3600 * 1000, g[41]) -- the long run itself, then the reset:
      assert.are.equal(1000, g[42]) -- 0 after the long run, then +1000
      assert.are.equal(2000, g[43])
    end)

  it('38: exit 143 and death by SIGTERM are clean; other signals are crashes', function()
    fake.program('d143', { runs = { { exit = 100, code = 143 }, {} } })
    fake.program('dterm', { runs = { { exit = 100, signal = 'SIGTERM' }, {} } })
    fake.program('dsegv', { runs = { { exit = 100, signal = 'SIGSEGV' }, {} } })
    fake.program('o143', { exit = 100, code = 143 })
    local cool = { trigger = trigger.cooldownTrigger(100000) }
    local chain = Daemons.of{ effects = fx }
      :addDaemon('d143', daemon('d143', 'D', nil, nil, cool))
      :addDaemon('dterm', daemon('dterm', 'D', nil, nil, cool))
      :addDaemon('dsegv', daemon('dsegv', 'D', nil, nil, cool))
      :addOneshot('o143', { exec = { command = { 'o143' } }, requires = {} })
    run(chain, 500)
    assert.are.equal(1, #reports_with('d143', 'd143 daemon exited'))
    assert.are.equal(1, #reports_with('dterm', 'dterm daemon exited'))
    assert.are.equal(1, #reports_with('dsegv', 'dsegv daemon crashed'))
    assert.are.equal('success', fx.state('o143').result)
    assert.are.equal(1, #fake.procs('o143'))
    local exit = fx.events('dsegv', 'exit')[1]
    assert.are.same({ 'SIGSEGV', 'dsegv exited with signal SIGSEGV', false },
      { exit.signal, exit.message, exit.clean })
  end)

  it('39: a dependency crash stops its dependents at once; they restart from scratch after its '
    .. 'next successful probe', function()
      fake.program('a', { runs = { { listen = 8080, exit = 20000, code = 1 }, { listen = 8080 } } })
      fake.program('b', {})
      local chain = Daemons.of{ effects = fx }
        :addDaemon('a', daemon('a', 'A', H.port_probe(8080)))
        :addDaemon('b', daemon('b', 'B', nil, { 'a' }))
      run(chain, 32000)
      local a, b = fake.procs('a'), fake.procs('b')
      assert.are.equal(5, b[1].t0) -- a ready at its first probe, 5 ms after the start
      -- at 20000: a crashes; the same instant a reports failure, b waiting "A", b gets SIGTERM
      local crash = reports_with('a', 'a daemon crashed')[1]
      assert.are.same({ 20000, 'failure' }, { crash.t, crash.result })
      local waiting
      for _, r in ipairs(fx.of('b')) do
        if r.result == 'waiting' and r.t >= 20000 then
          waiting = waiting or r
        end
      end
      assert.are.same({ 20000, 'A' }, { waiting.t, waiting.message })
      assert.are.same({ { sig = 'SIGTERM', t = 20000 } }, b[1].signals)
      assert.are.equal(20000, a[2].t0) -- respawned after 0 ms
      -- a's next probe is the 30 s one chosen after its success at 5: 30005
      assert.are.equal(30005, b[2].t0)
      assert.are_not.equal(b[1].pid, b[2].pid)
      local restarted = fx.of('b')
      local last = restarted[#restarted]
      assert.are.equal('success', last.result)
      assert.are.equal(30010, last.t) -- new session, default trigger fast again: 5 ms later
    end)

  it('40: loading after success stops the dependents', function()
    local a_fn, a_state = H.switch('success')
    fake.program('b', {})
    local chain = Daemons.of{ effects = fx }
      :addHealthCheck('a', { ready = { display = 'A', fn = a_fn,
        trigger = trigger.cooldownTrigger(1000) }, requires = {} })
      :addDaemon('b', daemon('b', 'B', nil, { 'a' }))
    H.run(function()
      chain:build()
      H.at(2500)
      a_state.result = 'loading'
      H.at(3500)
      assert.are.same({ 'waiting', 'A' }, { fx.last('b').result, fx.last('b').message })
      assert.are.same({ { sig = 'SIGTERM', t = 3000 } }, fake.procs('b')[1].signals)
      chain:term()
    end)
  end)

  it('41: the cascade: a failing stops b and c; c names its direct dependency', function()
    local a_fn, a_state = H.switch('success')
    local chain = Daemons.of{ effects = fx }
      :addDaemon('a', daemon('a', 'A', a_fn, {}, { trigger = trigger.cooldownTrigger(1000) }))
      :addDaemon('b', daemon('b', 'B', nil, { 'a' }))
      :addDaemon('c', daemon('c', 'C', nil, { 'b' }))
    H.run(function()
      chain:build()
      H.at(5500)
      a_state.result = 'failure'
      H.at(6500)
      chain:term()
    end)
    assert.are.same({ { sig = 'SIGTERM', t = 6000 } }, fake.procs('b')[1].signals)
    assert.are.same({ { sig = 'SIGTERM', t = 6000 } }, fake.procs('c')[1].signals)
    assert.are.same({ 'waiting', 'B' }, { fx.last('c').result, fx.last('c').message })
    assert.are.same({ 'waiting', 'A' }, { fx.last('b').result, fx.last('b').message })
  end)

  it('42: a failing oneshot is retried for ever with the backoff; visible only to onState and '
    .. 'onProcess', function()
      fake.program('migrate-db', { exit = 0, code = 2 })
      local chain = Daemons.of{ effects = fx }
        :addOneshot('init', { exec = { command = { 'migrate-db' } }, requires = {} })
        :addDaemon('app', daemon('app', 'App', nil, { 'init' }))
      run(chain, 16000)
      assert.are.same({ 0, 0, 1000, 3000, 6000, 10000, 15000 }, fake.spawn_times('migrate-db'))
      assert.are.equal(0, #fx.of('init')) -- never reported through setHealth
      for _, r in ipairs(fx.of('app')) do
        assert.are.same({ 'waiting' }, { r.result, r.message })
      end
      assert.are.same({ 'oneshot', 'failure', 'init exited with code 2', false }, {
        fx.state('init').kind, fx.state('init').result, fx.state('init').message,
        fx.state('init').visible })
      local exits = fx.events('init', 'exit')
      assert.are.equal(7, #exits)
      for _, e in ipairs(exits) do
        assert.are.same({ 2, 'migrate-db exited with code 2' }, { e.code, e.message })
      end
      assert.are.equal(0, #fake.procs('app'))
    end)

  it('42: without effects.onProcess each failure is logged with its exit status', function()
    fake.program('migrate-db', { exit = 0, code = 2 })
    local logs = {}
    local chain = Daemons.of{ effects = { setHealth = function() end, log = function(l, m)
      logs[#logs + 1] = l .. ': ' .. m
    end } }:addOneshot('init', { exec = { command = { 'migrate-db' } }, requires = {} })
    run(chain, 1500)
    assert.are.same({ 'warning: init: migrate-db exited with code 2',
      'warning: init: migrate-db exited with code 2',
      'warning: init: migrate-db exited with code 2' }, logs)
  end)

  it('43: a oneshot re-runs when its dependency recovers, and its dependents restart after it',
    function()
      local db_fn, db_state = H.switch('success')
      fake.program('migrate', { exit = 500, code = 0 })
      fake.program('app', {})
      local chain = Daemons.of{ effects = fx }
        :addHealthCheck('db', { ready = { display = 'DB', fn = db_fn,
          trigger = trigger.cooldownTrigger(1000) }, requires = {} })
        :addOneshot('migrate', { exec = { command = { 'migrate' } }, requires = { 'db' } })
        :addDaemon('app', daemon('app', 'App', nil, { 'migrate' }))
      H.run(function()
        chain:build()
        H.at(19500)
        db_state.result = 'failure'
        H.at(30500)
        db_state.result = 'success'
        H.at(33000)
        chain:term()
      end, 100000)
      assert.are.same({ 1000, 31000 }, fake.spawn_times('migrate'))
      assert.are.same({ 1500, 31500 }, fake.spawn_times('app'))
      assert.are.same({ { sig = 'SIGTERM', t = 20000 } }, fake.procs('app')[1].signals)
    end)

  it('44: a pause does not tear down the subcontainer; the entry restarts in the same one '
    .. '(host mode)', function()
      local destroyed = 0
      local sub = setmetatable({ workdir = '/srv', env = { ROLE = 'b' } }, { __index = {
        destroy = function()
          destroyed = destroyed + 1
        end,
      } })
      local seen = {}
      local a_fn, a_state = H.switch('success')
      local chain = Daemons.of{ effects = fx }
        :addHealthCheck('a', { ready = { display = 'A', fn = a_fn,
          trigger = trigger.cooldownTrigger(1000) }, requires = {} })
        :addDaemon('b', {
          subcontainer = sub,
          exec = { fn = function(s)
            seen[#seen + 1] = s
            return { command = { 'b' } }
          end },
          ready = { display = 'B', fn = ok_fn },
          requires = { 'a' },
        })
      H.run(function()
        chain:build()
        H.at(2500)
        a_state.result = 'failure'
        H.at(3500)
        a_state.result = 'success'
        H.at(4500)
        assert.are.equal(0, destroyed)
        chain:term()
      end)
      assert.are.equal(1, destroyed) -- once, at the chain's term()
      assert.are.same({ sub, sub }, seen)
      local b = fake.procs('b')
      assert.are.equal(2, #b)
      assert.are.same({ '/srv', '/srv' }, { b[1].opts.cwd, b[2].opts.cwd })
    end)

  it('spawn errors are reported as a crash with the OS reason and backed off', function()
    fake.program('nope', { spawn_error = { "spawn 'nope': no such file or directory",
      'ENOENT' } })
    local chain = Daemons.of{ effects = fx }:addDaemon('x', daemon('nope', 'X'))
    run(chain, 3500)
    assert.are.equal(4, fake.spawn_error_count()) -- at 0, 0, 1000, 3000
    local r = fx.last('x')
    assert.are.equal("x daemon crashed: spawn 'nope': no such file or directory", r.message)
    local errs = fx.events('x', 'spawn-error')
    assert.are.same({ 0, 0, 1000, 3000 }, H.times(errs))
    assert.are.equal('ENOENT', errs[1].code)
  end)

  it('a restart during a slow stop waits for the stop, then starts fresh (H3)', function()
    local a_fn, a_state = H.switch('success')
    fake.program('b', { on_term = 3000 })
    local chain = Daemons.of{ effects = fx }
      :addHealthCheck('a', { ready = { display = 'A', fn = a_fn,
        trigger = trigger.cooldownTrigger(100) }, requires = {} })
      :addDaemon('b', daemon('b', 'B', nil, { 'a' }))
    H.run(function()
      chain:build()
      H.at(1050)
      a_state.result = 'failure' -- probe at 1100: b stops (exits 3000 ms after SIGTERM)
      H.at(1250)
      a_state.result = 'success' -- probe at 1300: back while b is still stopping
      H.at(6000)
      local b = fake.procs('b')
      assert.are.equal(2, #b)
      assert.are.equal(4100, b[1].t_exit)
      assert.are.equal(4100, b[2].t0) -- started only after the stop completed
      assert.is_true(b[2].alive)
      chain:term()
    end)
  end)

  it('operator control: stopEntry, startEntry and restartEntry', function()
    fake.program('a', {})
    fake.program('b', {})
    local chain = Daemons.of{ effects = fx }
      :addDaemon('a', daemon('a', 'A'))
      :addDaemon('b', daemon('b', 'B', nil, { 'a' }))
    H.run(function()
      chain:build()
      H.at(1000)
      chain:stopEntry('a')
      H.at(2000)
      assert.are.same({ 'disabled', 'stopped' }, { fx.last('a').result, fx.last('a').message })
      assert.are.same({ 'disabled', 'stopped' }, { fx.last('b').result, fx.last('b').message })
      assert.is_false(fake.procs('a')[1].alive)
      assert.is_false(fake.procs('b')[1].alive)
      chain:startEntry('a')
      H.at(3000)
      assert.is_true(fake.procs('a')[2].alive)
      assert.is_true(fake.procs('b')[2].alive)
      chain:restartEntry('a')
      H.at(4000)
      assert.are.equal(3, #fake.procs('a'))
      assert.are.equal(3, #fake.procs('b'))
      assert.has_error(function()
        chain:stopEntry('zz')
      end, "bad argument #1 to 'stopEntry' (no entry 'zz' in a built chain)")
      chain:term()
    end)
  end)
end)
