--- Fluent, immutable set of supervised entries (mirrors the StartOS SDK `Daemons`).
-- `Daemons.of{effects = effects}:addDaemon(...):addOneshot(...):addHealthCheck(...)` records
-- validated entries; each `add*` returns a new chain and leaves the receiver unchanged. `build()`
-- creates one actor per entry and starts every entry whose requirements are met; `term()` stops
-- everything in reverse-dependency layers; `runUntilSuccess(ms)` runs until every entry is
-- `success` at once.
--
-- Options of `add*` may be a table, or a function returning a table or nil (nil skips the entry);
-- the function is called at once, in the caller's task, so it may yield. Validation errors are
-- raised at level 2, pointing at the caller's line.
--
-- orch extensions for the CLI: `entries()`, `states()`, `kill_all()`, `stopEntry(id)`,
-- `startEntry(id)`, `restartEntry(id)`, `signalEntry(id, sig)` (operator control).
--
-- The chain is one class in four files; the others install their methods at the bottom:
--   daemons.lua        the chain's lineage, `of`, `add*` with validation, `build`, `dynamic`
--   shutdown.lua       `term()`: reverse-dependency layers, subcontainers destroyed once
--   until_success.lua  `runUntilSuccess`, the chain observing its entries, TimeoutError
--   operate.lua        views and operator control, `replaceEntries` (reloads)
-- @classmod orch.Daemons
local sched = require 'orch.runtime.sched'
local util = require 'orch.runtime.util'
local validate = require 'orch.graph.validate'
local HealthDaemon = require 'orch.entries.health_daemon'
local Dynamic = require 'orch.graph.dynamic'

local Daemons = {}

-- A chain is immutable, but building one entry at a time must not copy its arrays for every
-- add (1000 entries: 29 MB of garbage). Chains of one lineage share append-only buffers
-- (`_ids`, `_specs`) and each knows its length `_n`: adding to the newest chain of a buffer
-- appends in place; adding to an older one copies its part first. `ids` and `_entries`, a
-- chain's own arrays, are made on first use.
Daemons.__index = function(chain, k)
  local m = Daemons[k]
  if m ~= nil then
    return m
  end
  local buf = (k == 'ids' and chain._ids) or (k == '_entries' and chain._specs) or nil
  if buf then
    local own = table.move(buf, 1, chain._n, 1, {})
    rawset(chain, k, own)
    return own
  end
  return nil
end

local function new(effects, ids, specs, n, index)
  return setmetatable({ effects = effects, _ids = ids, _specs = specs, _n = n or #ids,
    _index = index }, Daemons)
end

--- An empty chain.
-- @tparam[opt] table options `{effects = effects}` (a bare effects table is accepted too);
--   without effects, the chain uses those `build{effects = ...}` is given
-- @treturn Daemons
function Daemons.of(options)
  if options == nil then
    return new(nil, {}, {})
  end
  if type(options) ~= 'table' then
    util.bad_argument(1, 'of', 'table expected, got ' .. type(options))
  end
  if options.effects ~= nil then
    if type(options.effects) ~= 'table' then
      util.bad_argument(1, 'of', 'effects must be a table, got ' .. type(options.effects))
    end
    for k in pairs(options) do
      if k ~= 'effects' then
        util.bad_argument(1, 'of', 'unknown option ' .. tostring(k))
      end
    end
    return new(options.effects, {}, {})
  end
  if next(options) == nil then
    return new(nil, {}, {})
  end
  -- Daemons.of(effects): the SDK facade passes effects positionally.
  return new(options, {}, {})
end

-- `was`: what sched.trace_lines(false) returned on entry (given back before raising).
local function check_self(self, fname, was)
  if getmetatable(self) ~= Daemons then
    if was then
      sched.trace_lines(true)
    end
    util.bad_argument(1, fname, ('Daemons expected; call it as chain:%s(...)'):format(fname), 3)
  end
end

-- The scope of the main.lua evaluation the running task belongs to (orch.cli.evaluate passes
-- it through sched.scope(), which every task the script starts inherits), or nil: `locator` (an
-- orch.locate locator: validation errors of add* calls get the position of the offending call
-- and field), `effects` (which receive their warnings), `built(chain)` (records the chains the
-- script builds, so that orch stops them).
local function evaluating()
  local scope = sched.scope()
  return type(scope) == 'table' and scope or nil
end

-- Effects of a chain given none, built without any: its state changes on stderr.
local fallback_effects = {
  onState = function(s)
    io.stderr:write(('orch: %s: %s%s\n'):format(s.id, s.result,
      s.message and (' (' .. s.message .. ')') or ''))
  end,
}

-- The chain's own effects over orch's (`base`): a custom table overrides only the functions it
-- defines (a chain with only `setHealth` still has its output logged with the `<id> | ` prefix).
local EFFECT_NAMES = { 'setHealth', 'onState', 'onProcess', 'output', 'log' }

