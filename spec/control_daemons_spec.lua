-- Operator control on a chain (what `orch stop|start|restart|signal` use), on the fake clock:
-- stopEntry stops an entry and what requires it, dependents first; startEntry lets it and its
-- stopped dependents start again; restartEntry bounces them, leaving stopped dependents alone.
local H = require 'spec.support.helpers'

insulate('Daemons operator control', function()
  local fake, orch = H.fake()
  local Daemons = orch.Daemons
  local sched = require 'orch.runtime.sched'
  local fx = H.fake_effects_per_test(fake) -- no fake process may outlive a test

  local function up()
    return { result = 'success', message = 'up' }
  end

  local function daemon(cmd, requires)
    return { exec = { command = { cmd } }, ready = { display = cmd:upper(), fn = up },
      requires = requires or {} }
  end

  -- db <- migrate (oneshot) <- web <- probe (health check); other stands alone.
  local function chain()
    fake.program('db', { on_term = 2000 })
    fake.program('migrate', { exit = 100, code = 0 })
    fake.program('web', { on_term = 1000 })
    fake.program('other', {})
    return Daemons.of{ effects = fx }
      :addDaemon('db', daemon('db'))
      :addOneshot('migrate', { exec = { command = { 'migrate' } }, requires = { 'db' } })
      :addDaemon('web', daemon('web', { 'migrate' }))
      :addHealthCheck('probe', { ready = { display = 'Probe', fn = up }, requires = { 'web' } })
      :addDaemon('other', daemon('other'))
  end

  local function result(id)
    local s = fx.state(id)
    return s and s.result, s and s.message
  end

  local function last_proc(name)
    local l = fake.procs(name)
    return l[#l]
  end

  local function term_time(p)
    for _, s in ipairs(p.signals) do
      if s.sig == 'SIGTERM' then
        return s.t
      end
    end
  end

  it('stopEntry stops the entry and its dependents, dependents first, and waits', function()
    local c = chain()
    H.run(function()
      c:build()
      H.at(1000)
      assert.are.equal('success', result('probe'))
      local ids = c:stopEntry('db')
      assert.are.same({ 'db', 'migrate', 'web', 'probe' }, ids)
      -- web got SIGTERM at once and took 1 s; db only then, and took 2 s
      assert.are.equal(1000, term_time(fake.procs('web')[1]))
      assert.are.equal(2000, fake.procs('web')[1].t_exit)
      assert.are.equal(2000, term_time(fake.procs('db')[1]))
      assert.are.equal(4000, fake.procs('db')[1].t_exit)
      assert.are.equal(4000, sched.now())
      for _, id in ipairs(ids) do
        assert.are.same({ 'disabled', 'stopped' }, { result(id) })
      end
      assert.are.same({ 'disabled', 'stopped' }, { fx.last('web').result, fx.last('web').message })
      assert.are.equal('success', result('other'))
      assert.is_true(fake.procs('other')[1].alive)
      H.at(10000)
      assert.are.equal(1, #fake.procs('db'), 'a stopped entry stays stopped')
      assert.are.equal(1, #fake.procs('web'))
      c:term()
    end, 60000)
  end)

  it('startEntry lets the entry and its stopped dependents start again', function()
    local c = chain()
    H.run(function()
      c:build()
      H.at(1000)
      c:stopEntry('db')
      local ids = c:startEntry('db')
      assert.are.same({ 'db', 'migrate', 'web', 'probe' }, ids)
      H.at(6000)
      assert.are.equal(2, #fake.procs('db'))
      assert.are.equal(2, #fake.procs('migrate'), 'the oneshot runs again')
      assert.are.equal(2, #fake.procs('web'))
      assert.is_true(last_proc('web').t0 >= last_proc('migrate').t_exit)
      assert.are.equal('success', result('probe'))
      assert.are.same({}, c:startEntry('db'), 'nothing left to start')
      c:term()
    end, 60000)
  end)

  it('a dependent started alone waits for its stopped requirement', function()
    local c = chain()
    H.run(function()
      c:build()
      H.at(1000)
      c:stopEntry('db')
      assert.are.same({ 'web', 'probe' }, c:startEntry('web'))
      H.at(8000)
      assert.are.equal('waiting', result('web'))
      assert.are.equal(1, #fake.procs('web'))
      assert.are.same({ 'disabled', 'stopped' }, { result('migrate') })
      assert.are.same({ 'db', 'migrate' }, c:startEntry('db'))
      H.at(12000)
      assert.are.equal(2, #fake.procs('web'))
      assert.are.equal('success', result('probe'))
      c:term()
    end, 60000)
  end)

  it('restartEntry bounces the entry and its running dependents, in order', function()
    local c = chain()
    H.run(function()
      c:build()
      H.at(1000)
      local t0 = sched.now()
      local ids = c:restartEntry('db')
      assert.are.same({ 'db', 'migrate', 'web', 'probe' }, ids)
      assert.are.equal(t0 + 3000, sched.now(), 'returns once the stop is done')
      assert.are.equal(t0, term_time(fake.procs('web')[1]))
      assert.are.equal(t0 + 1000, term_time(fake.procs('db')[1]))
      assert.are.same({ 'waiting', 'restarting' },
        { fx.of('db')[#fx.of('db') - 1].result, fx.of('db')[#fx.of('db') - 1].message })
      H.at(10000)
      assert.are.equal(2, #fake.procs('db'))
      assert.are.equal(2, #fake.procs('web'))
      assert.are.equal('success', result('probe'))
      assert.are.equal(1, #fake.procs('other'))
      c:term()
    end, 60000)
  end)

  it('restartEntry leaves stopped dependents stopped; on a stopped entry it is start', function()
    local c = chain()
    H.run(function()
      c:build()
      H.at(1000)
      c:stopEntry('web')
      assert.are.same({ 'db', 'migrate' }, c:restartEntry('db'))
      H.at(10000)
      assert.are.equal(2, #fake.procs('db'))
      assert.are.equal(1, #fake.procs('web'))
      assert.are.same({ 'disabled', 'stopped' }, { result('web') })
      assert.are.same({ 'disabled', 'stopped' }, { result('probe') })
      c:stopEntry('db')
      assert.are.same({ 'db', 'migrate', 'web', 'probe' }, c:restartEntry('db'))
      H.at(20000)
      assert.are.equal(3, #fake.procs('db'))
      assert.are.equal(2, #fake.procs('web'))
      assert.are.equal('success', result('probe'))
      c:term()
    end, 60000)
  end)

  it('serialises concurrent operations: a start issued during a stop runs after it', function()
    local c = chain()
    H.run(function()
      c:build()
      H.at(1000)
      local stopped
      sched.spawn(function()
        stopped = c:stopEntry('db')
      end)
      H.at(1500)
      local started = c:startEntry('db') -- waits for the stop (done at 4000)
      assert.are.equal(4000, sched.now())
      assert.is_not_nil(stopped)
      assert.are.same({ 'db', 'migrate', 'web', 'probe' }, started)
      H.at(10000)
      assert.are.equal('success', result('probe'))
      c:term()
    end, 60000)
  end)

  it('a stop in progress returns when the chain is terminated', function()
    local c = chain()
    H.run(function()
      c:build()
      H.at(1000)
      local done
      sched.spawn(function()
        c:stopEntry('db')
        done = sched.now()
      end)
      H.at(1200)
      c:term()
      H.at(1300)
      assert.is_not_nil(done)
      assert.has_error(function()
        c:stopEntry('db')
      end, 'orch: Daemons:stopEntry(): the chain is terminated')
    end, 60000)
  end)

  it('signalEntry signals the process group; a health check has none', function()
    local c = chain()
    local got = {}
    fake.program('db', function(p)
      p.on_signal = function(q, sig)
        got[#got + 1] = sig
        if sig == 'SIGTERM' then
          q:exit(0)
        end
      end
    end)
    H.run(function()
      c:build()
      H.at(1000)
      local pid = c:signalEntry('db', 'SIGHUP')
      assert.are.equal(fake.procs('db')[1].pid, pid)
      assert.are.same({ 'SIGHUP' }, got)
      local none, why = c:signalEntry('probe', 'SIGHUP')
      assert.is_nil(none)
      assert.are.equal('probe is a health check: it has no process', why)
      c:stopEntry('db')
      none, why = c:signalEntry('db', 'SIGHUP')
      assert.is_nil(none)
      assert.are.equal('db has no process running', why)
      assert.has_error(function()
        c:signalEntry('nope', 'SIGHUP')
      end, "bad argument #1 to 'signalEntry' (no entry 'nope' in a built chain)")
      c:term()
    end, 60000)
  end)
end)
