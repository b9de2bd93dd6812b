-- Issue 14 on the fake clock: restart policy (exec.restart), limits (maxRestarts within
-- restartWindow), the backoff options, failed entries and the dependents they block.
local H = require 'spec.support.helpers'

insulate('restart policy, limits and blocked dependents (issue 14)', function()
  local fake, orch = H.fake()
  local Daemons = orch.Daemons
  local fx = H.fake_effects_per_test(fake)

  local function ok_fn()
    return { result = 'success', message = 'ok' }
  end

  -- A visible daemon running `cmd` with the extra exec options `opts`.
  local function daemon(cmd, opts, requires)
    local exec = { command = { cmd } }
    for k, v in pairs(opts or {}) do
      exec[k] = v
    end
    return { exec = exec, ready = { display = cmd, fn = ok_fn },
      requires = requires or {} }
  end

  local function run(chain, until_ms)
    H.run(function()
      chain:build()
      H.at(until_ms)
      chain:term()
    end, until_ms + 100000)
  end

  local function last(id)
    local r = fx.last(id)
    return { r.result, r.message }
  end

  describe('exec.restart', function()
    it("'on-failure': a clean exit ends the daemon as success \"exited cleanly\"; a crash "
      .. 'restarts it', function()
        fake.program('job', { runs = { { exit = 100, code = 1 }, { exit = 500, code = 0 } } })
        local chain = Daemons.of{ effects = fx }
          :addDaemon('job', daemon('job', { restart = 'on-failure' }))
        run(chain, 60000)
        assert.are.same({ 0, 100 }, fake.spawn_times('job'))
        assert.are.same({ 'success', 'exited cleanly' }, last('job'))
        assert.are.equal(600, fx.last('job').t)
        assert.are.equal('success', chain:states()[1].result)
      end)

    it("'never': a crash ends the daemon as failed and it is not respawned", function()
      fake.program('c', { exit = 200, code = 3 })
      local chain = Daemons.of{ effects = fx }:addDaemon('c', daemon('c', { restart = 'never' }))
      run(chain, 60000)
      assert.are.same({ 0 }, fake.spawn_times('c'))
      assert.are.same({ 'failure', "exited and exec.restart is 'never': c exited with code 3" },
        last('c'))
      local s = chain:states()[1]
      assert.are.same({ "exited and exec.restart is 'never': c exited with code 3", 0 },
        { s.failed, s.restarts })
    end)

    it("'never': a clean exit is success \"exited cleanly\"", function()
      fake.program('c', { exit = 200, code = 0 })
      local chain = Daemons.of{ effects = fx }:addDaemon('c', daemon('c', { restart = 'never' }))
      run(chain, 5000)
      assert.are.same({ 0 }, fake.spawn_times('c'))
      assert.are.same({ 'success', 'exited cleanly' }, last('c'))
    end)

    it("default 'always': a clean exit is restarted (the seed's behaviour)", function()
      fake.program('c', { exit = 200, code = 0 })
      local chain = Daemons.of{ effects = fx }:addDaemon('c', daemon('c'))
      run(chain, 1500)
      assert.are.same({ 0, 200, 1400 }, fake.spawn_times('c'))
    end)
  end)

  describe('exec.maxRestarts', function()
    it('past N restarts the entry is failed, stays down and says why', function()
      fake.program('crashy', { exit = 0, code = 1 })
      local chain = Daemons.of{ effects = fx }
        :addDaemon('crashy', daemon('crashy', { maxRestarts = 3 }))
      run(chain, 60000)
      assert.are.same({ 0, 0, 1000, 3000 }, fake.spawn_times('crashy'))
      assert.are.same({ 'failure', 'gave up after 3 restarts in 3000 ms: crashy exited with '
        .. 'code 1' }, last('crashy'))
      assert.are.equal(3000, fx.last('crashy').t)
      assert.are.equal(3, chain:states()[1].restarts)
      local gave = fx.events('crashy', 'gave-up')
      assert.are.same({ 1, 3000 }, { #gave, gave[1].t })
    end)

    it('0: the first exit gives up', function()
      fake.program('c', { exit = 50, code = 1 })
      local chain = Daemons.of{ effects = fx }:addDaemon('c', daemon('c', { maxRestarts = 0 }))
      run(chain, 5000)
      assert.are.same({ 0 }, fake.spawn_times('c'))
      assert.are.same({ 'failure', 'gave up after 0 restarts in 0 ms: c exited with code 1' },
        last('c'))
    end)

    it('counts only the restarts within exec.restartWindow', function()
      -- exits every 1000 ms, restarted at once: 2 restarts in any 1500 ms never pass the limit,
      -- 2 in 2500 ms do at the third exit
      local flat = { initial = 0, step = 0 }
      fake.program('slow', { exit = 1000, code = 1 })
      fake.program('fast', { exit = 1000, code = 1 })
      local chain = Daemons.of{ effects = fx }
        :addDaemon('slow', daemon('slow', { maxRestarts = 2, restartWindow = 1500,
          backoff = flat }))
        :addDaemon('fast', daemon('fast', { maxRestarts = 2, restartWindow = 2500,
          backoff = flat }))
      run(chain, 10500)
      assert.are.equal(11, #fake.spawn_times('slow'))
      assert.are.same({ 0, 1000, 2000 }, fake.spawn_times('fast'))
      assert.are.same({ 'failure', 'gave up after 2 restarts in 2000 ms: fast exited with '
        .. 'code 1' }, last('fast'))
    end)

    it('a oneshot out of retries is failed; its dependents are blocked, transitively', function()
      fake.program('migrate', { exit = 0, code = 2 })
      fake.program('app', {})
      fake.program('web', {})
      local chain = Daemons.of{ effects = fx }
        :addOneshot('init', { exec = { command = { 'migrate' }, maxRestarts = 2 },
          requires = {} })
        :addDaemon('app', daemon('app', {}, { 'init' }))
        :addDaemon('web', daemon('web', {}, { 'app' }))
      run(chain, 60000)
      assert.are.same({ 0, 0, 1000 }, fake.spawn_times('migrate'))
      assert.are.same({ 'failure', 'gave up after 2 restarts in 1000 ms: migrate exited with '
        .. 'code 2' }, { fx.state('init').result, fx.state('init').message })
      assert.are.same({ 'disabled', 'blocked: init failed' }, last('app'))
      assert.are.same({ 'disabled', 'blocked: init failed (via app)' }, last('web'))
      assert.are.equal(1000, fx.last('web').t)
      assert.are.equal(0, #fake.procs('app'))
      local s = chain:states()
      assert.are.same({ 'init', 'init' }, { s[2].blocked, s[3].blocked })
    end)

    it('effects.onState carries failed and blocked (what orch status shows)', function()
      fake.program('db', { exit = 0, code = 1 })
      local seen = {}
      local effects = setmetatable({ onState = function(st)
        seen[#seen + 1] = { st.id, st.result, st.failed or false, st.blocked or false }
        fx.onState(st)
      end }, { __index = fx })
      local chain = Daemons.of{ effects = effects }
        :addDaemon('db', daemon('db', { maxRestarts = 0 }))
        :addDaemon('app', daemon('app', {}, { 'db' }))
      run(chain, 1000)
      assert.are.same({ 'db', 'failure', true, false }, seen[#seen - 1])
      assert.are.same({ 'app', 'disabled', false, 'db' }, seen[#seen])
    end)

    it('a running dependent is stopped and blocked when its requirement gives up', function()
      fake.program('db', { runs = { { exit = 2000, code = 1 }, { exit = 0, code = 1 } } })
      fake.program('app', {})
      local chain = Daemons.of{ effects = fx }
        :addDaemon('db', daemon('db', { maxRestarts = 1 }))
        :addDaemon('app', daemon('app', {}, { 'db' }))
      run(chain, 10000)
      assert.are.same({ 0, 2000 }, fake.spawn_times('db'))
      assert.are.same({ { sig = 'SIGTERM', t = 2000 } }, fake.procs('app')[1].signals)
      assert.are.same({ 'disabled', 'blocked: db failed' }, last('app'))
      assert.are.equal(1, #fake.procs('app'))
    end)

    it('orch restart <id> (restartEntry) clears the failure and the count; dependents start',
      function()
        fake.program('db', { runs = { { exit = 0, code = 1 }, { exit = 0, code = 1 }, {} } })
        fake.program('app', {})
        local chain = Daemons.of{ effects = fx }
          :addDaemon('db', daemon('db', { maxRestarts = 1 }))
          :addDaemon('app', daemon('app', {}, { 'db' }))
        H.run(function()
          chain:build()
          H.at(5000)
          assert.are.same({ 'disabled', 'blocked: db failed' }, last('app'))
          chain:restartEntry('db')
          H.at(6000)
          chain:term()
        end, 100000)
        assert.are.same({ 0, 0, 5000 }, fake.spawn_times('db'))
        assert.are.equal(1, #fake.procs('app'))
        assert.are.same({ 'success', 'ok' }, last('db'))
        assert.are.same({ 'success', 'ok' }, last('app'))
        assert.is_nil(chain:states()[1].failed)
      end)
  end)

  describe('exec.backoff', function()
    it('factor 2 from initial 1000, capped at max', function()
      fake.program('c', { exit = 0, code = 1 })
      local chain = Daemons.of{ effects = fx }:addDaemon('c', daemon('c', {
        backoff = { initial = 1000, step = 0, factor = 2, max = 8000 } }))
      run(chain, 31500)
      assert.are.same({ 0, 1000, 3000, 7000, 15000, 23000, 31000 }, fake.spawn_times('c'))
    end)

    it('resetAfter: an incarnation up that long resets the delay to initial', function()
      fake.program('c', { runs = { { exit = 0, code = 1 }, { exit = 0, code = 1 },
        { exit = 5000, code = 1 }, { exit = 0, code = 1 }, {} } })
      local chain = Daemons.of{ effects = fx }:addDaemon('c', daemon('c', {
        backoff = { initial = 500, step = 500, resetAfter = 5000 } }))
      run(chain, 20000)
      -- 500, 1000 ms; up 5000 ms; reset: 500 again, then 1000
      assert.are.same({ 0, 500, 1500, 7000, 8000 }, fake.spawn_times('c'))
    end)
  end)

  it('orch check shows the policy per entry', function()
    local chain = Daemons.of{ effects = fx }
      :addOneshot('init', { exec = { command = 'x', maxRestarts = 5 }, requires = {} })
      :addDaemon('web', { exec = { command = 'y', restart = 'on-failure', maxRestarts = 3,
        restartWindow = 60000, backoff = { initial = 1000, step = 0, factor = 2 } },
        requires = {} })
      :addDaemon('plain', { exec = { command = 'z' }, requires = {} })
    local e = chain:entries()
    assert.are.same({ 'on-failure, max 5', 'on-failure, max 3 in 60000 ms, backoff initial=1000 '
      .. 'step=0 factor=2', 'always' }, { e[1].restart, e[2].restart, e[3].restart })
    local text = require('orch.cli.check').format_entries(e)
    assert.matches('\nweb%s+daemon%s+%-%s+when running%s+on%-failure, max 3 in 60000 ms, '
      .. 'backoff initial=1000 step=0 factor=2%s+y\n', text)
  end)

  describe('liveness: ready.restartAfter', function()
    -- a daemon whose check fails from 10 s on (probes every second after its first success)
    local function sick_daemon(extra, exec_extra)
      local t_sick = 10000
      local ready = { display = 'Web', trigger = orch.trigger.cooldownTrigger(1000),
        gracePeriod = 2000, fn = function()
          if require('orch.runtime.sched').now() >= t_sick then
            return { result = 'failure', message = 'no answer' }
          end
          return { result = 'success' }
        end }
      for k, v in pairs(extra) do
        ready[k] = v
      end
      local exec = { command = { 'web' } }
      for k, v in pairs(exec_extra or {}) do
        exec[k] = v
      end
      return { exec = exec, ready = ready, requires = {} }, function(t)
        t_sick = t
      end
    end

    it('N failures in a row restart the daemon: TERM, then the backoff path', function()
      fake.program('web', {})
      local opts, sick_at = sick_daemon({ restartAfter = 3 })
      local chain = Daemons.of{ effects = fx }:addDaemon('web', opts)
      H.run(function()
        chain:build()
        H.at(12500)
        sick_at(math.huge) -- healthy again once restarted
        H.at(15000)
        chain:term()
      end, 100000)
      -- probes every 1000 ms: failures at 10000, 11000, 12000 -> restart at 12000
      sick_at(nil)
      local procs = fake.procs('web')
      assert.are.same({ 0, 12000 }, fake.spawn_times('web'))
      assert.are.same({ sig = 'SIGTERM', t = 12000 }, procs[1].signals[1])
      local r = fx.events('web', 'restart')
      assert.are.same({ 1, 12000, 'restarting: check failed 3 times: no answer' },
        { #r, r[1].t, r[1].message })
      assert.are.equal(1, chain:states()[1].restarts)
    end)

    it('a process that ignores SIGTERM is SIGKILLed after sigtermTimeout', function()
      fake.program('web', { runs = { { on_term = 'ignore' }, {} } })
      local opts = sick_daemon({ restartAfter = 2 }, { sigtermTimeout = 4000 })
      local chain = Daemons.of{ effects = fx }:addDaemon('web', opts)
      run(chain, 20000)
      -- failures at 10000, 11000: TERM at 11000 (the failures meanwhile do not TERM it
      -- again), KILL at 15000, respawned at once
      local p = fake.procs('web')[1]
      assert.are.same({ { sig = 'SIGTERM', t = 11000 }, { sig = 'SIGKILL', t = 15000 } },
        p.signals)
      assert.are.equal(15000, fake.spawn_times('web')[2])
    end)

    it('failures within the grace period of an incarnation do not count', function()
      fake.program('web', {})
      local opts = sick_daemon({ restartAfter = 2, gracePeriod = 30000 })
      local chain = Daemons.of{ effects = fx }:addDaemon('web', opts)
      run(chain, 31500)
      -- failures from 10000 on; they count from 30001: 31000 is the first, no restart yet
      assert.are.same({ 0 }, fake.spawn_times('web'))
    end)

    it('counts toward maxRestarts: the entry gives up', function()
      fake.program('web', {})
      local opts = sick_daemon({ restartAfter = 1, gracePeriod = 0 }, { maxRestarts = 1 })
      local chain = Daemons.of{ effects = fx }:addDaemon('web', opts)
      run(chain, 30000)
      assert.are.equal(2, #fake.spawn_times('web'))
      assert.matches('^gave up after 1 restarts in %d+ ms: check failed 1 times: no answer$',
        chain:states()[1].failed)
    end)

    it('without restartAfter a failing check never restarts (the default)', function()
      fake.program('web', {})
      local opts = sick_daemon({})
      local chain = Daemons.of{ effects = fx }:addDaemon('web', opts)
      run(chain, 30000)
      assert.are.same({ 0 }, fake.spawn_times('web'))
    end)
  end)

  describe('ready.failureThreshold and successThreshold', function()
    it('the result changes only after N equal raw results in a row', function()
      local seq = { 'success', 'failure', 'success', 'failure', 'failure', 'failure',
        'success', 'success', 'failure', 'success', 'success' }
      local i = 0
      local chain = Daemons.of{ effects = fx }:addHealthCheck('c', { requires = {}, ready = {
        display = 'C', trigger = orch.trigger.cooldownTrigger(1000), gracePeriod = 0,
        failureThreshold = 3, successThreshold = 2,
        fn = function()
          i = i + 1
          return { result = seq[i] or 'success', message = tostring(i) }
        end } })
      run(chain, 10500)
      local changes, last_result = {}, nil
      for _, r in ipairs(fx.of('c')) do
        if r.result ~= last_result then
          changes[#changes + 1] = r.result .. '@' .. r.t
          last_result = r.result
        end
      end
      -- probe k at k * 1000 ms; raw s f s f f f s s f s: no 2 successes in a row before the
      -- failures 4, 5, 6 (failure at 6000), then 7, 8 (success at 8000); 9 alone changes nothing
      assert.are.same({ 'starting@0', 'failure@6000', 'success@8000' }, changes)
    end)

    it('validation names the entry and the field', function()
      local function err(ready, kind)
        ready.display, ready.fn = 'X', ok_fn
        local ok, e = pcall(function()
          if kind == 'health' then
            return Daemons.of{}:addHealthCheck('x', { ready = ready, requires = {} })
          end
          return Daemons.of{}:addDaemon('x', { exec = { command = 'y' }, ready = ready,
            requires = {} })
        end)
        assert.is_false(ok)
        return (tostring(e):gsub('^[^:]*:%d+: ', ''))
      end
      assert.are.equal("Daemons: entry 'x': ready.restartAfter must be an integer from 1 to "
        .. '1000000, got 0', err({ restartAfter = 0 }))
      assert.are.equal("Daemons: entry 'x': ready.failureThreshold must be an integer from 1 "
        .. "to 1000000, got '3'", err({ failureThreshold = '3' }))
      assert.are.equal("Daemons: entry 'x': unknown option ready.sucessThreshold (did you "
        .. 'mean successThreshold?)', err({ sucessThreshold = 2 }))
      assert.are.equal("Daemons: entry 'x': ready.restartAfter restarts a daemon whose check "
        .. 'fails; a health check has no process (use addDaemon)',
        err({ restartAfter = 2 }, 'health'))
    end)
  end)

  describe('per-edge reactions: requires = {db = {onUnhealthy, after}}', function()
    -- db (a check probed every second) is healthy, unhealthy over [down, up), healthy again;
    -- app requires it with `edge`
    local function outage(edge, down, up, until_ms)
      local db_fn, db_state = H.switch('success')
      fake.program('app', {})
      local chain = Daemons.of{ effects = fx }
        :addHealthCheck('db', { ready = { display = 'DB', fn = db_fn,
          trigger = orch.trigger.cooldownTrigger(1000) }, requires = {} })
        :addDaemon('app', daemon('app', {}, { db = edge }))
      H.run(function()
        chain:build()
        H.at(down)
        db_state.result = 'failure'
        H.at(up)
        db_state.result = 'success'
        H.at(until_ms or 12000)
        chain:term()
      end, 100000)
      return fake.procs('app'), chain
    end

    it("'ignore' keeps the dependent running while the requirement is unhealthy", function()
      local procs = outage({ onUnhealthy = 'ignore' }, 2500, 5500)
      assert.are.same({ 1000 }, fake.spawn_times('app'))
      assert.are.same({ { sig = 'SIGTERM', t = 12000 } }, procs[1].signals) -- the final term
    end)

    it("'restart' keeps it running, then restarts it when the requirement is back", function()
      local procs = outage({ onUnhealthy = 'restart' }, 2500, 5500)
      -- db: failure seen at 3000, success at 6000: app TERMed at 6000, started again at once
      assert.are.same({ 1000, 6000 }, fake.spawn_times('app'))
      assert.are.same({ sig = 'SIGTERM', t = 6000 }, procs[1].signals[1])
    end)

    it("'stop' with after: an outage shorter than after changes nothing", function()
      local procs = outage({ after = 2500 }, 2500, 4500)
      assert.are.same({ 1000 }, fake.spawn_times('app'))
      assert.are.same({ { sig = 'SIGTERM', t = 12000 } }, procs[1].signals)
    end)

    it("'stop' with after: a longer one stops the dependent after that long", function()
      local procs = outage({ after = 2500 }, 2500, 7500)
      -- unhealthy from 3000: stopped at 5500, started again once db is back at 8000
      assert.are.same({ sig = 'SIGTERM', t = 5500 }, procs[1].signals[1])
      assert.are.same({ 1000, 8000 }, fake.spawn_times('app'))
      assert.are.same({ 'success', 'ok' }, last('app'))
    end)

    it("'restart' with after: an outage shorter than after does not restart it", function()
      outage({ onUnhealthy = 'restart', after = 5000 }, 2500, 5500)
      assert.are.same({ 1000 }, fake.spawn_times('app'))
    end)

    it("'restart' with after: an outage of at least after does", function()
      outage({ onUnhealthy = 'restart', after = 2000 }, 2500, 5500)
      assert.are.same({ 1000, 6000 }, fake.spawn_times('app'))
    end)

    it("'ignore' still waits for the requirement at start", function()
      local db_fn, db_state = H.switch('failure')
      fake.program('app', {})
      local chain = Daemons.of{ effects = fx }
        :addHealthCheck('db', { ready = { display = 'DB', fn = db_fn,
          trigger = orch.trigger.cooldownTrigger(1000) }, requires = {} })
        :addDaemon('app', daemon('app', {}, { db = { onUnhealthy = 'ignore' } }))
      H.run(function()
        chain:build()
        H.at(3500)
        db_state.result = 'success'
        H.at(6000)
        chain:term()
      end, 100000)
      assert.are.same({ 4000 }, fake.spawn_times('app'))
    end)

    it('the list and the table forms mix; the mapped ids come after the listed ones',
      function()
        local chain = Daemons.of{ effects = fx }
          :addDaemon('a', daemon('a'))
          :addDaemon('b', daemon('b'))
          :addDaemon('c', daemon('c', {}, { 'b', a = { onUnhealthy = 'ignore' } }))
        assert.are.same({ 'b', 'a' }, chain:entries()[3].requires)
        local text = require('orch.cli.check').format_entries(chain:entries())
        assert.matches('\nc%s+daemon%s+b, a %(ignore%)%s+c%s+always', text)
      end)

    it('validation names the entry and the field', function()
      local function err(req)
        local ok, e = pcall(function()
          return Daemons.of{ effects = fx }:addDaemon('db', daemon('db'))
            :addDaemon('x', daemon('x', {}, req))
        end)
        assert.is_false(ok)
        return (tostring(e):gsub('^[^:]*:%d+: ', ''))
      end
      assert.are.equal("Daemons: entry 'x': requires.db.onUnhealthy must be 'stop', 'ignore' "
        .. "or 'restart', got 'restrt' (did you mean restart?)",
        err({ db = { onUnhealthy = 'restrt' } }))
      assert.are.equal("Daemons: entry 'x': unknown option requires.db.aftr (did you mean "
        .. 'after?)', err({ db = { aftr = 100 } }))
      assert.are.equal("Daemons: entry 'x': requires.db.after must be a non-negative integer "
        .. '(ms), got -1', err({ db = { after = -1 } }))
      assert.are.equal("Daemons: entry 'x': requires.db must be a table {onUnhealthy = ..., "
        .. 'after = ms}, got boolean', err({ db = true }))
      assert.are.equal("Daemons: entry 'x' requires 'web', which must be declared earlier",
        err({ web = {} }))
      local validate = require 'orch.graph.validate'
      local _, e = validate.check(validate.entry, 'daemon', { 'db' }, 'x', { requires = {
        db = { onUnhealthy = 1 } }, exec = { command = 'y' } })
      assert.are.same({ 'x', 'requires.db.onUnhealthy' }, { e.id, e.field })
    end)
  end)

  describe('runUntilSuccess', function()
    it('fails at once when an entry is failed, naming the chain of causes', function()
      fake.program('db', { exit = 0, code = 1 })
      fake.program('app', {})
      local chain = Daemons.of{ effects = fx }
        :addDaemon('db', daemon('db', { maxRestarts = 1 }))
        :addDaemon('app', daemon('app', {}, { 'db' }))
      local err, at
      H.run(function()
        local ok
        ok, err = pcall(chain.runUntilSuccess, chain, 600000)
        assert.is_false(ok)
        at = require('orch.runtime.sched').now()
      end, 700000)
      assert.are.equal('failed', err.code)
      assert.is_true(at < 2000, 'failed at ' .. tostring(at))
      assert.are.equal('Will never be ready (db failed: gave up after 1 restarts in 0 ms: db '
        .. 'exited with code 1; blocked: app): db,app', tostring(err):match('^[^\n]*'))
      assert.matches('app: disabled "blocked: db failed"', tostring(err), 1, true)
    end)
  end)

  describe('validation', function()
    local function err_of(kind, exec)
      local ok, e = pcall(function()
        local chain = Daemons.of{ effects = fx }
        if kind == 'oneshot' then
          return chain:addOneshot('x', { exec = exec, requires = {} })
        end
        return chain:addDaemon('x', { exec = exec, requires = {} })
      end)
      assert.is_false(ok)
      return (tostring(e):gsub('^[^:]*:%d+: ', ''))
    end
    local cmd = { 'true' }
    local function with(t)
      t.command = cmd
      return t
    end

    it('names the entry, the field and the nearest valid value or key', function()
      local cases = {
        { { restart = 'on-falure' }, "Daemons: entry 'x': exec.restart must be 'always', "
          .. "'on-failure' or 'never', got 'on-falure' (did you mean on-failure?)" },
        { { restart = true }, "Daemons: entry 'x': exec.restart must be 'always', "
          .. "'on-failure' or 'never', got true" },
        { { maxRestarts = -1 }, "Daemons: entry 'x': exec.maxRestarts must be an integer from "
          .. '0 to 1000000, got -1' },
        { { maxRestarts = 1.5 }, "Daemons: entry 'x': exec.maxRestarts must be an integer from "
          .. '0 to 1000000, got 1.5' },
        { { restartWindow = 1000 }, "Daemons: entry 'x': exec.restartWindow needs "
          .. 'exec.maxRestarts' },
        { { maxRestarts = 1, restartWindow = 0 }, "Daemons: entry 'x': exec.restartWindow must "
          .. 'be more than 0 ms (leave it out to count every restart)' },
        { { maxRestarts = 1, restartWindow = 'x' }, "Daemons: entry 'x': exec.restartWindow "
          .. 'must be a non-negative integer (ms), got string' },
        { { backoff = 5 }, "Daemons: entry 'x': exec.backoff must be a table {initial, step, "
          .. 'factor, max, resetAfter}, got number' },
        { { backoff = { factr = 2 } }, "Daemons: entry 'x': unknown option exec.backoff.factr "
          .. '(did you mean factor?)' },
        { { backoff = { factor = 0.5 } }, "Daemons: entry 'x': exec.backoff.factor must be a "
          .. 'number from 1 to 100, got 0.5' },
        { { backoff = { step = -1 } }, "Daemons: entry 'x': exec.backoff.step must be a "
          .. 'non-negative integer (ms), got -1' },
        { { backoff = { initial = 5000, max = 1000 } }, "Daemons: entry 'x': "
          .. 'exec.backoff.initial (5000 ms) must not exceed exec.backoff.max (1000 ms)' },
        { { maxRestart = 3 }, "Daemons: entry 'x': unknown option exec.maxRestart (did you "
          .. 'mean maxRestarts?)' },
      }
      for _, c in ipairs(cases) do
        assert.are.equal(c[2], err_of('daemon', with(c[1])))
      end
      assert.are.equal("Daemons: entry 'x': exec.restart = 'always' is not for a oneshot (it is "
        .. "done after its first clean exit); use 'on-failure' (the default) or 'never'",
        err_of('oneshot', with({ restart = 'always' })))
    end)

    it('the errors carry the field for the locator', function()
      local validate = require 'orch.graph.validate'
      local _, err = validate.check(validate.entry, 'daemon', {}, 'web', { requires = {},
        exec = { command = 'x', backoff = { factor = 0 } } })
      assert.are.same({ 'web', 'exec.backoff.factor' }, { err.id, err.field })
    end)

    it('exec.fn may carry the policy; what it returns may not', function()
      fake.program('c', { exit = 0, code = 1 })
      local chain = Daemons.of{ effects = fx }:addDaemon('c', { requires = {},
        exec = { fn = function()
          return { command = { 'c' }, maxRestarts = 1 }
        end, maxRestarts = 0 } })
      run(chain, 3000)
      assert.are.equal(0, #fake.procs('c'))
      assert.matches("exec.maxRestarts belongs in the entry's exec", chain:states()[1].failed,
        1, true)
    end)
  end)
end)