local function overlay(own, base)
  if not (own and base) or own == base then
    return own or base
  end
  local out = {}
  for k, v in pairs(base) do
    if type(v) == 'function' then
      out[k] = v
    end
  end
  for k, v in pairs(own) do
    out[k] = v
  end
  -- read by name too: an effects table may be a proxy that pairs() does not see through
  for _, k in ipairs(EFFECT_NAMES) do
    if own[k] ~= nil then
      out[k] = own[k]
    end
  end
  return out
end

-- The effects that get the warnings of add* calls (the chain's own, or the evaluation's).
local function warning_effects(self)
  local ev = evaluating()
  return self.effects or (ev and ev.effects) or fallback_effects
end

local function add_checked(self, kind, id, options, anchor)
  local n = self._n
  local spec, warnings = validate.check(validate.entry, kind, self._ids, id, options, self._index,
    n)
  if not spec then
    return nil, warnings, anchor
  end
  local ev = evaluating()
  local loc = ev and ev.locator
  if loc then
    loc:seen(kind, id, anchor)
  end
  for _, w in ipairs(warnings) do
    -- where the chain will log once built (orch run: its log, in its format)
    util.log(warning_effects(self), 'warning', w)
  end
  local index = self._index or {}
  index[id] = n + 1 -- shared along the lineage: see validate.id_set
  local ids, specs = self._ids, self._specs
  if #ids ~= n then -- another chain was made from this one: this one gets buffers of its own
    ids, specs = table.move(ids, 1, n, 1, {}), table.move(specs, 1, n, 1, {})
  end
  ids[n + 1], specs[n + 1] = id, spec
  return new(self.effects, ids, specs, n + 1, index)
end

-- Call the user's options function (its lines are the script's: the locator's hook runs).
local function call_options(loc, paused, options, id, anchor)
  if loc then
    loc:resume(paused)
  end
  local ok, res = pcall(options)
  if loc then
    loc:pause()
  end
  if not ok then
    if res == sched.ABORTED then
      error(res, 0)
    end
    local m, t = util.error_text(res)
    return false, ("Daemons: entry '%s': the options function raised: %s"):format(tostring(id),
      m or ('a ' .. t .. ' value')), anchor
  end
  return true, res
end

local function add_unhooked(self, kind, id, options, loc, paused)
  -- skip 3 frames: this function, add and the add* method, all called only from there
  local anchor = loc and loc:anchor(3)
  if type(options) == 'function' then
    local ok, res, at = call_options(loc, paused, options, id, anchor)
    if not ok then
      return nil, res, at
    end
    options = res
    if options == nil then
      return self
    end
  end
  return add_checked(self, kind, id, options, anchor)
end

-- `paused`: whether the add* method paused the locator's line hook (see its first line).
local function add(self, kind, id, options, paused)
  local ev = evaluating()
  local loc = ev and ev.locator
  return add_unhooked(self, kind, id, options, loc, paused)
end

-- Raise a validation error of add<kind>(id): at the located call and field while main.lua is
-- evaluated by the CLI, else at the caller of the add* method (level 3 from here).
local function raise(kind, id, err, anchor)
  local ev = evaluating()
  local loc = ev and ev.locator
  local field = validate.is_invalid(err) and err.field or nil
  err = tostring(err)
  local pos = loc and loc:position(kind, id, field, anchor)
  if pos then
    local msg = pos .. ': ' .. err
    loc.raised = msg -- shown without a traceback: the position says it all
    error(msg, 0)
  end
  error(err, 3)
end

-- Library code: while main.lua is evaluated, the locator's line hook only needs the script's own
-- lines, so each add* method pauses it first thing (sched.trace_lines; false outside a traced
-- evaluation) and resumes it before returning or raising: with it on, each add* call ran ~25
-- hooked lines of orch's code, and with it on for the whole validation, 1000 entries took ten
-- times longer.
local trace_lines = sched.trace_lines

--- Add a long-running daemon.
-- @string id unique, not empty; a visible entry's id must match `^[a-z0-9]+(-[a-z0-9]+)*$`
-- @tparam table|function options `{subcontainer = ?, exec = {...} | daemon = Daemon.of(...),
--   ready = {display, fn, gracePeriod, trigger}, requires = {ids...}}`, or a function returning
--   such a table or nil (nil leaves the chain unchanged); the function may yield
-- @treturn Daemons a new chain; `self` is not modified
-- @raise on an invalid id, requirement or option (level 2)
function Daemons:addDaemon(id, options)
  local was = trace_lines(false) -- see trace_lines below
  check_self(self, 'addDaemon', was)
  local chain, err, anchor = add(self, 'daemon', id, options, was)
  if was then
    trace_lines(true)
  end
  if not chain then
    raise('daemon', id, err, anchor)
  end
  return chain
end

