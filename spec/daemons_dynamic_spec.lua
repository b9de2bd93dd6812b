-- Group H of reference.md section 4 (Daemons.dynamic) and the reconciler behind reloads, on the
-- fake clock: leave alone (65), changed hash with dependents (66), closures not hashed (67),
-- coalesced reruns (68), removal, addition, errors. 69 (eager subcontainer rejected) needs
-- subcontainers, which orch does not have yet.
local H = require 'spec.support.helpers'

insulate('Daemons.dynamic and the reconciler (group H)', function()
  local fake, orch = H.fake()
  local Daemons = orch.Daemons
  local config_hash = require 'orch.graph.config_hash'
  local reconcile = require 'orch.graph.reconcile'
  local fx = H.fake_effects_per_test(fake)

  local function ready_fn()
    return { result = 'success', message = 'ok' }
  end

  -- t1 <- t2 <- t3 (t3 requires t2 requires t1), u unrelated; `port` goes into t1's env.
  local function graph(port, extra)
    local c = Daemons.of{ effects = fx }
      :addDaemon('t1', { requires = {}, exec = { command = { 't1' }, env = { PORT = port } },
        ready = { display = 'T1', fn = ready_fn } })
      :addDaemon('t2', { exec = { command = { 't2' } }, requires = { 't1' },
        ready = { display = 'T2', fn = ready_fn } })
      :addDaemon('t3', { exec = { command = { 't3' } }, requires = { 't2' } })
      :addDaemon('u', { requires = {}, exec = { command = { 'u' } } })
    if extra then
      c = extra(c)
    end
    return c
  end

  local function pids(chain)
    local out = {}
    for _, s in ipairs(chain:states()) do
      out[s.id] = s.pid
    end
    return out
  end

  local function all_running(chain, ids)
    return function()
      for _, id in ipairs(ids) do
        local s = chain:entry(id) and chain:entry(id):snapshot()
        if not (s and s.pid and s.result == 'success') then
          return false
        end
      end
      return true
    end
  end

  -- The order in which entries were stopped (exit events after `t0`).
  local function exits_since(t0)
    local out = {}
    for _, e in ipairs(fx.procs) do
      if e.event == 'exit' and e.t >= t0 then
        out[#out + 1] = e.id
      end
    end
    return out
  end

  describe('configHash', function()
    local function spec_of(opts, kind)
      opts.requires = opts.requires or {}
      local c = Daemons.of()
      c = kind == 'health' and c:addHealthCheck('x', opts) or c:addDaemon('x', opts)
      return c:specs()[1]
    end

    it('ignores closures and the order of requires; sees env, command and ready.display',
      function()
        -- same() (what a reload compares) agrees with the hashes on every pair below
        local real_hash = config_hash.hash
        local pairs_seen = 0
        local function agree(a, b)
          pairs_seen = pairs_seen + 1
          assert.are.equal(real_hash(a) == real_hash(b), config_hash.same(a, b))
        end
        local base = { exec = { command = 'a b', env = { A = '1' } },
          ready = { display = 'X', fn = ready_fn } }
        local h = config_hash.hash(spec_of(base))
        assert.are.equal(h, config_hash.hash(spec_of({ exec = { command = 'a b',
          env = { A = '1' } }, ready = { display = 'X', fn = function() end } })))
        assert.are_not.equal(h, config_hash.hash(spec_of({ exec = { command = { 'a', 'b' },
          env = { A = '1' } }, ready = { display = 'X', fn = ready_fn } })))
        assert.are.same({ 'exec.env' }, config_hash.changed(spec_of(base), spec_of({
          exec = { command = 'a b', env = { A = '2' } }, ready = { display = 'X',
            fn = ready_fn } })))
        assert.are.same({ 'ready.display' }, config_hash.changed(spec_of(base), spec_of({
          exec = { command = 'a b', env = { A = '1' } }, ready = { display = 'Y',
            fn = ready_fn } })))
        assert.are.same({ 'exec.runAsInit' }, config_hash.changed(spec_of(base), spec_of({
          exec = { command = 'a b', env = { A = '1' }, runAsInit = true },
          ready = { display = 'X', fn = ready_fn } })))
        -- runAsInit = false is the default: same hash
        assert.are.equal(h, config_hash.hash(spec_of({ exec = { command = 'a b',
          env = { A = '1' }, runAsInit = false }, ready = { display = 'X', fn = ready_fn } })))
        local r1 = Daemons.of():addDaemon('a', { requires = {}, exec = { command = 'a' } })
          :addDaemon('b', { requires = {}, exec = { command = 'b' } })
        local x = r1:addDaemon('x', { exec = { command = 'x' }, requires = { 'a', 'b' } })
        local y = r1:addDaemon('x', { exec = { command = 'x' }, requires = { 'b', 'a' } })
        assert.are.equal(config_hash.hash(x:specs()[3]), config_hash.hash(y:specs()[3]))
        assert.are_not.equal(config_hash.hash(spec_of({ ready = { display = 'H',
          fn = ready_fn } }, 'health')), config_hash.hash(spec_of({ ready = { display = 'H',
          fn = ready_fn, gracePeriod = 5 } }, 'health')))
        local variants = {
          spec_of(base),
          spec_of({ exec = { command = 'a b', env = { A = '1' } }, ready = { display = 'X',
            fn = function() end } }),
          spec_of({ exec = { command = { 'a', 'b' }, env = { A = '1' } },
            ready = { display = 'X', fn = ready_fn } }),
          spec_of({ exec = { command = 'a b', env = { A = '2' } }, ready = { display = 'X',
            fn = ready_fn } }),
          spec_of({ exec = { command = 'a b', env = { A = '1' }, runAsInit = false },
            ready = { display = 'X', fn = ready_fn } }),
          spec_of({ exec = { command = 'a b', env = { A = '1' }, runAsInit = true },
            ready = { display = 'X', fn = ready_fn } }),
          spec_of({ exec = { command = 'a b', env = { A = '1' }, cwd = '/tmp' },
            ready = { display = 'X', fn = ready_fn } }),
          spec_of({ exec = { command = 'a b', env = { A = '1' } },
            ready = { display = 'X', fn = ready_fn, gracePeriod = 100 } }),
          spec_of({ exec = { fn = function() end }, ready = { display = 'X', fn = ready_fn } }),
          spec_of({ exec = { command = 'a b', env = { A = '1' }, onStdout = print },
            ready = { display = 'X', fn = ready_fn } }),
          x:specs()[3], y:specs()[3],
        }
        for _, a in ipairs(variants) do
          for _, b in ipairs(variants) do
            if a.id == b.id then
              agree(a, b)
            end
          end
        end
        assert.is_true(pairs_seen > 90)
      end)
  end)

  describe('reconcile a built chain', function()
    it('65: the same entries again: nothing restarts, same pids, same actors', function()
      local live = graph('80')
      H.run(function()
        live:build()
        H.wait_until(all_running(live, { 't1', 't2', 't3', 'u' }), 5000)
        local before, hd = pids(live), live:entry('t2')
        local rec = reconcile.new(live, { effects = fx })
        local r = rec:apply(graph('80'):specs())
        assert.are.same({ 't1', 't2', 't3', 'u' }, r.kept)
        assert.are.same({}, r.restarted)
        assert.are.same(before, pids(live))
        assert.are.equal(hd, live:entry('t2'))
        assert.are.same({}, exits_since(0))
        live:term()
      end, 60000)
    end)

    it('66: a changed env restarts the entry and what requires it, dependents first; u stays',
      function()
        local live = graph('80')
        H.run(function()
          live:build()
          H.wait_until(all_running(live, { 't1', 't2', 't3', 'u' }), 5000)
          local before = pids(live)
          local t0 = orch.now()
          local r = reconcile.new(live, { effects = fx }):apply(graph('81'):specs())
          assert.are.same({ 't3', 't2', 't1' }, exits_since(t0)) -- one at a time, post-order
          assert.are.same({ 'u' }, r.kept)
          assert.are.same({ 't1', 't2', 't3' }, r.restarted)
          assert.are.same({ t1 = 'exec.env changed', t2 = 'requires t1', t3 = 'requires t2' },
            r.why)
          H.wait_until(all_running(live, { 't1', 't2', 't3' }), 5000)
          local after = pids(live)
          assert.are.equal(before.u, after.u)
          for _, id in ipairs({ 't1', 't2', 't3' }) do
            assert.are_not.equal(before[id], after[id])
          end
          assert.are.equal('81', live:entry('t1').spec.exec.env.PORT)
          -- a dependent starts only once its requirement is ready again
          local spawns = {}
          for _, e in ipairs(fx.procs) do
            if e.event == 'spawn' and e.t >= t0 then
              spawns[#spawns + 1] = e.id
            end
          end
          assert.are.same({ 't1', 't2', 't3' }, spawns)
          assert.matches('restarted 3: t1 %(exec.env changed%), t2 %(requires t1%)',
            reconcile.describe(r))
          live:term()
        end, 60000)
      end)

    it('67: a new ready.fn alone restarts nothing and the old closure keeps running',
      function()
      local calls = { old = 0, new = 0 }
      local function chain(which)
        return Daemons.of{ effects = fx }:addDaemon('a', { requires = {},
          exec = { command = { 'a' } },
          ready = { display = 'A', fn = function()
            calls[which] = calls[which] + 1
            return { result = 'success' }
          end, trigger = orch.trigger.cooldownTrigger(100) } })
      end
      local live = chain('old')
      H.run(function()
        live:build()
        H.wait_until(all_running(live, { 'a' }), 5000)
        local pid = pids(live).a
        local r = reconcile.new(live, { effects = fx }):apply(chain('new'):specs())
        assert.are.same({ 'a' }, r.kept)
        local n = calls.old
        H.wait_until(function()
          return calls.old > n + 2
        end, 50000)
        assert.are.equal(0, calls.new)
        assert.are.equal(pid, pids(live).a)
        live:term()
      end, 60000)
    end)

    it("reloadOnChange = 'signal': an env change sends exec.reloadSignal, not a restart",
      function()
        fake.program('sig', { on_term = 'die' })
        -- t1 (signal) <- t2; u restarts on an env change as always
        local function chain(port, cmd)
          return Daemons.of{ effects = fx }
            :addDaemon('t1', { requires = {}, exec = { command = { cmd or 'sig' },
              env = { PORT = port }, reloadSignal = 'SIGHUP', reloadOnChange = 'signal' },
              ready = { display = 'T1', fn = ready_fn } })
            :addDaemon('t2', { exec = { command = { 't2' } }, requires = { 't1' } })
            :addDaemon('u', { requires = {}, exec = { command = { 'u' }, env = { PORT = port } } })
        end
        local live = chain('80')
        H.run(function()
          live:build()
          H.wait_until(all_running(live, { 't1', 't2', 'u' }), 5000)
          local before, t0 = pids(live), orch.now()
          local rec = reconcile.new(live, { effects = fx })
          local r = rec:apply(chain('81'):specs())
          assert.are.same({ 't1' }, r.signalled)
          assert.are.same({ 'u' }, r.restarted)
          assert.are.same({ 't2' }, r.kept) -- its requirement did not stop
          assert.are.same({ 'u' }, exits_since(t0))
          assert.are.same({ sig = 'SIGHUP', t = t0 }, fake.procs('sig')[1].signals[1])
          assert.are.equal(before.t1, pids(live).t1)
          assert.are.equal(before.t2, pids(live).t2)
          assert.matches('signalled %(reloadOnChange%) 1: t1 %(exec.env changed%)',
            reconcile.describe(r))
          -- the new exec is the entry's now: the same specs again change nothing
          assert.are.equal('81', live:specs()[1].exec.env.PORT)
          r = rec:apply(chain('81'):specs())
          assert.are.same({ 't1', 't2', 'u' }, r.kept)
          assert.are.equal(1, #fake.procs('sig')[1].signals)
          -- ... and its next process gets it
          live:restartEntry('t1')
          H.wait_until(all_running(live, { 't1' }), 5000)
          local env = '\n' .. table.concat(fake.procs('sig')[2].opts.env, '\n') .. '\n'
          assert.truthy(env:find('\nPORT=81\n', 1, true), env)
          -- a change beyond env restarts it (and its dependent) as without the option
          r = rec:apply(chain('82', 'sig2'):specs())
          assert.are.same({ 't1', 't2', 'u' }, r.restarted)
          assert.are.same({}, r.signalled)
          live:term()
        end, 60000)
      end)

    it('a reload clears an entry that gave up, though its configuration did not change',
      function()
        fake.program('giveup', { exit = 10, code = 1 })
        local function chain()
          return Daemons.of{ effects = fx }:addDaemon('g', { requires = {},
            exec = { command = { 'giveup' }, maxRestarts = 0 } })
        end
        local live = chain()
        H.run(function()
          live:build()
          H.wait_until(function()
            return live:entry('g'):failed()
          end, 5000)
          local spawns = #fake.procs('giveup')
          local r = reconcile.new(live, { effects = fx }):apply(chain():specs())
          assert.are.same({ 'g' }, r.kept)
          assert.are.same({ 'g' }, r.cleared)
          assert.matches('cleared %(had given up%) 1: g', reconcile.describe(r))
          H.wait_until(function()
            return #fake.procs('giveup') > spawns
          end, 5000)
          live:term()
        end, 60000)
      end)

    it('removes an entry (and its dependents), adds new ones in declaration order', function()
      local live = graph('80')
      H.run(function()
        live:build()
        H.wait_until(all_running(live, { 't1', 't2', 't3', 'u' }), 5000)
        local before = pids(live)
        local t0 = orch.now()
        local new = Daemons.of{ effects = fx }
          :addDaemon('t1', { requires = {}, exec = { command = { 't1' }, env = { PORT = '80' } },
            ready = { display = 'T1', fn = ready_fn } })
          :addDaemon('u', { requires = {}, exec = { command = { 'u' } } })
          :addDaemon('v', { exec = { command = { 'v' } }, requires = { 'u' } })
          :addDaemon('w', { exec = { command = { 'w' } }, requires = { 't1' } })
        local r = reconcile.new(live, { effects = fx }):apply(new:specs())
        assert.are.same({ 't1', 'u' }, r.kept)
        assert.are.same({ 'v', 'w' }, r.added)
        assert.are.same({ 't2', 't3' }, r.removed)
        assert.are.same({ 't3', 't2' }, exits_since(t0))
        assert.is_nil(live:entry('t2'))
        assert.are.same({ 't1', 'u', 'v', 'w' }, live.ids)
        H.wait_until(all_running(live, { 'v', 'w' }), 5000)
        assert.are.equal(before.t1, pids(live).t1)
        assert.are.equal(before.u, pids(live).u)
        -- the kept t1 no longer lists the removed t2 among its dependents: a restart of t1
        -- restarts w only
        local ids = live:restartEntry('t1')
        assert.are.same({ 't1', 'w' }, ids)
        live:term()
      end, 60000)
    end)
  end)

  describe('Daemons.dynamic', function()
    it('68: three reruns asked while one is in flight coalesce into exactly one more', function()
      local runs, gate = 0, nil
      local dyn = Daemons.dynamic(function()
        runs = runs + 1
        if gate then
          gate:wait()
        end
        return graph('80')
      end)
      H.run(function()
        dyn:build({ effects = fx })
        H.wait_until(function()
          return runs == 1 and #dyn:entries() == 4
        end, 5000)
        H.wait_until(all_running(dyn:chain(), { 't1', 't2', 't3', 'u' }), 5000)
        local before = pids(dyn:chain())
        gate = require('orch.runtime.sched').event()
        local first = dyn:rerun()
        H.wait_until(function()
          return runs == 2
        end, 5000)
        local evs = { dyn:rerun(), dyn:rerun(), dyn:rerun() }
        assert.are.equal(evs[1], evs[3]) -- the three share one run
        gate:set()
        first:wait()
        evs[3]:wait()
        assert.are.equal(3, runs)
        assert.is_true(evs[3].value[1])
        orch.sleep(1000)
        assert.are.equal(3, runs)
        assert.are.same(before, pids(dyn:chain()))
        dyn:term()
      end, 60000)
    end)

    it('errors in fn are logged and leave the running set as it was; ctx carries reload and '
      .. 'changed', function()
        local mode, seen = 'ok', nil
        local dyn = Daemons.dynamic(function(ctx)
          seen = ctx
          if mode == 'raise' then
            error('boom in fn')
          elseif mode == 'nil' then
            return nil
          elseif mode == 'invalid' then
            return graph('80'):addDaemon('bad', { requires = {}, exec = { command = {} } })
          end
          return graph('80')
        end)
        H.run(function()
          dyn:build({ effects = fx })
          H.wait_until(all_running(dyn:chain(), { 't1', 't2', 't3', 'u' }), 5000)
          local before = pids(dyn:chain())
          for _, m in ipairs({ 'raise', 'nil', 'invalid' }) do
            mode = m
            local ev = dyn:rerun({ reload = 7, changed = { ['/x/main.lua'] = true } })
            ev:wait()
            assert.is_false(ev.value[1])
            assert.are.same(before, pids(dyn:chain()))
          end
          assert.are.equal(7, seen.reload)
          assert.is_true(seen.changed['/x/main.lua'])
          assert.are.equal(3, #fx.logged('reconcile failed, the running entries stay as they '
            .. 'were'))
          assert.are.equal(1, #fx.logged('boom in fn'))
          assert.are.equal(1, #fx.logged("entry 'bad'"))
          -- ctx.effects.constRetry asks for a rerun (once per run of fn)
          mode = 'ok'
          local n = dyn:runs()
          seen.effects.constRetry()
          seen.effects.constRetry()
          H.wait_until(function()
            return dyn:runs() == n + 1
          end, 5000)
          dyn:term()
          assert.are.same({}, dyn:states() and {} or {})
        end, 60000)
      end)

    it('runUntilSuccess waits for the first run, then for every entry', function()
      local dyn = Daemons.dynamic(function()
        return graph('80')
      end)
      H.run(function()
        assert.is_true(dyn:runUntilSuccess(10000, { effects = fx }))
        assert.are.equal(1, dyn:runs())
        assert.are.equal(4, #fx.events(nil, 'spawn'))
      end, 60000)
    end)

    it('a first run that fails leaves nothing running; the next one starts everything',
      function()
        local fail = true
        local dyn = Daemons.dynamic(function()
          if fail then
            error('not yet')
          end
          return graph('80')
        end)
        H.run(function()
          dyn:build({ effects = fx })
          H.wait_until(function()
            return dyn:runs() == 1 and #fx.logged('not yet') == 1
          end, 5000)
          assert.are.same({}, dyn:entries())
          fail = false
          dyn:rerun():wait()
          H.wait_until(all_running(dyn:chain(), { 't1', 't2', 't3', 'u' }), 5000)
          dyn:term()
        end, 60000)
      end)

    it('detach() as upstream: idempotent, before or after build, returns the main; preview() '
      .. 'runs fn once without building anything', function()
        local runs = 0
        local function fn(ctx)
          runs = runs + 1
          assert.is_function(ctx.effects.constRetry)
          if runs == 1 then
            ctx.effects.constRetry() -- the preview's: does nothing
          end
          return graph('80')
        end
        local early = Daemons.dynamic(fn)
        assert.are.equal(early, early:detach())
        assert.are.equal(early, early:detach())
        local late = Daemons.dynamic(fn)
        local preview = late:preview(fx)
        assert.are.same({ 't1', 't2', 't3', 'u' }, preview.ids)
        assert.are.equal(1, runs)
        assert.are.same({}, fx.events(nil, 'spawn')) -- nothing was built
        H.run(function()
          early:build({ effects = fx })
          late:build({ effects = fx })
          assert.is_true(early:chain():detached())
          assert.is_false(late:chain():detached())
          assert.are.equal(late, late:detach())
          assert.is_true(late:chain():detached())
          local plain = graph('81')
          assert.is_false(plain:detached())
          assert.are.equal(plain, plain:detach())
          assert.is_true(plain:detached())
          early:term()
          late:term()
        end, 60000)
      end)
  end)
end)
