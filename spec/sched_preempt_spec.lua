-- orch.sched deadlines (`sched.start{deadline = ms}`): a task that runs too long without
-- yielding is stopped by the scheduler, on the real core (src/preempt.c) and on the fake core
-- (spec/support/fake_core.lua), which implement the same primitive. Also: only sched.lua drives
-- coroutines, and no C code yields.

-- Busy for `ms` of the clock the core's deadlines use: wall time for the real core, CPU time
-- for the fake one (its own clock is virtual); a loaded machine stretches one but not the other.
local busy_for

local function suite(which, setup)
  describe('sched deadlines on the ' .. which .. ' core', function()
    local sched
    before_each(function()
      sched = setup()
    end)

    it('stops a busy loop past its deadline; others keep running', function()
      sched.run(function()
        local ticks = 0
        local ticker = sched.spawn(function()
          for _ = 1, 3 do
            sched.sleep(1)
            ticks = ticks + 1
          end
        end)
        local t = sched.start({ name = 'busy', quiet = true, deadline = 50 }, function()
          while true do
          end
        end)
        local ok, err = t:wait()
        assert.is_false(ok)
        assert.is_true(t:preempted())
        assert.matches('sched_preempt_spec.lua:%d+: ran for more than 50 ms without yielding',
          err)
        ticker:join()
        assert.equal(3, ticks)
      end, { timeout = 20000 })
    end)

    it('stops a tight loop also while lines are reported (on_line)', function()
      sched.run(function()
        local lines = 0
        local t = sched.start({ quiet = true, deadline = 50, on_line = function()
          lines = lines + 1
        end }, function()
          local n = 0
          while true do
            n = n + 1
          end
        end)
        local ok, err = t:wait()
        assert.is_false(ok)
        assert.matches('ran for more than 50 ms without yielding', err)
        assert.is_true(lines > 0)
      end, { timeout = 20000 })
    end)

    it('a pcall inside the task cannot swallow it', function()
      sched.run(function()
        local caught = 0
        local t = sched.start({ quiet = true, deadline = 30, message = 'too busy' },
          function()
            while true do
              local ok = pcall(function()
                for _ = 1, 1000 do
                end
              end)
              if not ok then
                caught = caught + 1
              end
            end
          end)
        local ok, err = t:wait()
        assert.is_false(ok)
        assert.matches(': too busy', err)
        assert.is_true(t:preempted())
        assert.is_true(caught <= 2, 'caught ' .. caught)
      end, { timeout = 20000 })
    end)

    it('the deadline is per run between two yields', function()
      sched.run(function()
        local t = sched.start({ quiet = true, deadline = 250 }, function()
          for _ = 1, 8 do
            busy_for(40) -- 320 ms in all, never 250 at once
            sched.sleep(1)
          end
          return 'finished'
        end)
        assert.same({ true, 'finished' }, { t:wait() })
        assert.is_false(t:preempted())
      end, { timeout = 20000 })
    end)

    it('tasks it spawns do not inherit its deadline; scope is inherited', function()
      sched.run(function()
        local child, scope
        local t = sched.start({ quiet = true, deadline = 20, scope = 'S' }, function()
          child = sched.spawn(function()
            scope = sched.scope()
            busy_for(60)
            return 'child done'
          end)
          sched.sleep(1)
          return 'parent done'
        end)
        assert.same({ true, 'parent done' }, { t:wait() })
        assert.same({ true, 'child done' }, { child:wait() })
        assert.equal('S', scope)
        assert.is_nil(sched.scope())
      end, { timeout = 20000 })
    end)

    it('reports the lines a task runs outside the library (on_line)', function()
      sched.run(function()
        local lines = {}
        local here = debug.getinfo(1, 'l').currentline
        local t = sched.start({ on_line = function(src, line)
          if src:find('sched_preempt_spec', 1, true) then
            lines[#lines + 1] = line
          end
        end }, function()
          local a = 1
          sched.sleep(1)
          a = a + 1 -- after a yield too
          return a
        end)
        assert.same({ true, 2 }, { t:wait() })
        local seen = {}
        for _, l in ipairs(lines) do
          seen[l] = true
        end
        assert.is_true(seen[here + 6] and seen[here + 8], table.concat(lines, ','))
      end, { timeout = 20000 })
    end)

    -- orch's own code called by main.lua pauses the reports (sched.trace_lines): a hook firing
    -- on every line of the library cost half of evaluating 1000 entries
    it('trace_lines pauses and resumes the reports, across a yield too', function()
      sched.run(function()
        local lines = {}
        local here = debug.getinfo(1, 'l').currentline
        local t = sched.start({ on_line = function(src, line)
          if src:find('sched_preempt_spec', 1, true) then
            lines[#lines + 1] = line
          end
        end }, function()
          local a = 1
          local was = sched.trace_lines(false)
          a = a + 1 -- paused (+8)
          sched.sleep(1)
          a = a + 1 -- paused after the yield too (+10)
          sched.trace_lines(was)
          a = a + 1 -- reported again (+12)
          return a, was
        end)
        assert.same({ true, 4, true }, { t:wait() })
        local seen = {}
        for _, l in ipairs(lines) do
          seen[l] = true
        end
        assert.is_true(seen[here + 6] and seen[here + 12], table.concat(lines, ','))
        assert.is_nil(seen[here + 8] or seen[here + 10], table.concat(lines, ','))
        assert.is_false(sched.trace_lines(true)) -- not a traced task: nothing to do
      end, { timeout = 20000 })
    end)
  end)
end

insulate('real', function()
  suite('real', function()
    local core = require 'orch.core'
    busy_for = function(ms)
      local t0 = core.hrtime()
      while (core.hrtime() - t0) / 1e6 < ms do
      end
    end
    return require 'orch.runtime.sched'
  end)
end)

-- Any hook makes Lua trap every instruction of the coroutine: a task whose lines are reported
-- runs under the line hook alone (no count hook: it doubled the cost of evaluating main.lua),
-- and under no hook at all while the reports are paused.
insulate('real core hooks of a traced task', function()
  it('line hook only; none while paused; a busy loop is still stopped', function()
    local sched = require 'orch.runtime.sched'
    sched.run(function()
      local hooks = {}
      local t = sched.start({ on_line = function() end }, function()
        local _, mask, count = debug.gethook()
        hooks[1] = mask .. '/' .. count
        sched.trace_lines(false)
        hooks[2] = debug.gethook() == nil
        sched.sleep(1) -- re-armed at the resume: still paused
        hooks[3] = debug.gethook() == nil
        sched.trace_lines(true)
        _, mask, count = debug.gethook()
        hooks[4] = mask .. '/' .. count
      end)
      assert.is_true((t:wait()))
      assert.same({ 'l/0', true, true, 'l/0' }, hooks)
    end, { timeout = 20000 })
  end)
end)

insulate('fake', function()
  local fake = require('spec.support.fake_core').new()
  package.loaded['orch.core'] = fake
  package.loaded['orch.runtime.sched'] = nil
  local sched = require 'orch.runtime.sched'
  suite('fake', function()
    busy_for = function(ms)
      local t0 = os.clock()
      while (os.clock() - t0) * 1000 < ms do
      end
    end
    return sched
  end)
end)

describe('coroutine ownership', function()
  local function grep(pattern, files)
    local hits = {}
    for _, f in ipairs(files) do
      local fh = assert(io.open(f))
      local n = 0
      for line in fh:lines() do
        n = n + 1
        if line:find(pattern) and not line:match('^%s*%-%-') then
          hits[#hits + 1] = f .. ':' .. n .. ': ' .. line
        end
      end
      fh:close()
    end
    return hits
  end
  local function ls(cmd)
    local out = {}
    local p = assert(io.popen(cmd))
    for l in p:lines() do
      out[#out + 1] = l
    end
    p:close()
    return out
  end

  it('no C code yields a coroutine', function()
    assert.same({}, grep('lua_yield', ls('ls src/*.c src/*.h')))
  end)

  it('only sched.lua resumes, yields or closes coroutines or sets hooks on them', function()
    local files = {}
    for _, f in ipairs(ls('find lua -name "*.lua"')) do
      -- the simulated core stands in for src/preempt.c: its hooks are the C primitive's
      if not f:match('lua/orch/runtime/sched%.lua$')
        and not f:match('lua/orch/testing/fake_core/preempt%.lua$') then
        files[#files + 1] = f
      end
    end
    assert.same({}, grep('coroutine%.[rcy][eil][soe]', files)) -- resume, close, yield
    assert.same({}, grep('debug%.sethook', files))
  end)
end)
