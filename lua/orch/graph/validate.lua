--- Validation of the options given to `Daemons:add*` and `Daemon.of`.
-- Every check runs at the `add*` call (TypeScript checked these at compile time). A failed check
-- raises a structured error (`M.Invalid`: `field`, `id`, `message`; `tostring` gives the message)
-- that `M.check` returns as `nil, err`; the public methods raise its text at level 2, so the
-- error points at the caller's line in main.lua, and the CLI's locator finds `field` in the
-- source without reading the text. Wording follows reference.md section 5.3; unknown keys
-- name the nearest valid key (`exec.sigterm_timeout` suggests `sigtermTimeout`).
-- @module orch.graph.validate
local util = require 'orch.runtime.util'
local ids = require 'orch.graph.ids'
local invalid = require 'orch.runtime.invalid'
local vexec = require 'orch.entries.validate_exec'
local vpolicy = require 'orch.entries.validate_policy'
local vpushed = require 'orch.entries.validate_pushed'
local results = require 'orch.entries.results'

local M = {}

local fail, fail_whole, expect = invalid.fail, invalid.fail_whole, invalid.expect
local type_name, unknown_keys, check_ms = invalid.type_name, invalid.unknown_keys,
  invalid.check_ms

--- The health results `ready.fn` may return (orch.results).
M.RESULTS = results.RESULTS
local RESULT_SET = results.RESULT_SET
M.RESULT_SET = RESULT_SET

local ENTRY_KEYS = {
  daemon = { 'subcontainer', 'exec', 'daemon', 'ready', 'requires' },
  oneshot = { 'subcontainer', 'exec', 'requires' },
  health = { 'ready', 'requires' },
}
local READY_KEYS = { 'display', 'fn', 'gracePeriod', 'trigger', 'timeout', 'restartAfter',
  'failureThreshold', 'successThreshold', 'notify', 'notifyFd', 'watchdog', 'logLine', 'onLine' }

-- Special hints for keys that are valid elsewhere.
local MISPLACED = {
  oneshot = { ready = 'a oneshot is ready when it exits successfully' },
  health = {
    exec = 'a health check runs no process; use addDaemon',
    subcontainer = 'a health check runs no process; use addDaemon',
    daemon = 'a health check runs no process; use addDaemon',
  },
}

M.Invalid = invalid.Invalid
M.is_invalid = invalid.is_invalid
M.context = invalid.context
M.check = invalid.check
M.MAX_MS = invalid.MAX_MS
M.UseEntrypoint = vexec.UseEntrypoint
M.use_entrypoint = vexec.use_entrypoint
M.MAX_UID = vexec.MAX_UID
M.parse_user = vexec.parse_user
M.subcontainer = vexec.subcontainer
M.exec = vexec.exec

