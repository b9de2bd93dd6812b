--- Coroutine scheduler: tasks, await, sleep, events, cancellation.
-- This is the only module that resumes, yields or closes coroutines, or sets hooks on them.
-- C never resumes or yields one: the core calls plain Lua callbacks on the main thread, and
-- `await` turns one of those callbacks into the resumption of a task.
--
-- Preemption: a task started with a `deadline` (`sched.start{deadline = ms}`) may run at most
-- that long between two yields. The core's hook (core.preempt) raises an error inside it past
-- the deadline, again at each of its instructions so that a `pcall` cannot swallow it, never
-- inside orch's own modules; the scheduler re-arms the deadline at each resume, and a task
-- found preempted after a resume ends as failed (closed if library code had caught the error
-- and yielded). `task:preempted()` says whether that happened.
--
-- Wake-ups are queued and drained in FIFO order from the outermost resume, so a task never
-- resumes another one directly (no "cannot resume non-suspended coroutine").
-- Over the guide's 400 lines on purpose: DECISIONS makes this the one module that resumes,
-- yields or closes coroutines, so tasks, await, events, cancellation and the preemption deadline
-- live together; cut apart, the coroutine invariants would span files.
-- @module orch.runtime.sched
local core = require 'orch.core'

local M = {}

--- The error value raised inside a task by `await` once the task has been aborted.
M.ABORTED = setmetatable({ message = 'aborted' }, {
  __tostring = function()
    return 'aborted'
  end,
})

local Task = {}
Task.__index = Task
M.Task = Task

local by_co = setmetatable({}, { __mode = 'k' }) -- coroutine -> Task

