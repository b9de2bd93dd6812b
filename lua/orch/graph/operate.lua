--- Views and operation of a chain: its entries and states; stopping, starting, restarting and
-- signalling entries (what the control socket's commands do), one operation at a time; and
-- replacing entries by difference (reloads, `Daemons.dynamic`). Installed as methods of
-- `Daemons` by orch.graph.daemons, which passes what they share with the rest of the chain.
-- @module orch.graph.operate
local sched = require 'orch.runtime.sched'
local util = require 'orch.runtime.util'
local HealthDaemon = require 'orch.entries.health_daemon'
local Daemon = require 'orch.entries.daemon'
local ready_summary = require 'orch.entries.ready_summary'
local vstop = require 'orch.entries.validate_stop'

local M = {}

--- Add the methods to the class `Daemons`. `shared`: `in_layers(effects, list, stop_layer)`
-- (the shutdown's layering), `check_self(self, fname)` and `destroy_subcontainers(self, specs,
-- spared)`.
function M.install(Daemons, shared)
  local in_layers, check_self = shared.in_layers, shared.check_self

  local function display_of(spec)
    if spec.ready then
      return spec.ready.display
    end
    return nil
  end

  -- spec -> its exec summary: a spec never changes once validated, and an entry a reload keeps
  -- keeps its spec, so a reload lists 1000 entries without quoting 1000 commands again (a
  -- string per spec, no table: the cache lives as long as the entries)
  local summaries = setmetatable({}, { __mode = 'k' })

  local function summary_of(spec)
    local s = summaries[spec]
    if not s then
      s = Daemon.summary(spec.exec)
      summaries[spec] = s
    end
    return s
  end

  --- The recorded entries in declaration order, for listings:
  -- `{id, kind, requires, edges = {[id] = {onUnhealthy, after}} or nil, display,
  -- exec = <summary>, log = <exec.log>, restart = <the restart policy in a line>,
  -- ready = <has a readiness check>, readiness = <its ready keys in a line>}`.
  function Daemons:entries()
    local out = {}
    for i, spec in ipairs(self._entries) do
      out[i] = {
        id = spec.id,
        kind = spec.kind,
        requires = util.copy(spec.requires),
        edges = spec.edges and util.copy(spec.edges) or nil,
        display = display_of(spec),
        visible = spec.visible,
        exec = summary_of(spec),
        log = spec.exec and spec.exec.log, -- exec.log, validated (orch.entries.validate_log)
        restart = Daemon.policy_summary(spec.exec, spec.kind),
        stop = vstop.summary(spec.exec), -- stop/reload signals and limits, for orch check
        ready = spec.ready ~= nil,
        readiness = ready_summary.summary(spec.ready), -- the ready keys set, for orch check
      }
    end
    return out
  end

  --- A snapshot of every entry: `{id, kind, result, message, pid, restarts,
  -- lastExit = {code, signal, time, message}, since, running, visible, display}`. Before `build()`
  -- the results are nil.
  function Daemons:states()
    local out = {}
    if not self._hds then
      for i, spec in ipairs(self._entries) do
        out[i] = { id = spec.id, kind = spec.kind, visible = spec.visible, restarts = 0,
          display = display_of(spec) }
      end
      return out
    end
    for i, hd in ipairs(self._hds) do
      out[i] = hd:snapshot()
    end
    return out
  end

  --- SIGKILL every live process group at once and stop all activity (a second Ctrl-C).
  function Daemons:kill_all()
    for _, hd in ipairs(self._hds or {}) do
      hd:kill_now()
    end
  end
  -- The entry and everything that requires it, directly or not (each once), entry first.
  local function with_dependents(hd)
    local list, seen = { hd }, { [hd] = true }
    local i = 1
    while i <= #list do
      for _, d in ipairs(list[i].dependents) do
        if not seen[d] then
          seen[d] = true
          list[#list + 1] = d
        end
      end
      i = i + 1
    end
    return list
  end

  local function ids_of(list)
    local out = {}
    for i, hd in ipairs(list) do
      out[i] = hd.id
    end
    return out
  end

  -- Hold every entry of `list` with `reason`, dependents first (`in_layers`); each layer is held
  -- at once and waited for.
  local function hold_in_order(self, list, reason)
    in_layers(self._effects, list, function(layer)
      for _, hd in ipairs(layer) do
        hd:hold(reason)
      end
      for _, hd in ipairs(layer) do
        hd:settled()
      end
    end)
  end

  -- Run `fn` with the operator lock: one stop/start/restart at a time per chain, in call order.
  local function locked(self, fname, fn)
    if self._op_busy then
      if not sched.current() then
        error(('orch: Daemons:%s() waits for another operation; call it from a task'):format(
          fname), 3)
      end
      repeat
        self._op_free:wait()
      until not self._op_busy
    end
    self._op_busy, self._op_free = true, sched.event()
    local _ <close> = setmetatable({}, { __close = function()
      self._op_busy = false
      self._op_free:set()
    end })
    return fn()
  end

  --- The runtime entry of `id` in a built chain (its `HealthDaemon`), or nil.
  function Daemons:entry(id)
    return self._by_id and self._by_id[id]
  end

  local function entry(self, fname, id)
    local hd = self._by_id and self._by_id[id]
    if not hd then
      util.bad_argument(1, fname, ("no entry '%s' in a built chain"):format(tostring(id)), 3)
    end
    if self._term_done then
      error(('orch: Daemons:%s(): the chain is terminated'):format(fname), 3)
    end
    return hd
  end

  --- Stop an entry and everything that requires it, directly or not, dependents first (each
  -- layer waits until its processes are gone, as in `term()`); they report `disabled "stopped"`
  -- and stay stopped until `startEntry`. Yields until done: call it from a task.
  -- @treturn {string,...} the ids held stopped, the entry first
  -- @async
  function Daemons:stopEntry(id)
    local hd = entry(self, 'stopEntry', id)
    if not sched.current() then
      error('orch: Daemons:stopEntry() yields; call it from a task (orch.spawn)', 2)
    end
    return locked(self, 'stopEntry', function()
      local list = with_dependents(hd)
      hold_in_order(self, list, 'stopped')
      return ids_of(list)
    end)
  end

  -- Release the entry and its held dependents; their ids.
  local function release_all(hd)
    local released = {}
    for _, d in ipairs(with_dependents(hd)) do
      if d:held() then
        d:release()
        released[#released + 1] = d.id
      end
    end
    return released
  end

  --- Let a stopped entry, and its stopped dependents, start again as their requirements allow.
  -- Returns at once (it does not wait for health), unless another operation is in progress.
  -- @treturn {string,...} the ids that were stopped and may start now
  function Daemons:startEntry(id)
    local hd = entry(self, 'startEntry', id)
    return locked(self, 'startEntry', function()
      return release_all(hd)
    end)
  end

  --- Stop the entry and what requires it (dependents first, as `stopEntry`), then let them start
  -- again; dependents stopped on their own stay stopped. On a stopped entry it is `startEntry`.
  -- Yields until the stop is done (not until ready): call it from a task.
  -- @treturn {string,...} the ids restarted, the entry first
  -- @async
  function Daemons:restartEntry(id)
    local hd = entry(self, 'restartEntry', id)
    if not sched.current() then
      error('orch: Daemons:restartEntry() yields; call it from a task (orch.spawn)', 2)
    end
    return locked(self, 'restartEntry', function()
      if hd:held() then
        return release_all(hd)
      end
      local list = {}
      for _, d in ipairs(with_dependents(hd)) do
        if d:held() ~= 'stopped' then
          list[#list + 1] = d
        end
      end
      hold_in_order(self, list, 'restarting')
      for _, d in ipairs(list) do
        d:release()
      end
      return ids_of(list)
    end)
  end

  --- Send `sig` (a name such as `'SIGHUP'`/`'HUP'` or a number) to the process group of the
  -- entry's current process.
  -- @treturn[1] integer the pid signalled
  -- @treturn[2] nil
  -- @treturn[2] string why not (no process, a health check...)
  function Daemons:signalEntry(id, sig)
    return entry(self, 'signalEntry', id):signal(sig)
  end

  --- Upstream's `detach()`: the chain is no longer stopped when the evaluation that built it
  -- is left (a chain main.lua builds while it is evaluated is otherwise stopped when a reload
  -- replaces that evaluation); its owner stops it with `term()`, and orch still stops it when
  -- orch stops. Idempotent; before or after `build()`. The chain orch runs (the one main.lua
  -- returns) is orch's own: detaching it changes nothing.
  -- @treturn Daemons self
  function Daemons:detach()
    check_self(self, 'detach')
    rawset(self, '_detached', true)
    return self
  end

  --- Whether `detach()` was called.
  function Daemons:detached()
    return rawget(self, '_detached') == true
  end

  --- The validated entries of the chain in declaration order (read only): what
  -- `orch.graph.reconcile` compares.
  function Daemons:specs()
    return self._entries
  end

  -- DFS post-order over the dependents of `roots`: every entry after all that require it.
  local function post_order(roots)
    local order, seen = {}, {}
    local function visit(hd)
      if seen[hd] then
        return
      end
      seen[hd] = true
      for _, d in ipairs(hd.dependents) do
        visit(d)
      end
      order[#order + 1] = hd
    end
    for _, hd in ipairs(roots) do
      visit(hd)
    end
    return order, seen
  end

  -- Destroy the subcontainers of `gone` (specs) that no spec of `kept` still uses.
  -- The subcontainers of the entries `gone` that no entry of `kept` uses any more.
  local function destroy_unused(self, gone, kept)
    local used = {}
    for _, spec in ipairs(kept) do
      if type(spec.subcontainer) == 'table' then
        used[spec.subcontainer] = true
      end
    end
    shared.destroy_subcontainers(self, gone, used)
  end

  local function replace_entries(self, specs, stale, adopt)
    local old_by_id = self._by_id
    local want = {}
    for _, spec in ipairs(specs) do
      want[spec.id] = true
    end
    local roots = {}
    for _, hd in ipairs(self._hds) do
      if stale[hd.id] or not want[hd.id] then
        roots[#roots + 1] = hd
      end
    end
    local order, stopped = post_order(roots)
    local gone = {}
    for i, hd in ipairs(order) do -- one at a time, dependents first (as upstream)
      local ok, err = pcall(hd.term, hd)
      if not ok then
        util.log(self._effects, 'error', ('term failed: %s'):format(tostring(err)))
      end
      gone[i] = hd.spec
    end
    if self._term_done then -- term() came meanwhile: it stops the rest; start nothing
      return {}
    end
    for _, hd in ipairs(self._hds) do
      if not stopped[hd] and #hd.dependents > 0 then
        local left = {}
        for _, d in ipairs(hd.dependents) do
          if not stopped[d] then
            left[#left + 1] = d
          end
        end
        hd.dependents = left
      end
    end
    local runtime = { effects = self._effects, tracker = self._tracker, observer = self }
    local hds, by_id, entries, ids, index, added = {}, {}, {}, {}, {}, {}
    for i, spec in ipairs(specs) do
      local hd = old_by_id[spec.id]
      if hd and not stopped[hd] and adopt[spec.id] then
        hd:adopt_exec(spec.exec) -- reloadOnChange = 'signal': the new exec, the same process
      end
      if not hd or stopped[hd] then
        local deps = {}
        for _, r in ipairs(spec.requires) do
          deps[#deps + 1] = by_id[r]
        end
        hd = HealthDaemon.new(spec, deps, runtime)
        added[#added + 1] = hd
      end
      hds[i], by_id[spec.id], entries[i], ids[i], index[spec.id] = hd, hd, hd.spec, spec.id, i
    end
    destroy_unused(self, gone, entries)
    self._hds, self._by_id = hds, by_id
    rawset(self, '_entries', entries)
    rawset(self, 'ids', ids)
    self._specs, self._ids, self._n, self._index = entries, table.move(ids, 1, #ids, 1, {}),
      #ids, index
    for _, hd in ipairs(added) do
      local ok, err = pcall(hd.initial, hd)
      if not ok then
        util.log(self._effects, 'error', ("entry '%s' failed to start: %s"):format(hd.id,
          util.error_message(err)))
      end
    end
    for _, hd in ipairs(added) do
      hd:start_actor()
    end
    local out = {}
    for i, hd in ipairs(order) do
      out[i] = hd.id
    end
    return out
  end

  --- Reconciler support (`orch.graph.reconcile`; yields: call it from a task). Stop the built
  -- entries whose ids are keys of `stale`, those absent from `specs`, and everything that
  -- requires them, one at a time, dependents first (DFS post-order); then make `specs` (validated
  -- entries, in declaration order) the chain's entries: an entry still running keeps its actor
  -- and its spec (old closures included), the others are created and started in order. The
  -- running entries whose ids are keys of `adopt` take the new spec's exec (`reloadOnChange =
  -- 'signal'`; the caller signals them).
  -- @tparam {table,...} specs
  -- @tparam table stale set of ids
  -- @tparam[opt] table adopt set of ids
  -- @treturn {string,...} the ids stopped, in the order they were
  -- @async
  function Daemons:replaceEntries(specs, stale, adopt)
    check_self(self, 'replaceEntries')
    if not self._hds then
      error('orch: Daemons:replaceEntries(): the chain is not built', 2)
    end
    if self._term_done then
      error('orch: Daemons:replaceEntries(): the chain is terminated', 2)
    end
    if not sched.current() then
      error('orch: Daemons:replaceEntries() yields; call it from a task (orch.spawn)', 2)
    end
    return locked(self, 'replaceEntries', function()
      return replace_entries(self, specs, stale or {}, adopt or {})
    end)
  end
end

return M
