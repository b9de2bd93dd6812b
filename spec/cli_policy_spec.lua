-- Issue 14 end to end with real processes: exec.maxRestarts gives up, the dependents are
-- blocked, and `orch run --until-ready` exits 1 at once naming the chain of causes.
local R = require 'fixtures.cli.runner'

local F = R.FIXTURES

local session = R.session()
local start, tmpdir = session.start, session.tmpdir

-- The last pid each entry was started with, in `text`.
local function started(text)
  local out = {}
  for id, pid in text:gmatch('([%w-]+): started %(pid (%d+)') do
    out[id] = tonumber(pid)
  end
  return out
end

local function count(text, plain)
  local _, n = text:gsub(plain:gsub('%p', '%%%0'), '')
  return n
end

describe('restart limits #integration', function()
  after_each(session.cleanup)

  it('orch run --until-ready exits 1 at once when a requirement gives up', function()
    local t0 = R.now()
    local r = R.run({ 'run', '--no-control', '--until-ready=60000', F .. '/gives_up.lua' })
    assert.equal(1, r.code, r.err)
    -- real clock: 3 runs and 2 backoffs of 100 and 200 ms, far from the 60 s limit
    assert.is_true(R.now() - t0 < 20, 'took ' .. tostring(R.now() - t0))
    assert.matches('^orch: Will never be ready %(db failed: gave up after 2 restarts in %d+ '
      .. 'ms: /bin/sh exited with code 3; blocked: app, web%): db,app,web\n', r.err)
    assert.equal(3, select(2, r.out:gsub('db   | db crashing', '')))
    assert.matches('app: waiting %-> disabled %(blocked: db failed%)', r.out)
    assert.matches('web: waiting %-> disabled %(blocked: db failed %(via app%)%)', r.out)
    assert.matches('db: gave up after 2 restarts', r.out)
  end)

  it('ready.restartAfter restarts a real process with SIGTERM; maxRestarts then gives up',
    function()
      local r = R.run({ 'run', '--no-control', '--until-ready=30000', F .. '/liveness.lua' })
      assert.equal(1, r.code, r.err)
      assert.equal(2, count(r.out, 'stuck: restarting: check failed 2 times: no answer on :5432'))
      assert.equal(2, count(r.out, 'stuck | got TERM')) -- its trap ran: TERM, not KILL
      assert.equal(0, count(r.out, 'SIGKILL'))
      assert.matches('^orch: Will never be ready %(stuck failed: gave up after 1 restarts in %d+ '
        .. 'ms: check failed 2 times: no answer on :5432%): stuck\n', r.err)
    end)

  it('ready.restartAfter stops with exec.stopCommand when the entry has one', function()
    local r = R.run({ 'run', '--no-control', '--until-ready=30000', F .. '/liveness.lua',
      'stopCommand' })
    assert.equal(1, r.code, r.err)
    assert.equal(2, count(r.out, 'stuck: restarting: check failed 2 times: no answer on :5432'))
    assert.equal(2, count(r.out, 'stuck: stopping with exec.stopCommand'))
    assert.equal(2, count(r.out, 'stuck | stop command for '))
    assert.equal(2, count(r.out, 'stuck | got INT')) -- the command's SIGINT, not the TERM
    assert.equal(0, count(r.out, 'got TERM'))
    assert.equal(0, count(r.out, 'SIGKILL'))
  end)

  it('a process that outlives the stopCommand of a liveness restart is SIGKILLed', function()
    local r = R.run({ 'run', '--no-control', '--until-ready=30000', F .. '/liveness.lua',
      'stuckCommand' })
    assert.equal(1, r.code, r.err)
    assert.equal(2, count(r.out, 'stuck | stop command does nothing'))
    assert.equal(0, count(r.out, 'got TERM'))
    assert.equal(2, count(r.out, 'stuck: killed by SIGKILL'), r.out)
  end)

  it('requires = {db = {onUnhealthy = ...}}: each dependent reacts to an outage of its real '
    .. 'requirement as its edge says', function()
      local flag = tmpdir() .. '/healthy'
      R.write_file(flag, '')
      local p = start({ 'run', '--no-control', F .. '/on_unhealthy.lua', flag })
      for _, id in ipairs({ 'stp', 'ign', 'rst', 'tol' }) do
        p:wait_for(id .. ': starting -> success', 15000, nil, true)
      end
      local before = started(p:out())
      local mark = #p:out()
      os.remove(flag)
      p:wait_for('db: success -> failure (flag gone)', 10000, nil, true)
      p:wait_for('stp: stopped by SIGTERM', 10000, nil, true)
      R.write_file(flag, '')
      p:wait_for('db: failure -> success', 10000, nil, true)
      R.wait_until(function()
        local again = started(p:out():sub(mark + 1))
        return again.stp and again.rst
      end, 10000, 'stp and rst started again')
      -- both ready again before the last look
      R.wait_until(function()
        local t = p:out():sub(mark + 1)
        return t:find('rst: starting -> success', 1, true)
          and t:find('stp: starting -> success', 1, true)
      end, 10000, 'stp and rst ready again')
      local tail = p:out():sub(mark + 1)
      local after = started(p:out())
      assert.are_not.equal(before.stp, after.stp)
      assert.are_not.equal(before.rst, after.rst)
      assert.are.equal(before.ign, after.ign)
      assert.are.equal(before.tol, after.tol)
      assert.is_nil(tail:find('ign: stopping', 1, true))
      assert.is_nil(tail:find('tol: stopping', 1, true))
      -- rst ran through the outage and was restarted only once db was back
      local rst_stop = assert(tail:find('rst: stopping', 1, true))
      assert.is_true(rst_stop > assert(tail:find('db: failure -> success', 1, true)))
      assert.truthy(R.alive(before.ign) and R.alive(before.tol))
      p:signal('TERM')
      assert.equal(0, p:wait())
    end)

  it('orch status shows failed and blocked; orch restart <id> clears the failure', function()
    local sock = tmpdir() .. '/orch.sock'
    local p = start({ 'run', '--control', sock, F .. '/gives_up.lua' })
    p:wait_for('web: waiting %-> disabled %(blocked: db failed %(via app%)%)', 15000)
    local st = R.run({ 'status', '--control', sock }, { timeout = 15 })
    assert.equal(0, st.code, st.err)
    assert.matches('\ndb%s+daemon%s+failed%s+%-%s+%-%s+2%s+code 3[^\n]*gave up after 2 restarts',
      st.out)
    assert.matches('\napp%s+daemon%s+blocked%s+%-%s+%-%s+0%s+[^\n]*db %(failed%)%s+blocked: db '
      .. 'failed', st.out)
    local r = R.run({ 'restart', 'db', '--control', sock }, { timeout = 15 })
    assert.equal(0, r.code, r.err)
    -- tried again from scratch: 3 more runs (restart count back to 0), then it gives up again
    R.wait_until(function()
      return count(p:out(), 'db: gave up after 2 restarts') == 2
    end, 15000, 'the second give-up')
    assert.equal(6, count(p:out(), 'db   | db crashing'))
    assert.equal(2, count(p:out(), 'app: waiting -> disabled (blocked: db failed)'))
    p:signal('TERM')
    assert.equal(0, p:wait())
  end)
end)
