-- orch.sched: tasks, await, events, cancellation, errors.
local core = require 'orch.core'
local sched = require 'orch.runtime.sched'

describe('orch.runtime.sched', function()
  after_each(function()
    collectgarbage()
    assert.equals(0, core.active_count())
  end)

  it('runs a root task and returns its results', function()
    assert.same({ 1, 2 }, { sched.run(function(a)
      sched.sleep(1)
      return a, 2
    end, { timeout = 1000 }, 1) })
  end)

  it('re-raises the root task error with its traceback', function()
    local ok, err = pcall(sched.run, function()
      sched.sleep(1)
      error('boom')
    end, { timeout = 1000 })
    assert.is_false(ok)
    assert.matches('boom', err)
    assert.matches('traceback', err)
  end)

  it('raises a clear error when a yielding function is called outside a task', function()
    assert.has_error(function()
      sched.sleep(1)
    end, 'orch: sleep yields; call it from a task (orch.spawn)')
  end)

  it('times out a run that does not finish', function()
    local ok, err = pcall(sched.run, function()
      sched.sleep(10000)
    end, { timeout = 50 })
    assert.is_false(ok)
    assert.matches('timed out after 50 ms', err)
  end)

  it('detects a root task that nothing can wake', function()
    local ok, err = pcall(sched.run, function()
      sched.event():wait()
    end, { timeout = 1000 })
    assert.is_false(ok)
    assert.matches('nothing can wake it', err)
  end)

  it('lets tasks wait for each other and for events', function()
    local order = {}
    sched.run(function()
      local ev = sched.event()
      local a = sched.spawn(function()
        ev:wait()
        order[#order + 1] = 'a'
        return 'A'
      end)
      local b = sched.spawn(function()
        sched.sleep(5)
        order[#order + 1] = 'b'
        ev:set()
      end)
      assert.same({ true, 'A' }, { a:wait() })
      assert.is_true((b:wait()))
    end, { timeout = 1000 })
    assert.same({ 'b', 'a' }, order)
  end)

  it('returns false from Event:wait on timeout', function()
    sched.run(function()
      assert.is_false(sched.event():wait(5))
    end, { timeout = 1000 })
  end)

  it('cancels a sleeping task and closes its <close> handles', function()
    local closed = false
    sched.run(function()
      local t = sched.spawn(function()
        local _ <close> = setmetatable({}, { __close = function()
          closed = true
        end })
        sched.sleep(10000)
      end)
      sched.sleep(1)
      t:cancel()
      assert.same({ false, 'cancelled' }, { t:wait() })
    end, { timeout = 1000 })
    assert.is_true(closed)
  end)

  it('aborts the primitive a task waits in with sched.ABORTED', function()
    sched.run(function()
      local t = sched.spawn(function()
        local ok, err = pcall(sched.sleep, 10000)
        return ok, err
      end)
      sched.sleep(1)
      t:abort()
      local _, ok, err = t:wait()
      assert.is_false(ok)
      assert.equals(sched.ABORTED, err)
    end, { timeout = 1000 })
  end)

  it('reports a failing detached task without stopping the loop', function()
    local reported
    sched.on_error(function(_, err)
      reported = err
    end)
    sched.run(function()
      sched.spawn(function()
        error('detached failure')
      end)
      sched.sleep(5)
    end, { timeout = 1000 })
    sched.on_error(nil)
    assert.matches('detached failure', reported)
  end)

  it('ignores late calls of done (first call wins)', function()
    sched.run(function()
      local v = sched.await(function(done)
        done(1)
        done(2)
      end)
      assert.equals(1, v)
    end, { timeout = 1000 })
  end)

  it('wakes tasks in FIFO order without re-entrant resumes', function()
    local order = {}
    sched.run(function()
      local ev = sched.event()
      local tasks = {}
      for i = 1, 3 do
        tasks[i] = sched.spawn(function()
          ev:wait()
          order[#order + 1] = i
        end)
      end
      sched.yield()
      ev:set()
      for i = 1, 3 do
        tasks[i]:wait()
      end
    end, { timeout = 1000 })
    assert.same({ 1, 2, 3 }, order)
  end)

  it('Event:on_set calls a plain function once when set, or at once when already set', function()
    local calls = {}
    local ev = sched.event()
    ev:on_set(function()
      calls[#calls + 1] = 'first'
    end)
    assert.same({}, calls)
    ev:set()
    ev:set()
    assert.same({ 'first' }, calls)
    ev:on_set(function()
      calls[#calls + 1] = 'late'
    end)
    assert.same({ 'first', 'late' }, calls)
    ev:clear()
    ev:set()
    assert.same({ 'first', 'late' }, calls)
  end)
end)
