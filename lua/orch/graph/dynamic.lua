--- `Daemons.dynamic(fn)` (StartOS SDK, reference 2.6): a main whose entries come from
-- `fn(ctx)`, which returns a chain. `build()` starts an empty chain and a reconciler, then
-- runs `fn`; each rerun (`rerun()`, `ctx.effects.constRetry()`, a reload) applies the new
-- entries by difference (`orch.graph.reconcile`): unchanged entries keep running. Errors in
-- `fn` are logged and leave the running entries as they were. Other methods (`states`,
-- `entry`, `stopEntry`...) are those of the running chain.
-- @classmod orch.graph.dynamic
local sched = require 'orch.runtime.sched'
local util_lazy = require('orch.runtime.util').lazy
local reconcile = util_lazy('orch.graph.reconcile') -- loaded when a dynamic main runs

local Dynamic = {}

local function index(self, k)
  local m = Dynamic[k]
  if m ~= nil then
    return m
  end
  local live = rawget(self, '_live')
  local f = live and live[k]
  if type(f) == 'function' then
    return function(me, ...)
      if me == self then
        return f(live, ...)
      end
      return f(me, ...)
    end
  end
  return nil
end

local Meta = { __index = index }

--- A dynamic main (use `Daemons.dynamic(fn)`).
-- @tparam function fn `fn(ctx)`: `ctx = {effects, reload, changed, rerun}` -> a chain
-- @tparam table Daemons the chain class (`orch.graph.daemons`)
function Dynamic.new(fn, Daemons)
  return setmetatable({ _fn = fn, _Daemons = Daemons, _reload = 0, _changed = {} }, Meta)
end

--- Whether `v` is a dynamic main.
function Dynamic.is(v)
  return getmetatable(v) == Meta
end

function Dynamic:_ctx()
  local once = false
  local function rerun()
    if not once then
      once = true
      self:rerun()
    end
  end
  local effects = setmetatable({ constRetry = rerun }, { __index = self._effects })
  return { effects = effects, reload = self._reload, changed = self._changed, rerun = rerun }
end

-- The entries of one run of `fn`.
function Dynamic:_produce()
  local chain = self._fn(self:_ctx())
  if getmetatable(chain) ~= self._Daemons then
    error(('Daemons.dynamic: the function returned %s; it must return a Daemons chain'):format(
      chain == nil and 'nothing' or ('a ' .. type(chain))), 0)
  end
  local specs = chain:specs()
  for _, spec in ipairs(specs) do
    local sub = spec.subcontainer
    if type(sub) == 'table' and type(sub.isEager) == 'function' and sub:isEager() then
      self:_drop_new_subcontainers(specs)
      error(("Daemons.dynamic: entry '%s' uses an eager SubContainer; a dynamic builder must "
        .. 'use SubContainer.of (lazy), which starts nothing until an entry runs'):format(spec.id),
        0)
    end
  end
  return specs
end

-- Destroy the subcontainers of `specs` that no running entry uses (reference scenario 69).
function Dynamic:_drop_new_subcontainers(specs)
  local keep = {}
  for _, s in ipairs(self._live and self._live:specs() or {}) do
    if type(s.subcontainer) == 'table' then
      keep[s.subcontainer] = true
    end
  end
  for _, s in ipairs(specs) do
    local sub = s.subcontainer
    if type(sub) == 'table' and not keep[sub] and type(sub.destroy) == 'function' then
      keep[sub] = true
      pcall(sub.destroy, sub)
    end
  end
end

--- One run of `fn` without building anything (yields when `fn` does): the chain it returns,
-- for `orch check`, which lists what one run produces. `ctx` as for a run (`effects`,
-- `reload` 0, `changed` empty; `rerun` and `effects.constRetry` do nothing). Raises what `fn`
-- raises, or when it returns no chain.
-- @tparam[opt] table effects
-- @treturn table the chain (not built)
function Dynamic:preview(effects)
  local function rerun() end
  local chain = self._fn({ effects = setmetatable({ constRetry = rerun }, { __index = effects }),
    reload = 0, changed = {}, rerun = rerun })
  if getmetatable(chain) ~= self._Daemons then
    error(('Daemons.dynamic: the function returned %s; it must return a Daemons chain'):format(
      chain == nil and 'nothing' or ('a ' .. type(chain))), 0)
  end
  return chain
end

--- Start the empty chain and the first run of `fn` (returns at once; idempotent).
-- @tparam[opt] table opts those of `Daemons:build`, and `applied(report)`, called after each run
-- @treturn Dynamic self
function Dynamic:build(opts)
  if self._live then
    return self
  end
  opts = opts or {}
  local live = self._Daemons.of()
  if self._detached then
    live:detach()
  end
  live:build(opts)
  self._live, self._effects = live, opts.effects
  self._rec = reconcile.new(live, { effects = opts.effects, applied = opts.applied })
  self._first = self:rerun()
  return self
end

--- Build, wait for the first run of `fn`, then as `Daemons:runUntilSuccess` on its entries
-- (yields); later reruns are refused once it returns.
-- @async
function Dynamic:runUntilSuccess(timeout, opts)
  self:build(opts)
  self._first:wait()
  local ok, err = pcall(self._live.runUntilSuccess, self._live, timeout, opts)
  self._rec:close()
  if not ok then
    error(err, 2)
  end
  return true
end

--- Ask for a run of `fn` (see `orch.graph.reconcile`'s `request`: runs asked for while one is in
-- flight coalesce into one more). `info`: `{reload = n, changed = {path = true}}` for `ctx`.
-- @treturn event set with `(ok, report or message)` once the run that covers it is done
function Dynamic:rerun(info)
  if not self._rec then
    error('Daemons.dynamic: rerun() before build()', 2)
  end
  if info then
    self._reload, self._changed = info.reload or self._reload, info.changed or {}
  end
  return self._rec:request(function()
    return self:_produce()
  end)
end

--- Take the function of another dynamic main (a reload of the script) for the next runs.
-- Returns a function that puts the previous one back (the reload failed).
function Dynamic:adopt(other)
  local old = self._fn
  self._fn = other._fn
  return function()
    self._fn = old
  end
end

--- Upstream's `detach()` (see `Daemons:detach`): a dynamic the script builds itself is not
-- stopped when the evaluation that built it is left; orch still stops it when orch stops.
-- Idempotent; before or after `build()`.
-- @treturn Dynamic self
function Dynamic:detach()
  self._detached = true
  if self._live then
    self._live:detach()
  end
  return self
end

--- How many runs were made.
function Dynamic:runs()
  return self._rec and self._rec.runs or 0
end

--- The entries of the running chain (none before the first run).
function Dynamic:entries()
  return self._live and self._live:entries() or {}
end

--- Wait for the run in flight, then stop everything (yields).
-- @async
function Dynamic:term()
  if not sched.current() then
    error('orch: Daemons.dynamic term() yields; call it from a task (orch.spawn)', 2)
  end
  if not self._live then
    self._terminated = true
    return
  end
  self._rec:close()
  self._live:term()
end

--- SIGKILL everything now.
function Dynamic:kill_all()
  if self._live then
    self._live:kill_all()
  end
end

--- The running chain (a built `orch.Daemons`), or nil before `build()`.
function Dynamic:chain()
  return self._live
end

return Dynamic
