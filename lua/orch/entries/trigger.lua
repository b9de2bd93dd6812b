--- Triggers: when the next readiness probe runs.
-- A trigger is `function(getInput) -> next`, called once per health session (each time an entry
-- starts running). `next()` blocks (it may sleep; it runs inside the probe task) and returns
-- true to run a probe now, or false/nil to end probing for the session. `getInput()` returns
-- `{lastResult = <raw result>}`. The sleep is chosen when `next()` is called, i.e. measured from
-- the end of the previous probe and its report (cooldown semantics), as upstream.
--
-- `defaultTrigger` is orch's "fast until first success" (DECISIONS): probes 5 ms apart at
-- first, then at 1/8 of the time since launch, up to one per second, until the first
-- `success` of the session, afterwards
-- `statusTrigger(30000, {starting = 1000, waiting = 1000, failure = 1000})`. The upstream
-- triggers keep the seed's quirks (observed.md section 2).
-- @module orch.entries.trigger
local sched = require 'orch.runtime.sched'
local util = require 'orch.runtime.util'

local M = {}

--- Factories, so validation can tell `trigger = trigger.cooldownTrigger` (forgot to call it).
M._factories = {}

-- What each trigger made here is (weak keys): `orch export` maps a cadence to the engines'
-- probe periods; a trigger written by hand has none.
local DESCRIBED = setmetatable({}, { __mode = 'k' })

local function described(d, trigger)
  DESCRIBED[trigger] = d
  return trigger
end

--- What `trigger` is, for exporters: `{name = 'cooldownTrigger', ms = 1000}`,
-- `{name = 'statusTrigger', defaultMs = ..., intervals = {...}}`, `{name = 'changeOnFirstSuccess',
-- before = d, after = d}`, `{name = 'lastStatus', triggers = {result = d, default = d}}`,
-- `{name = 'defaultTrigger'}`; nil for a trigger written by hand. A copy: changing it changes
-- nothing.
function M.describe(trigger)
  local d = DESCRIBED[trigger]
  return d and util.deep_copy(d) or nil
end

local STATUS_KEYS = {
  success = true, failure = true, starting = true, waiting = true, loading = true,
  disabled = true,
}

local function check_ms(fname, n, v, level)
  local bad, shown = util.check_ms(v, 0, true)
  if bad then
    util.bad_argument(n, fname, 'non-negative number of ms expected, got ' .. shown, level + 1)
  end
end

local function check_trigger(fname, name, v, level)
  if type(v) ~= 'function' then
    util.bad_argument(1, fname, ('%s must be a trigger, got %s'):format(name, type(v)), level + 1)
  end
  if M._factories[v] then
    util.bad_argument(1, fname, ('%s is trigger.%s itself; call it, e.g. %s'):format(name,
      M._factories[v][1], M._factories[v][2]), level + 1)
  end
end

--- Sleep `ms` before every probe.
-- @tparam number ms
-- @treturn function a trigger
function M.cooldownTrigger(ms)
  check_ms('cooldownTrigger', 1, ms, 2)
  return described({ name = 'cooldownTrigger', ms = ms }, function(_)
    return function()
      sched.sleep(ms)
      return true
    end
  end)
end

--- Sleep `intervals[lastResult]`, else `defaultMs`, before every probe (read before sleeping).
-- With no `lastResult` yet, sleep `intervals.starting` or `defaultMs` (upstream `statusTrigger`).
-- @tparam number defaultMs
-- @tparam[opt] table intervals `{success = ms, failure = ms, ...}`
-- @treturn function a trigger
function M.statusTrigger(defaultMs, intervals)
  check_ms('statusTrigger', 1, defaultMs, 2)
  intervals = intervals or {}
  if type(intervals) ~= 'table' then
    util.bad_argument(2, 'statusTrigger', 'table expected, got ' .. type(intervals))
  end
  local copy = {}
  for k, v in pairs(intervals) do
    if not STATUS_KEYS[k] then
      util.bad_argument(2, 'statusTrigger', ("unknown result '%s'"):format(tostring(k)))
    end
    check_ms('statusTrigger', 2, v, 2)
    copy[k] = v
  end
  return described({ name = 'statusTrigger', defaultMs = defaultMs, intervals = copy },
    function(getInput)
    return function()
      local last = getInput().lastResult
      local ms
      if last == nil then
        ms = copy.starting or defaultMs
      else
        ms = copy[last] or defaultMs
      end
      sched.sleep(ms)
      return true
    end
  end)
end

--- Seed `changeOnFirstSuccess{beforeFirstSuccess = trigger, afterFirstSuccess = trigger}`.
-- Ticks with the `before` trigger until a success is seen, then with `after` for ever. The seed's
-- quirk is kept: the success is noticed only after one more `before` tick, so with
-- cooldown(1000) / cooldown(30000) the probe after the first success comes 31 s later.
-- @tparam table o
-- @treturn function a trigger
function M.changeOnFirstSuccess(o)
  if type(o) ~= 'table' then
    util.bad_argument(1, 'changeOnFirstSuccess', 'table expected, got ' .. type(o))
  end
  for k in pairs(o) do
    if k ~= 'beforeFirstSuccess' and k ~= 'afterFirstSuccess' then
      util.bad_argument(1, 'changeOnFirstSuccess', 'unknown option ' .. tostring(k))
    end
  end
  check_trigger('changeOnFirstSuccess', 'beforeFirstSuccess', o.beforeFirstSuccess, 2)
  check_trigger('changeOnFirstSuccess', 'afterFirstSuccess', o.afterFirstSuccess, 2)
  local before_t, after_t = o.beforeFirstSuccess, o.afterFirstSuccess
  return described({ name = 'changeOnFirstSuccess', before = DESCRIBED[before_t] or false,
    after = DESCRIBED[after_t] or false }, function(getInput)
    local phase = 'init'
    local before, after
    return function()
      local current = getInput()
      if phase == 'init' then
        if not current.lastResult then
          return true -- upstream yields at once while there is no result yet
        end
        phase = 'before'
        before = before_t(getInput)
      end
      if phase == 'before' then
        local ok = before()
        if ok and current.lastResult ~= 'success' then
          return true
        end
        phase = 'after'
        after = after_t(getInput)
      end
      return after()
    end
  end)
