--- Running a chain until every entry is `success` at once (`runUntilSuccess`, the SDK's way to
-- run a oneshot set-up): the chain observes its entries (`entry_changed`), gives up early when
-- one is failed or blocked (it will never be ready, and says why), and raises a TimeoutError
-- naming each pending entry's last result, last exit and restarts. Installed as methods of
-- `Daemons` by orch.graph.daemons.
-- @module orch.graph.until_success
local sched = require 'orch.runtime.sched'
local util = require 'orch.runtime.util'

local M = {}

-- The methods this file adds (`install` copies them onto the class).
local Daemons = {}

-- Given by `install`: `check_self(self, fname)` and `evaluating()` of orch.graph.daemons.
local check_self, evaluating

--- An entry's result changed (its HealthDaemon calls it): a `runUntilSuccess` waiting for
-- every entry at once looks again; it fails at once when an entry is failed or blocked (it
-- will never be ready).
function Daemons:entry_changed(hd)
  local ev = self._success_ev
  if not ev or ev.is_set then
    return
  end
  if hd and hd:blocker() then
    ev:set('failed', hd)
  elseif self:_all_success() then
    ev:set('success')
  end
end

function Daemons:_all_success()
  for _, hd in ipairs(self._hds or {}) do
    if not hd:satisfied() then
      return false
    end
  end
  return true
end

local TimeoutError = {}
TimeoutError.__index = TimeoutError
TimeoutError.__tostring = function(self)
  return self.message
end

local function describe_exit(last)
  if not last then
    return 'none'
  end
  return last.message or (last.signal and ('signal ' .. last.signal))
    or ('code ' .. tostring(last.code))
end

-- Why `hd` (failed or blocked) will never be ready, from the failed entry up to it:
-- `a failed: gave up after ...; b, c blocked`.
function Daemons:_cause(hd)
  local root = self._by_id[hd:blocker()]
  local blocked, seen, i = {}, { [root] = true }, 0
  local queue = { root }
  while i < #queue do -- everything that requires root, directly or not, breadth first
    i = i + 1
    for _, d in ipairs(queue[i].dependents) do
      if not seen[d] then
        seen[d] = true
        queue[#queue + 1] = d
        blocked[#blocked + 1] = d.id
      end
    end
  end
  local msg = ('%s failed: %s'):format(root.id, tostring(root:failed()))
  if #blocked > 0 then
    msg = msg .. ('; blocked: %s'):format(table.concat(blocked, ', '))
  end
  return msg
end

function Daemons:_timeout_error(prefix, code)
  local ids, entries, lines = {}, {}, {}
  for _, hd in ipairs(self._hds) do
    if not hd:satisfied() then
      local s = hd:snapshot()
      ids[#ids + 1] = hd.id
      entries[#entries + 1] = s
      local result = s.result
      if s.message and s.message ~= '' then
        result = ('%s "%s"'):format(result, s.message)
      end
      lines[#lines + 1] = ('  %s: %s; last exit: %s; restarts: %d'):format(hd.id, result,
        describe_exit(s.lastExit), s.restarts)
    end
  end
  local msg = prefix .. table.concat(ids, ',')
  if #lines > 0 then
    msg = msg .. '\n' .. table.concat(lines, '\n')
  end
  return setmetatable({ code = code, message = msg, ids = ids, entries = entries },
    TimeoutError)
end

--- Build, wait until every entry is `success` at the same time, then `term()` and return true
-- (yields). On timeout, `term()` and then raise an error (a table with `code = 'timeout'`,
-- `message`, `ids`, `entries`, whose tostring is the message): `Timed out waiting for <ids>`
-- followed by each pending entry's last result, last exit and restart count. When another task
-- calls `term()` meanwhile, the same error with `code = 'terminated'` (`Terminated while
-- waiting for <ids>`) is raised once the shutdown is done.
-- @tparam[opt] number timeout ms; nil, false or 0 waits for ever
-- @tparam[opt] table opts the options of `build`
-- @treturn boolean true
-- @async
function Daemons:runUntilSuccess(timeout, opts)
  check_self(self, 'runUntilSuccess')
  if timeout ~= nil and timeout ~= false then
    local bad, shown = util.check_ms(timeout)
    if bad then
      util.bad_argument(1, 'runUntilSuccess', 'non-negative integer ms or nil expected, got '
        .. shown)
    end
  end
  if not sched.current() then
    error('orch: Daemons:runUntilSuccess() yields; call it from a task (orch.spawn)', 2)
  end
  local scope = evaluating()
  if scope and scope.dry then
    scope.built(self) -- orch check: validated, not run; it reports that it did not run it
    return true
  end
  local ev = sched.event()
  self._success_ev = ev
  self:build(opts)
  self:entry_changed()
  for _, hd in ipairs(self._hds) do
    if hd:blocker() then -- already failed (built before): no need to wait
      self:entry_changed(hd)
      break
    end
  end
  local ok = ev:wait((timeout and timeout > 0) and timeout or nil)
  local err
  if not ok then
    err = self:_timeout_error('Timed out waiting for ', 'timeout')
  elseif ev.value[1] == 'failed' then
    err = self:_timeout_error(('Will never be ready (%s): '):format(self:_cause(ev.value[2])),
      'failed')
  elseif ev.value[1] ~= 'success' then
    err = self:_timeout_error('Terminated while waiting for ', 'terminated')
  end
  self:term()
  if err then
    error(err, 2)
  end
  return true
end

--- Add the methods to the class `Daemons`. `shared`: `check_self(self, fname)` and
-- `evaluating()` (the scope of the main.lua evaluation, or nil).
function M.install(class, shared)
  check_self, evaluating = shared.check_self, shared.evaluating
  util.assign(class, Daemons)
end

return M