-- The source prefix of orch's own modules (`@<dir>/orch/`): a deadline is never enforced
-- inside them (stopping the scheduler's bookkeeping half-way would corrupt it).
M.LIB_SOURCE = debug.getinfo(1, 'S').source:match('^(@.*/orch/)runtime/[^/]*$')
local queue, qhead, qtail = {}, 1, 0 -- pending resumptions: {task, args}
local draining = false

local function default_error_handler(task, err)
  io.stderr:write(('orch: error: task %s failed: %s\n'):format(task.name, tostring(err)))
  io.stderr:flush()
end
local error_handler = default_error_handler

--- Set the function that reports a failed task nobody waits for (`fn(task, err)`).
function M.on_error(fn)
  error_handler = fn or default_error_handler
end

local function finish(task, status, ...)
  task.status = status
  task.results = table.pack(...)
  local waiters = task._waiters
  task._waiters = nil
  if status == 'failed' and (waiters == nil or #waiters == 0) and not task.quiet then
    error_handler(task, task.results[1])
  end
  for _, w in ipairs(waiters or {}) do
    w()
  end
end

-- Resume `task` with `args`; never raises: a failure is recorded on the task.
local function step(task, args)
  if task.status ~= 'suspended' then
    return
  end
  task.status = 'running'
  local co = task.co
  local deadline = task.deadline
  if deadline then
    core.preempt(co, deadline) -- re-armed: the limit is per run between two yields
  end
  local res = table.pack(coroutine.resume(co, table.unpack(args, 1, args.n)))
  if deadline and core.preempted(co) then
    task._preempted = true
    core.preempt(co, nil)
    task.deadline = nil
    if coroutine.status(co) ~= 'dead' then
      -- library code caught the error and yielded: the task still ends here
      coroutine.close(co)
      finish(task, 'failed', task.preempt_message)
      return
    end
  end
  if coroutine.status(co) == 'dead' then
    if res[1] then
      finish(task, 'done', table.unpack(res, 2, res.n))
    else
      local err = res[2]
      if type(err) == 'string' or err == nil then
        err = debug.traceback(co, err)
      end
      coroutine.close(co)
      if task._cancel_pending then
        finish(task, 'cancelled', 'cancelled')
      else
        finish(task, 'failed', err)
      end
    end
  else
    task.status = 'suspended'
    if task._cancel_pending then
      task:cancel()
    end
  end
end

local function drain()
  if draining then
    return
  end
  draining = true
  while qhead <= qtail do
    local item = queue[qhead]
    queue[qhead] = nil
    qhead = qhead + 1
    step(item[1], item[2])
  end
  qhead, qtail = 1, 0
  draining = false
end

-- Queue a resumption of `task`; drain at once unless a drain is already in progress.
local function wake(task, ...)
  qtail = qtail + 1
  queue[qtail] = { task, table.pack(...) }
  drain()
end

--- The running task, or nil on the main thread.
function M.current()
  local co = coroutine.running()
  return by_co[co]
end

local function new_task(fn, name)
  local co = coroutine.create(fn)
  if debug.gethook() then
    debug.sethook(co) -- a coroutine inherits its creator's hook (a deadline, a line hook)
  end
  local parent = by_co[coroutine.running()]
  local task = setmetatable({
    co = co,
    status = 'suspended',
    name = name or tostring(fn):gsub('^function: ', ''),
    scope = parent and parent.scope,
  }, Task)
  by_co[co] = task
  return task
end

--- Start `fn(...)` as a new task; it first runs once the current task yields (or at once when
-- called from the main thread). `sched.spawn(name, fn, ...)` names it.
-- @treturn Task
function M.spawn(fn, ...)
  if type(fn) == 'string' then
    local name, f = fn, ...
    assert(type(f) == 'function', 'sched.spawn: function expected')
    local task = new_task(f, name)
    wake(task, select(2, ...))
    return task
  end
  assert(type(fn) == 'function', 'sched.spawn: function expected')
  local task = new_task(fn)
  wake(task, ...)
  return task
end

--- Start `fn(...)` as a new task with options:
--   name; quiet (a failure nobody waits for is not reported);
--   deadline (ms): the longest the task may run between two yields; past it an error
--     `<where>: <message>` is raised inside it (see the module comment) and `task:preempted()`
--     is true;
--   message: that error's text (default `ran for more than <deadline> ms without yielding`);
--   on_line: function(source, line) called for each line the task runs outside orch's modules
--     (the one hook a coroutine has is the scheduler's, so line tracing goes through it);
--   scope: any value, inherited by the tasks it spawns (`sched.scope()`).
-- @treturn Task
function M.start(opts, fn, ...)
  assert(type(opts) == 'table', 'sched.start: options table expected')
  assert(type(fn) == 'function', 'sched.start: function expected')
  local task = new_task(fn, opts.name)
  task.quiet = opts.quiet
  if opts.scope ~= nil then
    task.scope = opts.scope
  end
  local d = opts.deadline
  if d or opts.on_line then
    assert(d == nil or (math.type(d) == 'integer' and d > 0),
      'sched.start: deadline must be a positive integer (ms)')
    task.deadline = d or math.maxinteger // 1000000
    task.preempt_message = opts.message
      or ('ran for more than %d ms without yielding'):format(task.deadline)
    core.preempt(task.co, task.deadline, { message = task.preempt_message,
      spared = M.LIB_SOURCE, on_line = opts.on_line })
  end
  wake(task, ...)
  return task
end

--- Pause (`on` false) or resume the `on_line` reports of the running task (see `start`);
-- returns whether they were on (false outside a task with `on_line`). Library code called by a
-- traced script pauses them while it runs: the hook would otherwise fire on its every line.
function M.trace_lines(on)
  local co, is_main = coroutine.running()
  if is_main or not by_co[co] then
    return false
  end
  return core.preempt_lines(co, on)
end

--- The scope of the running task (see `start`), or nil.
function M.scope()
  local task = by_co[coroutine.running()]
  return task and task.scope
end

local function check_yieldable(what)
  local co, is_main = coroutine.running()
  if is_main or not coroutine.isyieldable() or not by_co[co] then
    error(('orch: %s yields; call it from a task (orch.spawn)'):format(what), 3)
  end
  return by_co[co]
end

--- Suspend the running task until `start(done)` calls `done(...)` (yields).
-- The first call of `done` wins; later calls are ignored, so an operation can race a timeout.
-- Raises `sched.ABORTED` when the task is aborted while it waits.
-- @async
function M.await(start, what)
  local task = check_yieldable(what or 'await')
  if task._aborted then
    error(M.ABORTED, 0)
  end
  local results, waiting = nil, false
  start(function(...)
    if results then
      return
    end
    results = table.pack(...)
    if waiting then
      waiting = false
      wake(task)
    end
  end)
  if not results then
    waiting = true
    task._waiting = function()
      waiting = false
    end
    coroutine.yield()
    task._waiting = nil
    if not results then -- woken by abort()
      error(M.ABORTED, 0)
    end
  end
  return table.unpack(results, 1, results.n)
end

--- Sleep for `ms` milliseconds (yields).
-- @async
function M.sleep(ms)
  local timer <close> = core.timer()
  return M.await(function(done)
    timer:start(math.max(0, math.floor(ms)), 0, done)
  end, 'sleep')
end

--- Let other ready tasks run first (yields).
-- @async
function M.yield()
  return M.sleep(0)
end

--- Loop time in milliseconds.
function M.now()
  return core.now()
end

--- Wait until the task ends (yields); returns `true, results...` or `false, err`.
-- Called from the main thread on a finished task it returns at once.
-- @async
function Task:wait()
  if self.status == 'suspended' or self.status == 'running' then
    M.await(function(done)
      self._waiters = self._waiters or {}
      table.insert(self._waiters, done)
    end, 'Task:wait')
  end
  if self.status == 'done' then
    return true, table.unpack(self.results, 1, self.results.n)
  end
  return false, self.results[1]
end

--- Wait until the task ends and return its results, re-raising its error (yields).
-- @async
function Task:join()
  local res = table.pack(self:wait())
  if not res[1] then
    error(res[2], 0)
  end
  return table.unpack(res, 2, res.n)
end

--- True when the task ran past its deadline without yielding (and was stopped for it).
function Task:preempted()
  return self._preempted == true
end

--- True once the task has finished (done, failed or cancelled).
function Task:finished()
  return self.status ~= 'suspended' and self.status ~= 'running'
end

--- Stop the task now: its pending `<close>` variables are closed and its waiters see
-- `false, 'cancelled'`. Cancelling the running task takes effect at its next yield.
function Task:cancel()
  if self.status == 'running' then
    self._cancel_pending = true
    return
  end
  if self.status ~= 'suspended' then
    return
  end
  local ok, err = coroutine.close(self.co)
  if ok then
    finish(self, 'cancelled', 'cancelled')
  else
    finish(self, 'failed', err)
  end
end

--- Make the primitive the task waits in raise `sched.ABORTED`, so the task can clean up.
function Task:abort()
  self._aborted = true
  if self.status == 'suspended' and self._waiting then
    self._waiting()
    wake(self)
  end
end

--- An event tasks can wait for.
local Event = {}
Event.__index = Event

--- A new, unset event.
function M.event()
  return setmetatable({ is_set = false }, Event) -- _waiters: made by the first waiter
end

local NO_VALUE = { n = 0 } -- the value of an event set without one (shared, read only)

local function add_waiter(ev, fn)
  local w = ev._waiters
  if not w then
    w = {}
    ev._waiters = w
  end
  w[#w + 1] = fn
end

--- Set the event and wake every waiter.
function Event:set(...)
  if self.is_set then
    return
  end
  self.is_set = true
  self.value = select('#', ...) > 0 and table.pack(...) or NO_VALUE
  local waiters = self._waiters
  self._waiters = nil
  for _, w in ipairs(waiters or {}) do
    w()
  end
end

--- Call `fn()` (a plain function: it must not yield) when the event is set; at once if it is.
-- Lets an object react to an event without a task waiting for it.
function Event:on_set(fn)
  if self.is_set then
    fn()
  else
    add_waiter(self, fn)
  end
end

function Event:clear()
  self.is_set = false
  self.value = nil
end

--- Wait until the event is set (yields); `timeout_ms` optional: returns false on timeout.
-- @async
function Event:wait(timeout_ms)
  if self.is_set then
    return true
  end
  local timer <close> = timeout_ms and core.timer() or nil
  return M.await(function(done)
    add_waiter(self, function()
      done(true)
    end)
    if timer then
      timer:start(math.max(0, math.floor(timeout_ms)), 0, function()
        done(false)
      end)
    end
  end, 'Event:wait')
end

--- Run `fn(...)` as the root task and drive the loop until it ends; returns its results or
-- raises its error. `opts.timeout` (ms) bounds the whole run.
function M.run(fn, opts, ...)
  opts = opts or {}
  local root = M.spawn(fn, ...)
  root.quiet = true
  local watchdog <close> = opts.timeout and core.timer() or nil
  local timed_out = false
  if watchdog then
    watchdog:start(opts.timeout, 0, function()
      timed_out = true
      core.stop()
    end)
    watchdog:unref() -- the watchdog alone must not keep a finished loop running
  end
  root._waiters = root._waiters or {}
  table.insert(root._waiters, function()
    core.stop()
  end)
  while not root:finished() and not timed_out do
    if not core.run('default') and not root:finished() then
      break
    end
  end
  if timed_out and not root:finished() then
    root:cancel()
    error(('sched.run: timed out after %d ms'):format(opts.timeout), 2)
  end
  if not root:finished() then
    root:cancel()
    error('sched.run: the root task is suspended and nothing can wake it', 2)
  end
  if root.status == 'done' then
    return table.unpack(root.results, 1, root.results.n)
  end
  error(root.results[1], 0)
end

return M
