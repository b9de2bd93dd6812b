-- The entry machinery as its own state machines (issue 12): the transition tables are closed,
-- what a chain needs (effects, a tracker) is passed in when it is built, the evaluation scope
-- refuses build(), and a kill during a stop is acted on at once (fake clock).
local H = require 'spec.support.helpers'

insulate('entry state machines', function()
  local fake, orch = H.fake()
  local Daemons = orch.Daemons
  local Daemon = require 'orch.entries.daemon'
  local HealthDaemon = require 'orch.entries.health_daemon'
  local fx = H.fake_effects_per_test(fake)

  local function env_of(p)
    local env = {}
    for _, kv in ipairs(p.opts.env or {}) do
      local k, v = kv:match('^([^=]*)=(.*)$')
      env[k] = v
    end
    return env
  end

  describe('transition tables', function()
    local tables = { Daemon = Daemon.TRANSITIONS, HealthDaemon = HealthDaemon.TRANSITIONS }
    for name, t in pairs(tables) do
      it(name .. ': every next state is a state of the table', function()
        for state, rows in pairs(t) do
          for event, row in pairs(rows) do
            assert.is_not_nil(t[row[2]], ('%s.%s -> %s'):format(state, event, tostring(row[2])))
          end
        end
      end)
    end

    it('the restart verdicts name events of the exiting state', function()
      for policy, v in pairs(Daemon.VERDICT) do
        for how, event in pairs(v) do
          assert.is_not_nil(Daemon.TRANSITIONS.exiting[event], policy .. '.' .. how)
        end
      end
    end)
  end)

  describe('build options', function()
    -- A tracker as orch.track's Tracker looks to the daemon: group, spawn_failed, release.
    local function fake_tracker()
      local t = { groups = {}, released = {} }
      function t.group(self, id)
        local g = { id = ('t.%d'):format(#self.groups + 1), tag = 'ORCH_INVOCATION_ID=t.'
          .. (#self.groups + 1), tracker = self, for_id = id }
        self.groups[#self.groups + 1] = g
        return g
      end
      function t.spawn_failed()
        return false
      end
      function t.release(self, g)
        self.released[#self.released + 1] = g.id
      end
      return t
    end

    it('gives every incarnation a group of the tracker build() is given', function()
      fake.program('crashy', { exit = 100, code = 1 })
      local tracker = fake_tracker()
      local chain = Daemons.of{ effects = fx }
        :addDaemon('x', { exec = { command = { 'crashy' } }, requires = {} })
      H.run(function()
        chain:build({ tracker = tracker })
        H.at(1250) -- exits at 100 and 200; restarts at 100 (backoff 0) and 1200
        chain:term()
      end)
      local procs = fake.procs('crashy')
      assert.is_true(#procs >= 3)
      for i, p in ipairs(procs) do
        assert.are.equal(('t.%d'):format(i), env_of(p).ORCH_INVOCATION_ID)
        assert.are.equal('x', tracker.groups[i].for_id)
      end
      -- each incarnation's leftovers were waited for: two exits and the stop
      assert.are.same({ 't.1', 't.2', 't.3' }, { tracker.released[1], tracker.released[2],
        tracker.released[#tracker.released] })
    end)

    it('without a tracker, tags nothing', function()
      fake.program('svc', {})
      local chain = Daemons.of{ effects = fx }
        :addDaemon('x', { exec = { command = { 'svc' } }, requires = {} })
      H.run(function()
        chain:build()
        H.at(10)
        chain:term()
      end)
      local p = fake.procs('svc')[1]
      assert.is_nil(env_of(p).ORCH_INVOCATION_ID)
      assert.is_nil(p.opts.tag)
    end)
  end)

  describe('the evaluation scope (sched.scope())', function()
    it('sends add* warnings to its effects, records and equips the chains built in it',
      function()
        local sink = H.effects()
        local sched = require 'orch.runtime.sched'
        local built = {}
        local scope = { effects = sink, tracker = nil, built = function(c)
          built[#built + 1] = c
        end }
        fake.program('svc', {})
        local chain
        H.run(function()
          local t = sched.start({ name = 'eval', scope = scope }, function()
            chain = Daemons.of():addDaemon('x', { exec = { command = { 'svc' } }, requires = {},
              ready = { display = '', fn = function()
                return { result = 'success' }
              end } })
            chain:build()
          end)
          t:wait()
          H.at(10)
          chain:term()
        end)
        assert.are.equal(1, #sink.logged('ready%.display is "" so the check is hidden'))
        assert.are.same({ chain }, built)
        assert.are.equal('spawn', sink.events('x')[1].event)
      end)
  end)

  describe('kill during a stop', function()
    it('a second Ctrl-C while term() waits for a stubborn process SIGKILLs it at once', function()
      fake.program('stubborn', { on_term = 'ignore' })
      local chain = Daemons.of{ effects = fx }
        :addDaemon('x', { exec = { command = { 'stubborn' } }, requires = {} })
      local returned
      H.run(function()
        chain:build()
        H.at(1000)
        orch.spawn(function()
          H.at(1500)
          chain:kill_all()
        end)
        chain:term()
        returned = orch.now()
      end)
      assert.are.same({ { sig = 'SIGTERM', t = 1000 }, { sig = 'SIGKILL', t = 1500 } },
        fake.procs('stubborn')[1].signals)
      assert.are.equal(1500, returned)
    end)
  end)
end)
