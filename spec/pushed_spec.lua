-- orch.entries.pushed on the fake clock: what sd_notify messages and output lines mean, and
-- the watchdog's timing (the socket itself is the real core's: ready_integration_spec).
local H = require 'spec.support.helpers'

insulate('pushed readiness (fake clock)', function()
  H.fake()
  local pushed = require 'orch.entries.pushed'
  local sched = require 'orch.runtime.sched'
  local LEADER = 4242

  local function source(ready)
    local results, logs = {}, {}
    local p = pushed.new('db', { ready = ready, effects = { log = function(_, m)
      logs[#logs + 1] = m
    end }, on_result = function(h)
      results[#results + 1] = { t = sched.now(), result = h.result, message = h.message }
    end })
    p:spawned(LEADER)
    return p, results, logs
  end

  it('READY=1 is success with STATUS= as the message; STOPPING=1 a failure', function()
    local p, results = source({ notify = true })
    p:_message('STATUS=warming up', LEADER)
    assert.same({}, results) -- a STATUS before READY changes nothing
    p:_message('READY=1\nSTATUS=accepting', LEADER)
    p:_message('STATUS=busy', LEADER)
    p:_message('STOPPING=1', LEADER)
    assert.same({ 'success', 'success', 'failure' }, { results[1].result, results[2].result,
      results[3].result })
    assert.same({ 'accepting', 'busy' }, { results[1].message, results[2].message })
  end)

  it('ignores (and warns once about) a sender that is not the entry', function()
    local p, results, logs = source({ notify = true })
    p:_message('READY=1', 1)
    p:_message('READY=1', 1)
    assert.same({}, results)
    assert.equal(1, #logs)
    assert.matches('sd_notify from pid 1, not one of its processes', logs[1])
  end)

  it('fails when no WATCHDOG=1 comes within ready.watchdog of READY=1 or the last ping',
    function()
      local p, results
      H.run(function()
        p, results = source({ notify = true, watchdog = 300 })
        H.at(1000) -- no watchdog before READY=1
        assert.same({}, results)
        p:_message('READY=1', LEADER)
        H.at(1250)
        p:_message('WATCHDOG=1', LEADER) -- re-arms: the deadline is now 1550
        H.at(1500)
        assert.equal(1, #results)
        H.at(1560)
        assert.equal(2, #results)
        assert.same({ 'failure', 'watchdog: no WATCHDOG=1 within 300 ms' },
          { results[2].result, results[2].message })
        assert.is_true(results[2].t >= 1550 and results[2].t < 1560)
        p:_message('WATCHDOG=1', LEADER) -- a late ping makes it success again
        assert.equal('success', results[3].result)
        p:_message('EXTEND_TIMEOUT_USEC=2000000', LEADER) -- the wait is now 2 s
        H.at(3000)
        assert.equal(3, #results)
        H.at(3600)
        assert.equal('failure', results[4].result)
        p:close()
      end)
    end)

  it('ready.logLine: the first matching line is success, split across chunks', function()
    local p, results = source({ logLine = '^listening on %d+$' })
    p:output('stdout', 'booting\nlisten')
    p:output('stdout', 'ing on 80\nlistening on 81\n')
    assert.same({ { t = results[1].t, result = 'success', message = 'listening on 80' } },
      results)
  end)

  it('ready.onLine: its result, nil for none, and an error is logged', function()
    local p, results, logs = source({ onLine = function(stream, line)
      if line == 'boom' then
        error('bad line')
      end
      if stream == 'stderr' then
        return { result = 'failure', message = line }
      end
      return line == 'ok' and 'success' or nil
    end })
    p:output('stdout', 'x\nok\n')
    p:output('stderr', 'oops\nboom\n')
    assert.same({ 'success', 'failure' }, { results[1].result, results[2].result })
    assert.equal('oops', results[2].message)
    assert.matches('ready.onLine raised: bad line', logs[1])
  end)
end)
