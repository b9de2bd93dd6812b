--- Apply a new list of entries to a built chain by difference (`Daemons.dynamic` and the reload
-- of `orch run`). An entry whose id is gone or whose `configHash` changed is stopped, with
-- everything that requires it (dependents first, one at a time); missing entries start in
-- declaration order; the others keep running untouched (same actor, same pid). Runs asked for
-- while one is in flight coalesce into exactly one more.
-- @module orch.graph.reconcile
local sched = require 'orch.runtime.sched'
local util = require 'orch.runtime.util'
local config_hash = require 'orch.graph.config_hash'

local M = {}

-- What may change in an entry that says `exec.reloadOnChange = 'signal'` for it to be
-- signalled (`exec.reloadSignal`) instead of restarted.
local SIGNAL_FIELDS = { ['exec.env'] = true, ['exec.envFile'] = true,
  ['the content of exec.envFile'] = true }

local function signal_only(old, new, fields)
  if #fields == 0 or not (old.exec and new.exec and old.exec.reloadOnChange == 'signal'
    and new.exec.reloadOnChange == 'signal') then
    return false
  end
  for _, f in ipairs(fields) do
    if not SIGNAL_FIELDS[f] then
      return false
    end
  end
  return true
end

--- What applying `new` (specs) to `old` (specs) does: `{stale = set of ids to stop, signal =
-- set of ids to signal, why = {id = reason}}`, reasons being the changed fields (`'exec.env
-- changed'`) or `'removed'`; the dependents stopped with them are found by the chain. With
-- `live` (the built chain), a running entry whose `exec.envFile` now says something else than
-- when its process started counts as changed too. An entry with `exec.reloadOnChange =
-- 'signal'` whose only changes are `exec.env` and `exec.envFile` is signalled, not stopped.
function M.plan(old, new, live)
  local by_id = {}
  for _, spec in ipairs(new) do
    by_id[spec.id] = spec
  end
  local stale, signal, why = {}, {}, {}
  for _, spec in ipairs(old) do
    local n = by_id[spec.id]
    local fields
    if not n then
      stale[spec.id], why[spec.id] = true, 'removed'
    elseif not config_hash.same(spec, n) then
      fields = config_hash.changed(spec, n)
    elseif live and n.exec and n.exec.envFile then
      local hd = live:entry(spec.id)
      if hd and hd:env_file_changed() then
        fields = { 'the content of exec.envFile' }
      end
    end
    if fields then
      why[spec.id] = #fields > 0 and (table.concat(fields, ', ') .. ' changed')
        or 'configuration changed'
      if signal_only(spec, n, fields) then
        signal[spec.id] = true
      else
        stale[spec.id] = true
      end
    end
  end
  return { stale = stale, signal = signal, why = why }
end