--- Add a oneshot: a command that must exit successfully before its dependents start; a failure
-- is retried with the daemon backoff.
-- @string id
-- @tparam table|function options `{subcontainer = ?, exec = {...}, requires = {ids...}}`
-- @treturn Daemons a new chain
-- @raise on an invalid id, requirement or option (level 2)
function Daemons:addOneshot(id, options)
  local was = trace_lines(false) -- see trace_lines below
  check_self(self, 'addOneshot', was)
  local chain, err, anchor = add(self, 'oneshot', id, options, was)
  if was then
    trace_lines(true)
  end
  if not chain then
    raise('oneshot', id, err, anchor)
  end
  return chain
end

--- Add a standalone health check (no process; its probe alone defines its health).
-- @string id
-- @tparam table|function options `{ready = {display, fn, gracePeriod, trigger},
--   requires = {ids...}}`
-- @treturn Daemons a new chain
-- @raise on an invalid id, requirement or option (level 2)
function Daemons:addHealthCheck(id, options)
  local was = trace_lines(false) -- see trace_lines below
  check_self(self, 'addHealthCheck', was)
  local chain, err, anchor = add(self, 'health', id, options, was)
  if was then
    trace_lines(true)
  end
  if not chain then
    raise('health', id, err, anchor)
  end
  return chain
end

--- Create the actors and start every entry whose requirements are met. Idempotent; returns at
-- once (it does not wait for health). Callable from the main thread or a task.
-- @tparam[opt] table opts `{effects = table, tracker = orch.track Tracker}`: the effects used
--   when the chain has none of its own, and the tracker that gives each incarnation its cgroup
--   or tag (none: process groups only), and `interrupted`, a function that says whether a stop
--   was asked while the entries are being started (then the rest is left unstarted)
-- @treturn Daemons self
function Daemons:build(opts)
  check_self(self, 'build')
  if self._hds then
    return self
  end
  -- built while main.lua is evaluated: the evaluation's scope records it, so that orch stops
  -- it (orch.cli.evaluate), and gives it orch's effects and tracker unless it has its own
  local ev = evaluating()
  if ev and type(ev.built) == 'function' then
    ev.built(self)
  end
  if ev and ev.dry then
    return self -- orch check: validated, never started
  end
  if self._term_done then
    error('Daemons: build() after term()', 2)
  end
  if opts ~= nil and type(opts) ~= 'table' then
    util.bad_argument(1, 'build', ('table or nil expected, got %s'):format(type(opts)))
  end
  opts = opts or {}
  local effects = overlay(self.effects, opts.effects or (ev and ev.effects)) or fallback_effects
  self._effects = effects
  -- one table shared by every entry of the chain
  local runtime = { effects = effects, tracker = opts.tracker or (ev and ev.tracker),
    observer = self }
  self._tracker = runtime.tracker -- for the entries a reload adds
  local hds, by_id = {}, {}
  for i, spec in ipairs(self._entries) do
    local deps = {}
    for _, r in ipairs(spec.requires) do
      deps[#deps + 1] = by_id[r]
    end
    local hd = HealthDaemon.new(spec, deps, runtime)
    hds[i], by_id[spec.id] = hd, hd
  end
  self._hds, self._by_id = hds, by_id
  local interrupted = opts.interrupted
  local ok, err = pcall(function()
    local n = #hds
    for i, hd in ipairs(hds) do
      -- a stop asked while thousands of entries start: start no more (the stop ends the rest)
      if interrupted and i % 32 == 0 and interrupted() then
        n = i - 1
        util.log(effects, 'warning', ('stop requested while starting: %d of %d entries left '
          .. 'unstarted'):format(#hds - n, #hds))
        break
      end
      hd:initial()
    end
    for i = 1, n do
      hds[i]:start_actor()
    end
  end)
  if not ok then
    self:kill_all()
    error(err, 0)
  end
  return self
end

-- term
local shutdown = require 'orch.graph.shutdown'
shutdown.install(Daemons, { check_self = check_self })

-- entry_changed, runUntilSuccess
require('orch.graph.until_success').install(Daemons, { check_self = check_self,
  evaluating = evaluating })

-- entries, states, kill_all, stopEntry, startEntry, restartEntry, signalEntry, entry, specs,
-- replaceEntries
require('orch.graph.operate').install(Daemons, { in_layers = shutdown.in_layers,
  check_self = check_self, destroy_subcontainers = shutdown.destroy_subcontainers })

--- `Daemons.dynamic(fn)`: a main whose entries come from `fn(ctx)`, rerun on demand and
-- applied by difference (`orch.graph.dynamic`).
-- @tparam function fn `fn(ctx)` returns a chain
-- @treturn orch.graph.dynamic
function Daemons.dynamic(fn)
  if type(fn) ~= 'function' then
    util.bad_argument(1, 'dynamic', 'function expected, got ' .. type(fn))
  end
  return Dynamic.new(fn, Daemons)
end

return Daemons
