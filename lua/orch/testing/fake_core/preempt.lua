--- The fake core's preemption (orch.testing.fake_core): the same primitive as src/preempt.c
-- (core.preempt / core.preempted / core.preempt_lines), as a Lua hook on the coroutine. A busy
-- loop does not move the virtual clock, so the deadline is measured in CPU time (os.clock), from
-- the first call of the hook after a resume (at most 10000 instructions in): most resumes end
-- before it, and cost no clock reading at all.
-- @module orch.testing.fake_core.preempt
local M = {}

--- Add core.preempt, core.preempt_lines and core.preempted to `fake`. The coroutines' states
-- are kept here, not in the shared state: `fake.reset()` leaves them alone.
function M.install(fake)
  local preempt_states = setmetatable({}, { __mode = 'k' })

  -- One hook for every coroutine (it finds its state by the running coroutine): a state never
  -- refers to its coroutine, so the weak table lets finished ones go at once.
  local function hook(event, line)
    local co = coroutine.running()
    local s = preempt_states[co]
    if not s then
      return
    end
    local info = debug.getinfo(2, 'S')
    local spared = s.spared and info and info.source:sub(1, #s.spared) == s.spared
    if event == 'line' and s.on_line and not spared then
      s.on_line(info.source, line)
    end
    if not s.preempted then
      local now = os.clock() * 1000
      s.t0 = s.t0 or now
      if now - s.t0 <= s.ms or spared then
        return
      end
      s.preempted, s.hook_preempted = true, true
      debug.sethook(co, hook, (s.on_line and not s.lines_off) and 'l' or '', 1)
    elseif spared then
      return
    end
    local where = debug.getinfo(2, 'Sl')
    local pos = where and where.currentline > 0
      and (where.short_src .. ':' .. where.currentline .. ': ') or ''
    error(pos .. (s.message or 'ran past its deadline without yielding'), 0)
  end

  function fake.preempt(co, ms, opts)
    assert(type(co) == 'thread', "bad argument #1 to 'preempt' (coroutine expected)")
    if ms == nil then
      preempt_states[co] = nil
      debug.sethook(co)
      return
    end
    assert(math.type(ms) == 'integer' and ms > 0,
      "bad argument #2 to 'preempt' (positive number of ms expected)")
    assert(opts == nil or type(opts) == 'table', "bad argument #3 to 'preempt'")
    local s = preempt_states[co] or {}
    preempt_states[co] = s
    if opts then
      s.message, s.spared, s.on_line = opts.message, opts.spared, opts.on_line
    end
    s.ms, s.t0, s.preempted = ms, nil, false
    -- the hook is set again only when it changed (a re-arm at each resume is the common case)
    local mask = (s.on_line and not s.lines_off) and 'l' or ''
    if not s.set or s.mask ~= mask or s.hook_preempted or debug.gethook(co) ~= hook then
      s.set, s.mask, s.hook_preempted = true, mask, false
      debug.sethook(co, hook, mask, 10000)
    end
  end

  -- core.preempt_lines(co, on): pause (false) or resume (true) the on_line reports of `co`;
  -- returns whether they were on.
  function fake.preempt_lines(co, on)
    assert(type(co) == 'thread', "bad argument #1 to 'preempt_lines' (coroutine expected)")
    local s = preempt_states[co]
    if not s then
      return false
    end
    local was = s.on_line ~= nil and not s.lines_off
    s.lines_off = not on or nil
    if not s.preempted then
      local mask = (s.on_line and not s.lines_off) and 'l' or ''
      s.set, s.mask, s.hook_preempted = true, mask, false
      debug.sethook(co, hook, mask, 10000)
    end
    return was
  end

  function fake.preempted(co)
    assert(type(co) == 'thread', "bad argument #1 to 'preempted' (coroutine expected)")
    local s = preempt_states[co]
    return s ~= nil and s.preempted == true
  end
end

return M
