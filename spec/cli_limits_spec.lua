-- orch's own limits (orch.cli.limits) and a stop during a long start, with the real
-- build/bin/orch (tagged #integration): the soft descriptor limit is raised to the hard one while
-- children get back the one orch started with; a graph that needs more descriptors than the hard
-- limit allows either gets it (the hard limit raised, when the system lets orch) or an error that
-- says what to raise, and then what fits runs; a SIGINT while thousands of entries start stops
-- the start at once.
local F = require 'spec.support.faults'
local R = F.R

local SCRIPT = R.ROOT .. '/spec/fixtures/limits/many.lua'

-- The soft and hard descriptor limits of this process (what orch would start with).
local function our_nofile()
  local soft, hard = R.capture('grep "open files" /proc/self/limits'):match(
    'open files%s+(%S+)%s+(%S+)')
  return tonumber(soft), tonumber(hard)
end

-- How many of the fixture's sleepers with `tag` run.
local function running(tag)
  local n, prefix = 0, 'sleep 100009.' .. tag
  for _, proc in pairs(F.procs()) do
    if proc.args:sub(1, #prefix) == prefix then
      n = n + 1
    end
  end
  return n
end

describe('orch limits #integration', function()
  local s = R.session()
  after_each(function()
    s.cleanup()
  end)

  it('raises its own soft descriptor limit; children keep the one orch started with', function()
    local _, hard = our_nofile()
    if not hard or hard < 2048 then
      pending('needs a hard descriptor limit of at least 2048')
      return
    end
    local p = s.start({ 'run', '--no-control', SCRIPT }, {
      prefix = ('prlimit --nofile=1000:%d --'):format(hard),
      env = { N = '3', TAG = (F.unique():gsub('%.', '')), LIMITS_PRINT = '1' } })
    local line = p:wait_for('s1%s+| Max open files[^\n]*', 10000)
    local soft_child, hard_child = line:match('files%s+(%d+)%s+(%d+)')
    assert.equal('1000', soft_child, line)
    assert.equal(tostring(hard), hard_child, line)
    local inner = F.inner_pid(p.pid)
    local st = R.read_file(('/proc/%d/limits'):format(inner))
    assert.matches(('Max open files%%s+%d%%s+%d'):format(hard, hard), st)
    p:signal('INT')
    assert.equal(0, p:wait(10000))
  end)

  it('makes room for a graph above the hard limit, or says what to raise and starts anyway',
    function()
      local tag = F.unique():gsub('%.', '')
      -- 100 entries need 2 * 100 + 64 = 264 descriptors; the hard limit is 200
      local p = s.start({ 'run', '--no-control', SCRIPT }, {
        prefix = 'prlimit --nofile=200:200 --', env = { N = '100', TAG = tag } })
      local line = p:wait_for('[^\n]*descriptor[^\n]*', 10000)
      if line:find('raised the descriptor limit', 1, true) then
        -- root with CAP_SYS_RESOURCE: the hard limit goes up, every entry starts
        assert.matches('raised the descriptor limit from 200 to 264 for 100 entries', line)
        R.wait_until(function()
          return running(tag) == 100
        end, 20000, 'every entry running')
      else
        assert.matches('100 entries need about 264 file descriptors %(2 per entry and 64 for '
          .. 'orch%), but the limit is 200 and raising it was refused: [^\n]+ until it is raised; '
          .. 'raise the hard limit', line)
        -- the entries that fit run, the others fail with EMFILE and are retried; orch runs on
        p:wait_for('s%d+: failed to start: [^\n]*too many open files', 20000)
        R.wait_until(function()
          return running(tag) >= 50
        end, 20000, 'the entries that fit running')
        assert.is_false(p:exited())
        assert.is_true(running(tag) < 100)
      end
      p:signal('INT')
      assert.equal(0, p:wait(20000))
      assert.equal(0, running(tag))
    end)

  it('stops starting entries as soon as a SIGINT arrives during a long start', function()
    local tag = F.unique():gsub('%.', '')
    local n = 3000
    local p = s.start({ 'run', '--no-control', SCRIPT }, { env = { N = tostring(n), TAG = tag } })
    R.wait_until(function()
      return running(tag) > 0
    end, 20000, 'the first entry')
    p:signal('INT')
    assert.equal(0, p:wait(30000))
    local out = p:out()
    local left = tonumber(out:match('stop requested while starting: (%d+) of 3000 entries left'))
    assert.is_truthy(left, out:sub(-2000))
    assert.is_true(left > 0)
    -- nothing started after the stop was seen, and nothing is left
    assert.equal(n - left, F.count(out, ': started (pid'))
    assert.equal(0, running(tag))
  end)
end)