local function check_ready(ready, ctx, warnings, kind)
  expect(ready, type(ready) == 'table', ctx, 'ready', 'a table {display, fn, ...}')
  unknown_keys(ready, READY_KEYS, ctx, 'ready.')
  local out = {}
  local display = ready.display
  if display == nil then
    fail(ctx, 'ready.display', 'ready.display is required (string, or false to hide)')
  end
  if display ~= false and type(display) ~= 'string' then
    fail(ctx, 'ready.display', ('ready.display must be a string or false, got %s'):format(
      type_name(display)))
  end
  if display == '' then
    warnings[#warnings + 1] = ctx.prefix .. 'ready.display is "" so the check is hidden; '
      .. 'use false to hide a check'
    display = false
  end
  out.display = display
  -- readiness the service pushes (sd_notify, output lines): orch.entries.pushed
  local pushes = vpushed.check(ready, ctx, out, kind)
  if ready.fn == nil and not pushes then
    fail(ctx, 'ready.fn', 'ready.fn is required (a function returning {result = ..., '
      .. 'message = ...}), or ready.notify, ready.notifyFd, ready.logLine or ready.onLine')
  end
  if ready.fn ~= nil then
    expect(ready.fn, type(ready.fn) == 'function', ctx, 'ready.fn', 'a function')
  end
  out.fn = ready.fn
  check_ms(ready.gracePeriod, ctx, 'ready.gracePeriod')
  out.gracePeriod = ready.gracePeriod
  check_ms(ready.timeout, ctx, 'ready.timeout')
  out.timeout = ready.timeout
  for _, k in ipairs { 'restartAfter', 'failureThreshold', 'successThreshold' } do
    out[k] = vpolicy.count(ready[k], ctx, 'ready.' .. k)
  end
  if ready.trigger ~= nil then
    expect(ready.trigger, type(ready.trigger) == 'function', ctx, 'ready.trigger',
      'a trigger (e.g. trigger.cooldownTrigger(1000))')
    local factory = require('orch.entries.trigger')._factories[ready.trigger]
    if factory then
      fail(ctx, 'ready.trigger', ('ready.trigger is trigger.%s itself; call it to make a '
        .. 'trigger, e.g. %s'):format(factory[1], factory[2]))
    end
    out.trigger = ready.trigger
  end
  return out
end

local EDGE_KEYS = { 'onUnhealthy', 'after' }
local ON_UNHEALTHY = { 'stop', 'ignore', 'restart' }

-- One edge of the table form `{db = {onUnhealthy = ..., after = ms}}`; nil for the defaults.
local function check_edge(r, e, ctx)
  local name = 'requires.' .. r
  expect(e, type(e) == 'table', ctx, name, 'a table {onUnhealthy = ..., after = ms}')
  unknown_keys(e, EDGE_KEYS, ctx, name .. '.')
  local on = e.onUnhealthy
  if on ~= nil and on ~= 'stop' and on ~= 'ignore' and on ~= 'restart' then
    local near = type(on) == 'string' and util.nearest(on, ON_UNHEALTHY)
    fail(ctx, name .. '.onUnhealthy', ("%s.onUnhealthy must be 'stop', 'ignore' or "
      .. "'restart', got %s%s"):format(name, util.show(on),
        near and (' (did you mean ' .. near .. '?)') or ''))
  end
  check_ms(e.after, ctx, name .. '.after')
  if (on == nil or on == 'stop') and not e.after then
    return nil
  end
  return { onUnhealthy = on or 'stop', after = e.after }
end

-- `requires`: a list of earlier ids, or a table that also maps ids to edge options (issue 14:
-- `{'cache', db = {onUnhealthy = 'ignore'}}`). Returns the ids (the list's order, then the
-- mapped ids by name) and the edges that are not the default, or nil.
local function check_requires(req, ctx, id, known)
  if req == nil then
    fail(ctx, 'requires', 'requires is required (a list of earlier ids; {} for none)')
  end
  if type(req) ~= 'table' then
    fail(ctx, 'requires', 'requires must be a list of ids')
  end
  local n, mapped = #req, {}
  for k in pairs(req) do
    if type(k) == 'string' then
      mapped[#mapped + 1] = k
    elseif math.type(k) ~= 'integer' or k < 1 or k > n then
      fail(ctx, 'requires', 'requires must be a list of ids (or map ids to '
        .. '{onUnhealthy = ..., after = ms})')
    end
  end
  table.sort(mapped)
  local ids_in = table.move(req, 1, n, 1, {})
  table.move(mapped, 1, #mapped, n + 1, ids_in)
  local out, seen, edges = {}, {}, nil
  for i, r in ipairs(ids_in) do
    if type(r) ~= 'string' then
      fail(ctx, 'requires', 'requires must be a list of ids')
    end
    if r == id or not known[r] then
      fail_whole(ctx, i > n and 'requires.' .. r or 'requires', ("Daemons: entry '%s' requires "
        .. "'%s', which must be declared earlier"):format(id, r))
    end
    if i > n then
      local e = check_edge(r, req[r], ctx)
      if e then
        edges = edges or {}
        edges[r] = e
      end
    end
    if not seen[r] then
      seen[r] = true
      out[#out + 1] = r
    end
  end
  return out, edges
end

--- Whether `id` is a valid health check id: `^[a-z0-9]+(-[a-z0-9]+)*$`.
M.valid_health_id = ids.valid_health_id

--- Membership in a chain's ids in O(1) (building a chain of N entries must not cost N^2).
-- `index` maps an id to the position it was appended at and is shared along a chain's lineage,
-- so a hit is verified against `ids` (branches of one chain share it); only a failed
-- verification scans. Without an index it always scans. `n`: the chain's length (`ids` may be a
-- buffer shared with longer chains of the lineage), default #ids.
function M.id_set(list, index, n)
  n = n or #list
  return setmetatable({}, { __index = function(_, id)
    local p = index and index[id]
    if index and p == nil then
      return false
    end
    if p and p <= n and list[p] == id then
      return true
    end
    for i = 1, n do
      if list[i] == id then
        return true
      end
    end
    return false
  end })
end

--- Validate the id of a new entry against the ids already in the chain (`known`: M.id_set);
-- what an id may be is `orch.ids`'s.
function M.id(id, list, known)
  local ctx = M.context('', type(id) == 'string' and id or nil)
  if type(id) ~= 'string' then
    if id == nil then
      fail(ctx, nil, 'Daemons: entry has empty id')
    end
    fail(ctx, nil, ('Daemons: entry id must be a string, got %s'):format(type(id)))
  end
  if id == '' then
    fail(ctx, nil, 'Daemons: entry has empty id')
  end
  local shown, problem = ids.problem(id)
  if shown then
    fail(ctx, nil, ('Daemons: id %s %s'):format(shown, problem))
  end
  if id:sub(1, 2) == '__' then
    fail(ctx, nil, ("Daemons: id '%s' is reserved (ids starting with '__' are internal)")
      :format(id))
  end
  known = known or M.id_set(list)
  if known[id] then
    fail(ctx, nil, ("Daemons: duplicate id '%s'"):format(id))
  end
end

--- Validate one `add*` call. `kind` is 'daemon', 'oneshot' or 'health'; `list` the ids already
-- declared (`index`: see M.id_set). Returns the normalised entry spec and a list of warnings;
-- raises a failure (use through `M.check`).
function M.entry(kind, list, id, opts, index, n)
  local known = M.id_set(list, index, n)
  M.id(id, list, known)
  local ctx = M.context(("Daemons: entry '%s': "):format(id), id)
  if type(opts) ~= 'table' then
    fail(ctx, nil, ('options must be a table (or a function returning one), got %s'):format(
      type_name(opts)))
  end
  unknown_keys(opts, ENTRY_KEYS[kind], ctx, '', MISPLACED[kind])
  local warnings = {}
  local spec = { id = id, kind = kind }
  spec.requires, spec.edges = check_requires(opts.requires, ctx, id, known)
  if kind ~= 'health' then
    M.subcontainer(opts.subcontainer, ctx)
    spec.subcontainer = opts.subcontainer
    if opts.daemon ~= nil then
      if opts.exec ~= nil or opts.subcontainer ~= nil then
        fail(ctx, nil, 'give either daemon or subcontainer+exec')
      end
      local d = opts.daemon
      if type(d) ~= 'table' or not d.__orch_daemon then
        fail(ctx, 'daemon', ('daemon must be made by Daemon.of(...), got %s'):format(
          type_name(d)))
      end
      spec.daemon = d
      spec.exec = d.exec
      spec.subcontainer = d.subcontainer
    else
      if opts.exec == nil then
        if kind == 'daemon' then
          fail(ctx, 'exec', 'exec is required (or daemon = Daemon.of(...))')
        end
        fail(ctx, 'exec', 'exec is required')
      end
      local w
      spec.exec, w = M.exec(opts.exec, ctx, { has_sub = opts.subcontainer ~= nil })
      table.move(w, 1, #w, #warnings + 1, warnings)
    end
    vpolicy.kind(kind, spec.exec, ctx)
  end
  if kind ~= 'oneshot' then
    -- A daemon may go without a readiness check (orch's extension: it is ready once its
    -- process runs, and nothing is probed); a health check is nothing but its check.
    if opts.ready == nil and kind == 'health' then
      fail(ctx, 'ready', 'ready is required ({display = ..., fn = ...})')
    end
    if opts.ready ~= nil then
      spec.ready = check_ready(opts.ready, ctx, warnings, kind)
      if kind == 'health' and spec.ready.restartAfter then
        fail(ctx, 'ready.restartAfter', 'ready.restartAfter restarts a daemon whose check '
          .. 'fails; a health check has no process (use addDaemon)')
      end
    end
  end
  spec.visible = spec.ready ~= nil and type(spec.ready.display) == 'string'
  if not ids.valid_health_id(id) then
    if spec.visible then
      fail_whole(ctx, nil, ("Daemons: id '%s' is not a valid health check id "
        .. '(lowercase letters, digits and single dashes)'):format(id))
    end
    warnings[#warnings + 1] = ("Daemons: id '%s' would not be a valid health check id "
      .. '(lowercase letters, digits and single dashes); fine while hidden'):format(id)
  end
  return spec, warnings
end

M.fn_result = vexec.fn_result

return M
