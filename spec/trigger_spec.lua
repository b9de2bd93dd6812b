-- Triggers on the fake clock (observed.md section 2 timings; DECISIONS default trigger).
local H = require 'spec.support.helpers'

insulate('orch.trigger', function()
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
    it('probes fast until the first success: 50 ms, doubling up to 1000 ms', function()
      local t = drive(trigger.defaultTrigger, function()
        return 'failure'
      end, 9)
      assert.are.same({ 50, 100, 200, 400, 800, 1000, 1000, 1000, 1000 },
        gaps({ 0, table.unpack(t) }))
    end)

    it('settles on statusTrigger(30000, {starting, waiting, failure = 1000}) after a success',
      function()
        local seq = { 'failure', 'success', 'success', 'failure', 'loading', 'failure' }
        local t = drive(trigger.defaultTrigger, function(i)
          return seq[i]
        end, 7)
        assert.are.same({ 50, 100, 30000, 30000, 1000, 30000, 1000 },
          gaps({ 0, table.unpack(t) }))
      end)

    it('is per session: a new instance starts fast again', function()
      local t1 = drive(trigger.defaultTrigger, function()
        return 'success'
      end, 2)
      assert.are.same({ 50, 30050 }, t1)
      fake.reset()
      local t2 = drive(trigger.defaultTrigger, function()
        return 'failure'
      end, 1)
      assert.are.same({ 50 }, t2)
    end)
  end)
end)
