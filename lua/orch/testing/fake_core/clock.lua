--- The fake core's virtual clock (orch.testing.fake_core): timers, the loop (`run`, `step`,
-- `stop`) and the time readings (`now`, `hrtime`). Time is virtual: `run()` fires timers in due
-- order (ties in start order) and jumps the clock, so a 30 s backoff costs nothing. Callbacks
-- (timers, exits, output, probes) are delivered from `run()`, never synchronously from the call
-- that caused them, as libuv does: the other parts schedule them with `fake._at(ms, fn)`.
-- @module orch.testing.fake_core.clock
local M = {}

--- Add the timers and the loop to `fake`; `state` is the fake's shared state (its clock
-- fields: now, seq, timers, heap, hn, stopped, limit, max_events).
function M.install(fake, state)
  -- A binary heap of {due, seq, t}: an entry is stale once its timer was stopped or re-armed
  -- (its seq moved on). O(log n) per event: 50 entries for an hour is ~200k events.
  local function heap_push(t)
    local h = state.heap
    local n = state.hn + 1
    state.hn = n
    local due, seq = t.due, t.seq
    local e = { due = due, seq = seq, t = t }
    while n > 1 do
      local up = n // 2
      local p = h[up]
      if due < p.due or (due == p.due and seq < p.seq) then
        h[n] = p
        n = up
      else
        break
      end
    end
    h[n] = e
  end

  local function heap_pop()
    local h, n = state.heap, state.hn
    local last = h[n]
    h[n] = nil
    n = n - 1
    state.hn = n
    if n == 0 then
      return
    end
    local due, seq = last.due, last.seq
    local i = 1
    while true do
      local l = 2 * i
      if l > n then
        break
      end
      local c = h[l]
      local r = l + 1
      if r <= n then
        local rc = h[r]
        if rc.due < c.due or (rc.due == c.due and rc.seq < c.seq) then
          c, l = rc, r
        end
      end
      if c.due < due or (c.due == due and c.seq < seq) then
        h[i] = c
        i = l
      else
        break
      end
    end
    h[i] = last
  end

  -- The earliest armed timer (unref'd ones too), or nil.
  local function first()
    local h = state.heap
    while state.hn > 0 do
      local e = h[1]
      if e.t.on and e.t.seq == e.seq then
        return e.t
      end
      heap_pop()
    end
    return nil
  end

  local Timer = {}
  Timer.__index = Timer
  Timer.__name = 'orch.timer'

  function Timer:start(timeout, rep, cb)
    assert(not self.closed, 'fake timer: closed')
    assert(type(cb) == 'function', 'fake timer: callback expected')
    state.seq = state.seq + 1
    self.due, self.rep, self.cb, self.seq, self.on = state.now + math.max(0, timeout), rep, cb,
      state.seq, true
    state.timers[self] = true
    heap_push(self)
  end

  function Timer:stop()
    self.on = false
    state.timers[self] = nil
  end

  function Timer:close()
    self:stop()
    self.closed = true
  end

  function Timer:active()
    return self.on == true
  end

  --- An unref'd timer does not keep `run()` going on its own (like uv_unref).
  function Timer:unref()
    self.unrefd = true
  end

  Timer.__close = Timer.close

  function fake.timer()
    return setmetatable({}, Timer)
  end

  -- An internal one-shot event at now + ms.
  local function at(ms, fn)
    local t = fake.timer()
    t.internal = true
    t:start(ms, 0, fn)
    return t
  end
  fake._at = at

  local function earliest()
    local alive
    for t in pairs(state.timers) do
      if not t.unrefd then
        alive = true
        break
      end
    end
    if not alive then
      return nil
    end
    return first()
  end

  -- Fire the due timer `t` at the current time: re-armed when it repeats, stopped otherwise,
  -- then its callback; an error in it ends the run with its traceback.
  local function fire(t)
    if t.rep and t.rep > 0 then
      state.seq = state.seq + 1
      t.due, t.seq = state.now + t.rep, state.seq
      heap_push(t)
    else
      t:stop()
    end
    local ok, err = xpcall(t.cb, debug.traceback)
    if not ok then
      error(err, 0)
    end
  end

  function fake.run(mode)
    state.stopped = false
    local n = 0
    while true do
      local t = earliest()
      if not t then
        return false
      end
      if mode == 'nowait' and t.due > state.now then
        return true
      end
      if t.due > state.now then
        state.now = t.due
      end
      if state.now > state.limit then
        error(('fake_core: virtual time limit of %d ms exceeded'):format(state.limit), 0)
      end
      fire(t)
      n = n + 1
      if n > state.max_events then
        error('fake_core: too many events in one run (a busy loop?)', 0)
      end
      if state.stopped or mode == 'once' then
        return earliest() ~= nil
      end
    end
  end

  function fake.stop()
    state.stopped = true
  end

  --- The due time of the next timer (unref'd ones too), or nil when none is armed.
  function fake.next_due()
    local t = first()
    return t and t.due
  end

  --- Fire the next timer (the clock jumps to it); false when none is armed. orch.testing
  -- drives the world with it, one event at a time.
  function fake.step()
    local best = first()
    if not best then
      return false
    end
    state.now = math.max(state.now, best.due)
    fire(best)
    return true
  end

  --- Let the clock reach `t` with nothing happening (never backwards).
  function fake.idle_until(t)
    state.now = math.max(state.now, t)
  end

  function fake.now()
    return state.now
  end

  function fake.update_time()
  end

  function fake.hrtime()
    return state.now * 1000000
  end

  --- Active non-internal timers (leak check).
  function fake.active_timers()
    local n = 0
    for t in pairs(state.timers) do
      if not t.internal then
        n = n + 1
      end
    end
    return n
  end

  function fake.active_count()
    local n = 0
    for _ in pairs(state.timers) do
      n = n + 1
    end
    return n
  end
end

return M
