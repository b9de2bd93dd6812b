--- Validation of the restart policy of an `exec` table: `restart`, `maxRestarts`,
-- `restartWindow` and `backoff` (issue 14). `orch.entries.validate_exec` calls `M.exec` for
-- every exec table; the checks that depend on the entry's kind (a oneshot cannot restart
-- `always`, has no process to signal on a reload) are `M.kind`'s, called by `orch.graph.validate`.
-- @module orch.entries.validate_policy
local invalid = require 'orch.runtime.invalid'
local util = require 'orch.runtime.util'

local M = {}

local fail, expect, check_ms = invalid.fail, invalid.expect, invalid.check_ms

--- The exec keys this module validates.
M.KEYS = { 'restart', 'maxRestarts', 'restartWindow', 'backoff' }

--- `exec.restart` values.
M.RESTART = { 'always', 'on-failure', 'never' }

--- `exec.backoff` keys and their defaults (DECISIONS: 0, +1000 per restart, capped at 30 s,
-- reset after 30 s of uptime). The delay before restart k+1 is
-- `min(delay_k * factor + step, max)`, the first one `initial`.
M.BACKOFF_KEYS = { 'initial', 'step', 'factor', 'max', 'resetAfter' }
M.BACKOFF_DEFAULTS = { initial = 0, step = 1000, factor = 1, max = 30000, resetAfter = 30000 }

--- The largest `backoff.factor` (a larger one reaches `max` after one restart anyway).
M.MAX_FACTOR = 100

--- The largest `maxRestarts`.
M.MAX_RESTARTS = 1000000

local function check_backoff(b, ctx)
  expect(b, type(b) == 'table', ctx, 'exec.backoff',
    'a table {initial, step, factor, max, resetAfter}')
  invalid.unknown_keys(b, M.BACKOFF_KEYS, ctx, 'exec.backoff.')
  local out = {}
  for _, k in ipairs { 'initial', 'step', 'max', 'resetAfter' } do
    check_ms(b[k], ctx, 'exec.backoff.' .. k)
    out[k] = b[k] == nil and M.BACKOFF_DEFAULTS[k] or b[k]
  end
  local f = b.factor
  if f ~= nil then
    if type(f) ~= 'number' or f ~= f or f < 1 or f > M.MAX_FACTOR then
      fail(ctx, 'exec.backoff.factor', ('exec.backoff.factor must be a number from 1 to %d, '
        .. 'got %s'):format(M.MAX_FACTOR, type(f) == 'number' and tostring(f) or util.show(f)))
    end
  end
  out.factor = f or M.BACKOFF_DEFAULTS.factor
  if out.initial > out.max then
    fail(ctx, 'exec.backoff.initial', ('exec.backoff.initial (%d ms) must not exceed '
      .. 'exec.backoff.max (%d ms)'):format(out.initial, out.max))
  end
  return out
end

--- Validate the policy keys of `exec` into `out` (the normalised exec). Raises failures.
function M.exec(exec, out, ctx)
  local r = exec.restart
  if r ~= nil then
    local ok = false
    for _, v in ipairs(M.RESTART) do
      ok = ok or r == v
    end
    if not ok then
      local near = type(r) == 'string' and util.nearest(r, M.RESTART)
      fail(ctx, 'exec.restart', ("exec.restart must be 'always', 'on-failure' or 'never', "
        .. 'got %s%s'):format(util.show(r), near and (' (did you mean ' .. near .. '?)') or ''))
    end
    out.restart = r
  end
  local n = exec.maxRestarts
  if n ~= nil then
    if math.type(n) ~= 'integer' or n < 0 or n > M.MAX_RESTARTS then
      fail(ctx, 'exec.maxRestarts', ('exec.maxRestarts must be an integer from 0 to %d, got %s')
        :format(M.MAX_RESTARTS, type(n) == 'number' and tostring(n) or util.show(n)))
    end
    out.maxRestarts = n
  end
  if exec.restartWindow ~= nil then
    check_ms(exec.restartWindow, ctx, 'exec.restartWindow')
    if exec.restartWindow == 0 then
      fail(ctx, 'exec.restartWindow', 'exec.restartWindow must be more than 0 ms (leave it '
        .. 'out to count every restart)')
    end
    if n == nil then
      fail(ctx, 'exec.restartWindow', 'exec.restartWindow needs exec.maxRestarts')
    end
    out.restartWindow = exec.restartWindow
  end
  if exec.backoff ~= nil then
    out.backoff = check_backoff(exec.backoff, ctx)
  end
end

--- Validate a count option (`ready.restartAfter`, thresholds): nil or an integer from 1 to
-- MAX_RESTARTS; returns it.
function M.count(v, ctx, name)
  if v ~= nil and (math.type(v) ~= 'integer' or v < 1 or v > M.MAX_RESTARTS) then
    fail(ctx, name, ('%s must be an integer from 1 to %d, got %s'):format(name, M.MAX_RESTARTS,
      type(v) == 'number' and tostring(v) or util.show(v)))
  end
  return v
end

--- Kind-dependent checks: a oneshot is done after its first clean exit, so it cannot restart
-- `always`.
function M.kind(kind, exec, ctx)
  if kind == 'oneshot' and exec and exec.restart == 'always' then
    fail(ctx, 'exec.restart', "exec.restart = 'always' is not for a oneshot (it is done after "
      .. "its first clean exit); use 'on-failure' (the default) or 'never'")
  end
  if kind == 'oneshot' and exec and exec.reloadOnChange == 'signal' then
    fail(ctx, 'exec.reloadOnChange', "exec.reloadOnChange = 'signal' is not for a oneshot (once "
      .. "done it has no process to signal; a reload runs it again)")
  end
end

return M