-- Classify what happened: kept, restarted (with why), added, removed.
local function report_of(old, new, plan, stopped)
  local was, now = {}, {}
  for _, spec in ipairs(old) do
    was[spec.id] = true
  end
  for _, spec in ipairs(new) do
    now[spec.id] = true
  end
  local stopped_set, why = {}, plan.why
  for _, id in ipairs(stopped) do
    stopped_set[id] = true
  end
  -- a dependent stopped with its requirement: say which
  local req_of = {}
  for _, spec in ipairs(old) do
    req_of[spec.id] = spec.requires
  end
  local r = { kept = {}, restarted = {}, added = {}, removed = {}, signalled = {}, why = {} }
  for _, spec in ipairs(new) do
    local id = spec.id
    if not was[id] then
      r.added[#r.added + 1] = id
    elseif stopped_set[id] then
      r.restarted[#r.restarted + 1] = id
    elseif plan.signal[id] then
      r.signalled[#r.signalled + 1] = id
      r.why[id] = why[id]
    else
      r.kept[#r.kept + 1] = id
    end
  end
  for _, spec in ipairs(old) do
    if not now[spec.id] then
      r.removed[#r.removed + 1] = spec.id
    end
  end
  for _, id in ipairs(stopped) do
    if why[id] then
      r.why[id] = why[id]
    else
      for _, dep in ipairs(req_of[id] or {}) do
        if stopped_set[dep] then
          r.why[id] = ('requires %s'):format(dep)
          break
        end
      end
    end
  end
  return r
end

--- One line saying what a reconcile did: counts, then each restarted and removed entry with
-- why, and each added one.
function M.describe(r)
  local parts = { ('kept %d'):format(#r.kept) }
  local function list(name, ids, with_why)
    if #ids > 0 then
      local items = {}
      for i, id in ipairs(ids) do
        items[i] = with_why and r.why[id] and ('%s (%s)'):format(id, r.why[id]) or id
      end
      parts[#parts + 1] = ('%s %d: %s'):format(name, #ids, table.concat(items, ', '))
    end
  end
  list('restarted', r.restarted, true)
  list('signalled (reloadOnChange)', r.signalled or {}, true)
  list('added', r.added, false)
  list('removed', r.removed, false)
  list('cleared (had given up)', r.cleared or {}, false)
  return table.concat(parts, '; ')
end

local Reconciler = {}
Reconciler.__index = Reconciler

--- A reconciler of the built chain `live`. `opts.effects` get its log lines; `opts.applied(r)`
-- is called after each successful run with its report.
function M.new(live, opts)
  opts = opts or {}
  return setmetatable({ live = live, effects = opts.effects, applied = opts.applied,
    runs = 0 }, Reconciler)
end

--- Apply `specs` now (yields; call it from a task): returns the report
-- `{kept, restarted, added, removed, signalled, why = {id = reason}}`.
-- @async
function Reconciler:apply(specs)
  local live = self.live
  local old = live:specs()
  local plan = M.plan(old, specs, live)
  local stopped = live:replaceEntries(specs, plan.stale, plan.signal)
  local r = report_of(old, specs, plan, stopped)
  -- reloadOnChange = 'signal': the running process gets exec.reloadSignal; one that runs no
  -- process now (backoff, failed) restarts, with the new configuration
  local signalled = {}
  for _, id in ipairs(r.signalled) do
    local hd = live:entry(id)
    if hd and hd:signal('reload') then
      signalled[#signalled + 1] = id
    else
      live:restartEntry(id)
      r.restarted[#r.restarted + 1] = id
    end
  end
  r.signalled = signalled
  -- a reload clears what gave up (issue 14: `orch restart <id>` or a reload), also when its
  -- configuration did not change
  r.cleared = {}
  for _, id in ipairs(r.kept) do
    local hd = self.live:entry(id)
    if hd and hd:failed() then
      self.live:restartEntry(id)
      r.cleared[#r.cleared + 1] = id
    end
  end
  if self.applied then
    self.applied(r)
  end
  return r
end

-- One run: `produce()` gives the specs (it may yield and raise); errors are logged and change
-- nothing. Returns ok and the report or the message.
function Reconciler:_run(produce)
  self.runs = self.runs + 1
  local ok, specs = pcall(produce)
  if ok and type(specs) ~= 'table' then
    ok, specs = false, 'the builder returned no entries'
  end
  if ok then
    ok, specs = pcall(self.apply, self, specs)
  end
  if not ok then
    if specs == sched.ABORTED then
      error(specs, 0)
    end
    local msg = util.error_message(specs)
    util.log(self.effects, 'error', ('reconcile failed, the running entries stay as they were: %s')
      :format(msg))
    return false, msg
  end
  return true, specs
end

--- Ask for a run of `produce` (the latest one asked for is used). When none is in flight, it
-- starts at once in a task; else exactly one more follows the one in flight, however many are
-- asked for meanwhile. Returns an event set with `(ok, report or message)` when the run that
-- covers this request is done.
function Reconciler:request(produce)
  if self.closing then
    local ev = sched.event()
    ev:set(false, 'terminating')
    return ev
  end
  if self.busy then
    self.pending = produce
    self.next_done = self.next_done or sched.event()
    return self.next_done
  end
  self.busy = true
  local done = sched.event()
  self.task = sched.spawn('reconcile', function()
    local ev, fn = done, produce
    while fn do
      ev:set(self:_run(fn))
      fn, ev = self.pending, self.next_done
      self.pending, self.next_done = nil, nil
      if self.closing and fn then
        ev:set(false, 'terminating')
        fn = nil
      end
    end
    self.busy, self.task = false, nil
  end)
  return done
end

--- Refuse later requests and wait for the run in flight (yields).
-- @async
function Reconciler:close()
  self.closing = true
  while self.busy do
    local t = self.task
    if not t then
      break
    end
    t:wait()
  end
end

M.Reconciler = Reconciler
return M