end

--- Seed `lastStatus{success = trigger, failure = trigger, ..., default = trigger}`: each tick
-- uses the trigger of the current result (created lazily, once per result), else `default`.
-- A sub-trigger that ends ends probing (upstream would spin on it).
-- @tparam table o
-- @treturn function a trigger
function M.lastStatus(o)
  if type(o) ~= 'table' then
    util.bad_argument(1, 'lastStatus', 'table expected, got ' .. type(o))
  end
  for k, v in pairs(o) do
    if k ~= 'default' and not STATUS_KEYS[k] then
      util.bad_argument(1, 'lastStatus', ("unknown result '%s'"):format(tostring(k)))
    end
    check_trigger('lastStatus', k, v, 2)
  end
  if o.default == nil then
    util.bad_argument(1, 'lastStatus', 'default is required')
  end
  local subs, ds = {}, {}
  for k, v in pairs(o) do
    subs[k], ds[k] = v, DESCRIBED[v] or false
  end
  return described({ name = 'lastStatus', triggers = ds }, function(getInput)
    local instances = {}
    return function()
      local last = getInput().lastResult
      if not last then
        return true
      end
      local key = subs[last] and last or 'default'
      local inst = instances[key]
      if not inst then
        inst = subs[key](getInput)
        instances[key] = inst
      end
      return inst() and true or false
    end
  end)
end

--- Seed `successFailure{duringSuccess = trigger, duringError = trigger}` =
-- `lastStatus{success = duringSuccess, default = duringError}`.
-- @tparam table o
-- @treturn function a trigger
function M.successFailure(o)
  if type(o) ~= 'table' then
    util.bad_argument(1, 'successFailure', 'table expected, got ' .. type(o))
  end
  for k in pairs(o) do
    if k ~= 'duringSuccess' and k ~= 'duringError' then
      util.bad_argument(1, 'successFailure', 'unknown option ' .. tostring(k))
    end
  end
  check_trigger('successFailure', 'duringSuccess', o.duringSuccess, 2)
  check_trigger('successFailure', 'duringError', o.duringError, 2)
  return M.lastStatus { success = o.duringSuccess, default = o.duringError }
end

--- The default trigger's fast phase: the delay before each probe is 1/FAST_RATIO of the time
-- since the session started (so a probe is never more than 1/8 of that time late), at least
-- FAST_MIN_MS, and never shorter than the previous probe took (so that a slow probe cannot
-- take more than half of the time), at most FAST_MAX_MS. A doubling schedule (50, 100, 200 ms ...)
-- finds a listener that binds 51 ms after launch at 150 ms: each link of a dependency chain
-- paid up to twice its start time.
M.FAST_MIN_MS = 5
M.FAST_RATIO = 8
M.FAST_MAX_MS = 1000
local settled = M.statusTrigger(30000, { starting = 1000, waiting = 1000, failure = 1000 })

--- The delay of the fast phase `elapsed` ms into a session after a probe that took `took` ms.
function M.fast_delay(elapsed, took)
  local d = math.max(M.FAST_MIN_MS, elapsed // M.FAST_RATIO, took or 0)
  return math.min(d, M.FAST_MAX_MS)
end

--- The default trigger: fast until the first success of the session (see FAST_RATIO), then
-- `statusTrigger(30000, {starting = 1000, waiting = 1000, failure = 1000})`.
function M.defaultTrigger(getInput)
  local start = sched.now()
  local returned -- when the previous probe was let go: `now - returned` is what it took
  local after
  return function()
    if not after then
      if getInput().lastResult == 'success' then
        after = settled(getInput)
      else
        local now = sched.now()
        sched.sleep(M.fast_delay(now - start, returned and now - returned))
        returned = sched.now()
        return true
      end
    end
    return after()
  end
end

DESCRIBED[M.defaultTrigger] = { name = 'defaultTrigger' }

M._factories[M.cooldownTrigger] = { 'cooldownTrigger', 'cooldownTrigger(1000)' }
M._factories[M.statusTrigger] = { 'statusTrigger', 'statusTrigger(30000, {failure = 1000})' }
M._factories[M.changeOnFirstSuccess] = { 'changeOnFirstSuccess',
  'changeOnFirstSuccess{beforeFirstSuccess = ..., afterFirstSuccess = ...}' }
M._factories[M.lastStatus] = { 'lastStatus', 'lastStatus{default = ...}' }
M._factories[M.successFailure] = { 'successFailure',
  'successFailure{duringSuccess = ..., duringError = ...}' }

return M
