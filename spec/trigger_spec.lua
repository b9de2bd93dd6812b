-- Triggers on the fake clock (observed.md section 2 timings; DECISIONS default trigger).
local H = require 'spec.support.helpers'

insulate('orch.entries.trigger', function()
  local fake, orch = H.fake()
  local trigger = orch.trigger

  before_each(function()
    fake.reset()
  end)

  -- Drive a trigger as the probe loop does: `result(i, t)` is the i-th probe's result.
  -- Returns the probe times.
  local function drive(trig, result, n, first)
    local times = {}
    H.run(function()
      local last = first
      if first == nil then
        last = 'starting'
      elseif first == false then
        last = nil
      end
      local nxt = trig(function()
        return { lastResult = last }
      end)
      for i = 1, n do
        if not nxt() then
          break
        end
        times[i] = orch.now()
        last = result(i, orch.now())
      end
    end, 10 * 3600 * 1000)
    return times
  end

  local function gaps(times)
    local out = {}
    for i = 2, #times do
      out[#out + 1] = times[i] - times[i - 1]
    end
    return out
  end

  describe('cooldownTrigger', function()
    it('sleeps the same interval before every probe, whatever the result', function()
      local t = drive(trigger.cooldownTrigger(700), function(i)
        return i % 2 == 0 and 'success' or 'failure'
      end, 4)
      assert.are.same({ 700, 1400, 2100, 2800 }, t)
    end)

    it('validates its argument at the call', function()
      assert.has_error(function()
        trigger.cooldownTrigger('1s')
      end, "bad argument #1 to 'cooldownTrigger' (non-negative number of ms expected, got "
        .. 'string)')
    end)
  end)

  describe('statusTrigger', function()
    it('sleeps intervals[lastResult] or defaultMs, read before sleeping', function()
      local seq = { 'failure', 'failure', 'success', 'loading', 'failure' }
      local t = drive(trigger.statusTrigger(10000, { failure = 500 }), function(i)
        return seq[i]
      end, 6)
      -- starting -> default 10000; failure -> 500; success -> 10000; loading -> 10000
      assert.are.same({ 10000, 500, 500, 10000, 10000, 500 }, gaps({ 0, table.unpack(t) }))
    end)

    it('uses intervals.starting when there is no result yet', function()
      local t = drive(trigger.statusTrigger(10000, { starting = 1000 }), function()
        return 'success'
      end, 2, false)
      assert.are.equal(1000, t[1])
    end)

    it('rejects a table as the first argument (the upstream doc bug)', function()
      assert.has_error(function()
        trigger.statusTrigger({ starting = 5000 })
      end, "bad argument #1 to 'statusTrigger' (non-negative number of ms expected, got "
        .. 'table)')
      assert.has_error(function()
        trigger.statusTrigger(1000, { ok = 5 })
      end, "bad argument #2 to 'statusTrigger' (unknown result 'ok')")
    end)
  end)

  describe('changeOnFirstSuccess', function()
    it('keeps the seed quirk: one extra before-tick after the first success, then after for '
      .. 'ever', function()
        local trig = trigger.changeOnFirstSuccess {
          beforeFirstSuccess = trigger.cooldownTrigger(300),
          afterFirstSuccess = trigger.cooldownTrigger(2000),
        }
        -- success from t >= 2700, failure again from t >= 7000
        local t = drive(trig, function(_, now)
          return (now >= 2700 and now < 7000) and 'success' or 'failure'
        end, 14)
        local g = gaps(t)
        assert.are.equal(300, t[1])
        for i = 1, 8 do
          assert.are.equal(300, g[i]) -- 300 .. 2700
        end
        assert.are.equal(2700, t[9])
        assert.are.equal(2300, g[9]) -- 300 + 2000
        for i = 10, #g do
          assert.are.equal(2000, g[i]) -- for ever, also once failing again
        end
      end)

    it('fires at once while there is no result', function()
      local trig = trigger.changeOnFirstSuccess {
        beforeFirstSuccess = trigger.cooldownTrigger(1000),
        afterFirstSuccess = trigger.cooldownTrigger(30000),
      }
      local t = drive(trig, function()
        return 'failure'
      end, 2, false)
      assert.are.same({ 0, 1000 }, t)
    end)
  end)

  describe('successFailure / lastStatus', function()
    it('switches at once in both directions (no extra tick)', function()
      local trig = trigger.successFailure {
        duringSuccess = trigger.cooldownTrigger(2000),
        duringError = trigger.cooldownTrigger(300),
      }
      local seq = { 'failure', 'success', 'success', 'failure', 'failure' }
      local t = drive(trig, function(i)
        return seq[i]
      end, 6)
      assert.are.same({ 300, 300, 2000, 2000, 300, 300 }, gaps({ 0, table.unpack(t) }))
    end)

    it('requires a default and known result names', function()
      assert.has_error(function()
        trigger.lastStatus { success = trigger.cooldownTrigger(1) }
      end, "bad argument #1 to 'lastStatus' (default is required)")
      assert.has_error(function()
        trigger.lastStatus { ok = trigger.cooldownTrigger(1), default = trigger.cooldownTrigger(1) }
      end, "bad argument #1 to 'lastStatus' (unknown result 'ok')")
    end)
  end)

  describe('defaultTrigger', function()
    -- The fast phase with probes that take no time: 5 ms apart up to 50, then 1/8 of the time
    -- since the session start (each gap is floor(previous probe time / 8)), 1000 ms apart from
    -- 8254 on.
    local FAST = { 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 56, 63, 70, 78, 87, 97, 109, 122, 137,
      154, 173, 194, 218, 245, 275, 309, 347, 390, 438, 492, 553, 622, 699, 786, 884, 994, 1118,
      1257, 1414, 1590, 1788, 2011, 2262, 2544, 2862, 3219, 3621, 4073, 4582, 5154, 5798, 6522,
      7337, 8254, 9254, 10254, 11254, 12254 }

    local function failing()
      return 'failure'
    end

    it('probes fast until the first success: 5 ms apart, then 1/8 of the time since the start, '
      .. 'up to 1000 ms', function()
        local t = drive(trigger.defaultTrigger, failing, #FAST)
        assert.are.same(FAST, t)
        -- the helpers the Daemons specs derive their times from agree
        assert.are.same(FAST, H.fast_probes(FAST[#FAST]))
        assert.are.same({ 5, 10 }, H.fast_probes(14))
        assert.are.same({ 5, 309, 553, 10254 }, { H.fast_first(0), H.fast_first(300),
          H.fast_first(500), H.fast_first(9255) })
      end)

    it('probes 5 ms after the session start, with or without a result yet', function()
      assert.are.same({ 5 }, drive(trigger.defaultTrigger, failing, 1))
      fake.reset()
      assert.are.same({ 5 }, drive(trigger.defaultTrigger, failing, 1, false))
      assert.are.equal(5, trigger.FAST_MIN_MS)
    end)

    it('probes every 5 ms during the first 45 ms', function()
      local g = gaps({ 0, table.unpack(drive(trigger.defaultTrigger, failing, 10)) })
      assert.are.same({ 5, 5, 5, 5, 5, 5, 5, 5, 5, 5 }, g) -- the probe at 45 is followed at 50
      for elapsed = 0, 47 do
        assert.are.equal(5, trigger.fast_delay(elapsed, 0), elapsed)
      end
      assert.are.equal(6, trigger.fast_delay(48, 0))
    end)

    it('waits 1/8 of the time since the session start later on', function()
      assert.are.equal(8, trigger.FAST_RATIO)
      assert.are.equal(100, trigger.fast_delay(800, 0))
      assert.are.equal(100, trigger.fast_delay(807))
      assert.are.equal(50, trigger.fast_delay(400, 0))
      assert.are.equal(124, trigger.fast_delay(999, 3))
      -- on the trigger: a session whose first next() comes 800 ms after the trigger was
      -- created (the session start) probes 100 ms later, then 1/8 of 900 later
      local times = {}
      H.run(function()
        local nxt = trigger.defaultTrigger(function()
          return { lastResult = 'failure' }
        end)
        orch.sleep(800)
        for i = 1, 3 do
          assert.is_true(nxt())
          times[i] = orch.now()
        end
      end, 100000)
      assert.are.same({ 900, 1012, 1138 }, times) -- 800 + 100, 900 + 112, 1012 + 126
      -- every gap of the instant-probe schedule past 50 ms is 1/8 of the previous probe time
      for i = 10, #FAST - 1 do
        assert.are.equal(math.min(FAST[i] // 8, 1000), FAST[i + 1] - FAST[i], FAST[i])
      end
    end)

    it('waits at most 1000 ms between probes', function()
      assert.are.equal(1000, trigger.FAST_MAX_MS)
      assert.are.equal(999, trigger.fast_delay(7999, 0))
      assert.are.equal(1000, trigger.fast_delay(8000, 0))
      assert.are.equal(1000, trigger.fast_delay(3600 * 1000, 0))
      assert.are.equal(1000, trigger.fast_delay(10, 5000)) -- even after a slow probe
      local g = gaps(drive(trigger.defaultTrigger, failing, 70))
      for i = 56, #g do
        assert.are.equal(1000, g[i]) -- from 8254 on
      end
    end)

    it('never waits less than the previous probe took', function()
      -- the first probe (at 5) takes 300 ms: next() is called at 305, when 1/8 of the time is
      -- only 38 ms, and waits 300; the probes after it take no time: 605 + 605 // 8, ...
      local t = drive(trigger.defaultTrigger, function(i)
        if i == 1 then
          orch.sleep(300)
        end
        return 'failure'
      end, 4)
      assert.are.same({ 5, 605, 680, 765 }, t)
      assert.are.equal(300, trigger.fast_delay(305, 300))
      assert.are.equal(38, trigger.fast_delay(305, 0))
      -- a probe that takes 3 s: the next one comes 1000 ms after it (the cap)
      fake.reset()
      t = drive(trigger.defaultTrigger, function(i)
        if i == 1 then
          orch.sleep(3000)
        end
        return 'failure'
      end, 2)
      assert.are.same({ 5, 4005 }, t)
    end)

    it('settles on statusTrigger(30000, {starting, waiting, failure = 1000}) after a success',
      function()
        local seq = { 'failure', 'success', 'success', 'failure', 'loading', 'starting',
          'waiting', 'failure' }
        local t = drive(trigger.defaultTrigger, function(i)
          return seq[i]
        end, 9)
        assert.are.same({ 5, 5, 30000, 30000, 1000, 30000, 1000, 1000, 1000 },
          gaps({ 0, table.unpack(t) }))
      end)

    it('keeps the 30 s cadence after the first success, whatever the probes took', function()
      -- first success at 5; the later probes take 2 s each: 30 s after the end of each
      local t = drive(trigger.defaultTrigger, function(i)
        if i >= 2 then
          orch.sleep(2000)
        end
        return 'success'
      end, 4)
      assert.are.same({ 5, 30005, 62005, 94005 }, t)
    end)

    it('is per session: a new instance starts fast again, timed from its own start', function()
      local t1, t2 = {}, {}
      H.run(function()
        local last
        local function input()
          return { lastResult = last }
        end
        local nxt = trigger.defaultTrigger(input)
        for i = 1, 2 do
          assert.is_true(nxt())
          t1[i] = orch.now()
          last = 'success'
        end
        -- a new session 60 s later (the entry restarted): fast again from its own start
        orch.sleep(60000 - orch.now())
        last = 'failure'
        nxt = trigger.defaultTrigger(input)
        for i = 1, 3 do
          assert.is_true(nxt())
          t2[i] = orch.now()
        end
      end, 100000)
      assert.are.same({ 5, 30005 }, t1)
      assert.are.same({ 60005, 60010, 60015 }, t2)
    end)
  end)
end)
