-- Group F of reference.md section 4: runUntilSuccess (fake clock). The timeout error omits the
-- sentinel and carries per-entry diagnostics (H15, PR #3596 style).
local H = require 'spec.support.helpers'

insulate('Daemons:runUntilSuccess (group F)', function()
  local fake, orch = H.fake()
  local Daemons = orch.Daemons
  local fx = H.fake_effects_per_test(fake) -- no fake process may outlive a test

  it('55: returns true once every entry is success at once, after the shutdown', function()
    fake.program('server', { listen = 8080, listen_after = 500, on_term = 200 })
    fake.program('bootstrap', { exit = 300, code = 0 })
    local chain = Daemons.of{ effects = fx }
      :addDaemon('server', { exec = { command = { 'server' } },
        ready = { display = 'Server', fn = H.port_probe(8080) }, requires = {} })
      :addOneshot('bootstrap', { exec = { command = { 'bootstrap' } }, requires = { 'server' } })
    local res, returned
    H.run(function()
      res = chain:runUntilSuccess(120000)
      returned = orch.now()
    end, 200000)
    assert.is_true(res)
    -- server ready at its first probe after the bind at 500: 553 (492 + 492 // 8); bootstrap
    -- runs 553..853; then term: server exits 200 ms after its SIGTERM
    assert.are.same({ 553 }, fake.spawn_times('bootstrap'))
    local server = fake.procs('server')[1]
    assert.are.same({ { sig = 'SIGTERM', t = 853 } }, server.signals)
    assert.are.equal(1053, server.t_exit)
    assert.are.equal(1053, returned)
  end)

  it('56: on timeout, term() and then raise "Timed out waiting for web,seed" with diagnostics',
    function()
      fake.program('web', { on_term = 1000 })
      local chain = Daemons.of{ effects = fx }
        :addDaemon('web', { exec = { command = { 'web' } }, ready = { display = 'Web',
          fn = function()
            return { result = 'failure', message = 'not listening' }
          end }, requires = {} })
        :addOneshot('seed', { exec = { command = { 'seed' } }, requires = { 'web' } })
      local ok, err, raised
      H.run(function()
        ok, err = pcall(chain.runUntilSuccess, chain, 3000)
        raised = orch.now()
      end, 100000)
      assert.is_false(ok)
      assert.are.equal('timeout', err.code)
      assert.are.same({ 'web', 'seed' }, err.ids)
      assert.are.equal(table.concat({
        'Timed out waiting for web,seed',
        '  web: failure "not listening"; last exit: none; restarts: 0',
        '  seed: waiting "Web"; last exit: none; restarts: 0',
      }, '\n'), tostring(err))
      assert.are.equal(3000, fake.procs('web')[1].signals[1].t)
      assert.are.equal(4000, raised) -- raised only after the teardown
    end)

  it('56: the diagnostics name the last exit and restart count of a crash-looping entry',
    function()
      fake.program('pg', { exit = 100, code = 3 })
      local chain = Daemons.of{ effects = fx }
        :addDaemon('pg', { exec = { command = { 'pg' } }, ready = { display = 'PG',
          fn = function()
            return { result = 'success' }
          end, trigger = orch.trigger.cooldownTrigger(60000) }, requires = {} })
      local ok, err
      H.run(function()
        ok, err = pcall(chain.runUntilSuccess, chain, 5000)
      end, 100000)
      assert.is_false(ok)
      -- spawns at 0 100 1200 3300: three exits before 5000, the fourth process still runs
      assert.matches('  pg: failure "pg daemon crashed"; last exit: pg exited with code 3; '
        .. 'restarts: 3', tostring(err), 1, true)
    end)

  it('57: with no timeout it waits for ever (until terminated from outside)', function()
    local chain = Daemons.of{ effects = fx }
      :addDaemon('never', { exec = { command = { 'never' } }, ready = { display = 'Never',
        fn = function()
          return { result = 'failure', message = 'no' }
        end }, requires = {} })
    for _, timeout in ipairs { false, 0 } do
      fake.reset()
      local c = timeout == 0 and Daemons.of{ effects = fx }:addDaemon('never', {
        exec = { command = { 'never' } }, ready = { display = 'Never', fn = function()
          return { result = 'failure', message = 'no' }
        end }, requires = {} }) or chain
      local ok, err, ended
      H.run(function()
        local t = orch.spawn(function()
          ok, err = pcall(c.runUntilSuccess, c, timeout or nil)
          ended = orch.now()
        end)
        H.at(600000) -- ten minutes: still waiting
        assert.is_nil(ended)
        c:term()
        t:wait()
      end, 700000)
      assert.is_false(ok)
      assert.are.equal('terminated', err.code)
      assert.are.equal('Terminated while waiting for never', tostring(err):match('^[^\n]+'))
      assert.are.equal(600000, ended)
    end
  end)

  it('58: a oneshot-only chain returns when the last oneshot exits 0', function()
    fake.program('migrate', { exit = 1000, code = 0 })
    fake.program('create-user', { exit = 1000, code = 0 })
    local chain = Daemons.of{ effects = fx }
      :addOneshot('migrate', { exec = { command = { 'migrate' } }, requires = {} })
      :addOneshot('create-user', { exec = { command = { 'create-user' } },
        requires = { 'migrate' } })
    local returned
    H.run(function()
      assert.is_true(chain:runUntilSuccess(nil))
      returned = orch.now()
    end)
    assert.are.same({ 1000 }, fake.spawn_times('create-user'))
    assert.are.equal(2000, returned)
  end)

  it('validates its argument and must run in a task', function()
    local chain = Daemons.of{ effects = fx }
    assert.has_error(function()
      chain:runUntilSuccess(-1)
    end, "bad argument #1 to 'runUntilSuccess' (non-negative integer ms or nil expected, got -1)")
    assert.has_error(function()
      chain:runUntilSuccess(10)
    end, 'orch: Daemons:runUntilSuccess() yields; call it from a task (orch.spawn)')
    H.run(function()
      assert.is_true(Daemons.of{ effects = fx }:runUntilSuccess(10)) -- empty chain
    end)
  end)
end)
