--- Validation of the options given to `Daemons:add*` and `Daemon.of`.
-- Every check runs at the `add*` call (TypeScript checked these at compile time). A failed check
-- is reported as a message (`nil, msg`); the public methods raise it at level 2, so the error
-- points at the caller's line in main.lua. Wording follows reference.md section 5.3; unknown keys
-- name the nearest valid key (`exec.sigterm_timeout` suggests `sigtermTimeout`).
-- @module orch.validate
local util = require 'orch.util'

local M = {}

--- The health results `ready.fn` may return.
M.RESULTS = { 'success', 'failure', 'starting', 'waiting', 'loading', 'disabled' }
local RESULT_SET = {}
for _, r in ipairs(M.RESULTS) do
  RESULT_SET[r] = true
end
M.RESULT_SET = RESULT_SET

local ENTRY_KEYS = {
  daemon = { 'subcontainer', 'exec', 'daemon', 'ready', 'requires' },
  oneshot = { 'subcontainer', 'exec', 'requires' },
  health = { 'ready', 'requires' },
}
local EXEC_KEYS = {
  'command', 'fn', 'env', 'cwd', 'user', 'sigtermTimeout', 'runAsInit', 'onStdout', 'onStderr',
}
local FN_EXEC_KEYS = { fn = true, sigtermTimeout = true }
local READY_KEYS = { 'display', 'fn', 'gracePeriod', 'trigger', 'timeout' }
local SUB_KEYS = { 'image', 'name', 'entrypoint', 'cmd', 'env', 'user', 'workdir' }

-- Special hints for keys that are valid elsewhere.
local MISPLACED = {
  oneshot = { ready = 'a oneshot is ready when it exits successfully' },
  health = {
    exec = 'a health check runs no process; use addDaemon',
    subcontainer = 'a health check runs no process; use addDaemon',
    daemon = 'a health check runs no process; use addDaemon',
  },
}

--- Marker returned by `useEntrypoint`: the command comes from the subcontainer's image metadata
-- (`entrypoint` followed by `override` or else `cmd`).
local UseEntrypoint = {}
UseEntrypoint.__index = UseEntrypoint
UseEntrypoint.__tostring = function(self)
  if self.override then
    return ('useEntrypoint(%s)'):format(util.join(self.override, ' '))
  end
  return 'useEntrypoint()'
end
M.UseEntrypoint = UseEntrypoint

local Fail = {}

local function fail(msg)
  error(setmetatable({ msg = msg }, Fail), 0)
end

--- Run `fn(...)`; a validation failure becomes `nil, msg`, anything else is re-raised.
function M.check(fn, ...)
  local res = table.pack(pcall(fn, ...))
  if res[1] then
    return table.unpack(res, 2, res.n)
  end
  local err = res[2]
  if getmetatable(err) == Fail then
    return nil, err.msg
  end
  error(err, 0)
end

--- `useEntrypoint([override])`: a command marker resolved at spawn time from the subcontainer.
-- Raises (level 2) when `override` is not a list of strings.
function M.use_entrypoint(override)
  if override ~= nil then
    if not util.is_sequence(override) then
      error('useEntrypoint: bad argument #1 (list of strings expected, got ' .. type(override)
        .. ')', 2)
    end
    for _, a in ipairs(override) do
      if type(a) ~= 'string' then
        error('useEntrypoint: bad argument #1 (list of strings expected)', 2)
      end
    end
    override = util.copy(override)
  end
  return setmetatable({ override = override }, UseEntrypoint)
end

local function type_name(v)
  if v == nil then
    return 'nil'
  end
  return type(v)
end

local function unknown_keys(t, valid, ctx, path, misplaced)
  local set = {}
  for _, k in ipairs(valid) do
    set[k] = true
  end
  local bad = {}
  for k in pairs(t) do
    if not set[k] then
      bad[#bad + 1] = k
    end
  end
  if #bad == 0 then
    return
  end
  table.sort(bad, function(a, b)
    return tostring(a) < tostring(b)
  end)
  local k = bad[1]
  if misplaced and misplaced[k] then
    fail(('%sunknown option %s%s (%s)'):format(ctx, path, tostring(k), misplaced[k]))
  end
  local near = util.nearest(k, valid)
  if near then
    fail(('%sunknown option %s%s (did you mean %s?)'):format(ctx, path, tostring(k), near))
  end
  fail(('%sunknown option %s%s (valid: %s)'):format(ctx, path, tostring(k), util.join(valid)))
end

local function expect(v, ok, ctx, name, what)
  if not ok then
    fail(('%s%s must be %s, got %s'):format(ctx, name, what, type_name(v)))
  end
end

--- The longest time option accepted (ms): 2^31 - 1, about 24.8 days (what a JavaScript
-- timer accepts: upstream code with more would fire at once).
M.MAX_MS = 2147483647

local function check_ms(v, ctx, name)
  if v == nil then
    return
  end
  if type(v) ~= 'number' or not util.is_integer(v) or v < 0 then
    fail(('%s%s must be a non-negative integer (ms), got %s'):format(ctx, name,
      type(v) == 'number' and tostring(v) or type_name(v)))
  end
  if v > M.MAX_MS then
    fail(('%s%s must be at most %d ms (about 24.8 days), got %s'):format(ctx, name, M.MAX_MS,
      tostring(v)))
  end
end

local function check_string_list(v, ctx, name, allow_empty)
  if not util.is_sequence(v) then
    fail(('%s%s must be a list of strings, got %s'):format(ctx, name, type_name(v)))
  end
  if #v == 0 and not allow_empty then
    fail(('%s%s must not be empty'):format(ctx, name))
  end
  for _, a in ipairs(v) do
    if type(a) ~= 'string' then
      fail(('%s%s must be a list of strings, got a %s element'):format(ctx, name, type(a)))
    end
    if a:find('\0', 1, true) then
      fail(('%s%s contains a NUL byte'):format(ctx, name))
    end
  end
end

local function check_env(env, ctx, name)
  if env == nil then
    return nil
  end
  expect(env, type(env) == 'table', ctx, name, 'a table of NAME = value')
  local out = {}
  for k, v in pairs(env) do
    if type(k) ~= 'string' or k == '' or k:find('[=%z]') then
      fail(('%s%s has an invalid variable name %s'):format(ctx, name, util.show(k)))
    end
    if v ~= false and type(v) ~= 'string' then
      fail(('%s%s.%s must be a string (or false to unset), got %s'):format(ctx, name, k,
        type_name(v)))
    end
    if type(v) == 'string' and v:find('\0', 1, true) then
      fail(('%s%s.%s contains a NUL byte'):format(ctx, name, k))
    end
    out[k] = v
  end
  return out
end

local function check_user(v, ctx, name)
  if v == nil then
    return
  end
  local ok = (type(v) == 'string' and v ~= '') or (math.type(v) == 'integer' and v >= 0)
  if not ok and (type(v) == 'number' or v == '') then
    fail(('%s%s must be a user name, a uid or "uid:gid", got %s'):format(ctx, name,
      v == '' and 'an empty string' or tostring(v)))
  end
  expect(v, ok, ctx, name, 'a user name, a uid or "uid:gid"')
end

--- Validate a subcontainer value (nil = host process). A plain table holds image metadata
-- (`entrypoint`, `cmd`, `env`, `user`, `workdir`, `image`, `name`); a table with a metatable is a
-- provider object (a later SubContainer issue) and is accepted as is.
function M.subcontainer(sub, ctx)
  if sub == nil then
    return
  end
  expect(sub, type(sub) == 'table', ctx, 'subcontainer', 'a table (image metadata) or nil')
  if getmetatable(sub) ~= nil then
    return
  end
  unknown_keys(sub, SUB_KEYS, ctx, 'subcontainer.')
  if sub.entrypoint ~= nil then
    check_string_list(sub.entrypoint, ctx, 'subcontainer.entrypoint', true)
  end
  if sub.cmd ~= nil then
    check_string_list(sub.cmd, ctx, 'subcontainer.cmd', true)
  end
  check_env(sub.env, ctx, 'subcontainer.env')
  check_user(sub.user, ctx, 'subcontainer.user')
  if sub.workdir ~= nil then
    expect(sub.workdir, type(sub.workdir) == 'string', ctx, 'subcontainer.workdir', 'a string')
  end
end

local function check_command(cmd, ctx, has_sub)
  if type(cmd) == 'string' then
    if cmd == '' then
      fail(ctx .. 'exec.command must not be empty')
    end
    if cmd:find('\0', 1, true) then
      fail(ctx .. 'exec.command contains a NUL byte')
    end
    return cmd
  end
  if getmetatable(cmd) == UseEntrypoint then
    if not has_sub then
      fail(ctx .. 'exec.command = useEntrypoint() needs a subcontainer with image metadata')
    end
    return cmd
  end
  if type(cmd) ~= 'table' then
    fail(('%sexec.command must be a string or a list of strings, got %s'):format(ctx,
      type_name(cmd)))
  end
  check_string_list(cmd, ctx, 'exec.command')
  if cmd[1] == '' then
    fail(ctx .. 'exec.command must not be empty')
  end
  return util.copy(cmd)
end

--- Validate an exec table. `opts.allow_fn` (false for what an `exec.fn` returns) and
-- `opts.has_sub` (a subcontainer was given). Returns a normalised copy and a list of warnings.
-- Raises a validation failure (use through `M.check`).
function M.exec(exec, ctx, opts)
  opts = opts or {}
  local warnings = {}
  expect(exec, type(exec) == 'table', ctx, 'exec', 'a table')
  unknown_keys(exec, EXEC_KEYS, ctx, 'exec.')
  local out = {}
  if exec.fn ~= nil then
    if opts.allow_fn == false then
      fail(ctx .. 'exec.fn cannot be returned by exec.fn')
    end
    expect(exec.fn, type(exec.fn) == 'function', ctx, 'exec.fn', 'a function')
    if exec.command ~= nil then
      fail(ctx .. 'exec: give either command or fn, not both')
    end
    for k in pairs(exec) do
      if not FN_EXEC_KEYS[k] then
        fail(('%sexec.%s cannot be combined with exec.fn (return it from fn instead)'):format(ctx,
          k))
      end
    end
    out.fn = exec.fn
  else
    if exec.command == nil then
      fail(ctx .. 'exec.command is required (a string, a list of strings, or use exec.fn)')
    end
    out.command = check_command(exec.command, ctx, opts.has_sub)
  end
  check_ms(exec.sigtermTimeout, ctx, 'exec.sigtermTimeout')
  out.sigtermTimeout = exec.sigtermTimeout
  out.env = check_env(exec.env, ctx, 'exec.env')
  if exec.cwd ~= nil then
    if exec.cwd == '' then
      fail(ctx .. 'exec.cwd must not be empty')
    end
    expect(exec.cwd, type(exec.cwd) == 'string', ctx, 'exec.cwd', 'a path')
    out.cwd = exec.cwd
  end
  check_user(exec.user, ctx, 'exec.user')
  out.user = exec.user
  if exec.runAsInit ~= nil then
    expect(exec.runAsInit, type(exec.runAsInit) == 'boolean', ctx, 'exec.runAsInit', 'a boolean')
    out.runAsInit = exec.runAsInit
  end
  for _, k in ipairs { 'onStdout', 'onStderr' } do
    if exec[k] ~= nil then
      expect(exec[k], type(exec[k]) == 'function', ctx, 'exec.' .. k, 'a function')
      out[k] = exec[k]
    end
  end
  if out.runAsInit and (out.onStdout or out.onStderr) then
    warnings[#warnings + 1] = ctx .. 'exec.runAsInit ignores onStdout/onStderr '
      .. '(the output is passed through as for an entry without callbacks)'
  end
  return out, warnings
end

local function check_ready(ready, ctx, warnings)
  expect(ready, type(ready) == 'table', ctx, 'ready', 'a table {display, fn, ...}')
  unknown_keys(ready, READY_KEYS, ctx, 'ready.')
  local out = {}
  local display = ready.display
  if display == nil then
    fail(ctx .. 'ready.display is required (string, or false to hide)')
  end
  if display ~= false and type(display) ~= 'string' then
    fail(('%sready.display must be a string or false, got %s'):format(ctx, type_name(display)))
  end
  if display == '' then
    warnings[#warnings + 1] = ctx .. 'ready.display is "" so the check is hidden; '
      .. 'use false to hide a check'
    display = false
  end
  out.display = display
  if ready.fn == nil then
    fail(ctx .. 'ready.fn is required (a function returning {result = ..., message = ...})')
  end
  expect(ready.fn, type(ready.fn) == 'function', ctx, 'ready.fn', 'a function')
  out.fn = ready.fn
  check_ms(ready.gracePeriod, ctx, 'ready.gracePeriod')
  out.gracePeriod = ready.gracePeriod
  check_ms(ready.timeout, ctx, 'ready.timeout')
  out.timeout = ready.timeout
  if ready.trigger ~= nil then
    expect(ready.trigger, type(ready.trigger) == 'function', ctx, 'ready.trigger',
      'a trigger (e.g. trigger.cooldownTrigger(1000))')
    local factory = require('orch.trigger')._factories[ready.trigger]
    if factory then
      fail(('%sready.trigger is trigger.%s itself; call it to make a trigger, e.g. %s'):format(
        ctx, factory[1], factory[2]))
    end
    out.trigger = ready.trigger
  end
  return out
end

local function check_requires(req, ctx, id, known)
  if req == nil then
    fail(ctx .. 'requires is required (a list of earlier ids; {} for none)')
  end
  if not util.is_sequence(req) then
    fail(("Daemons: entry '%s': requires must be a list of ids"):format(id))
  end
  local out, seen = {}, {}
  for _, r in ipairs(req) do
    if type(r) ~= 'string' then
      fail(("Daemons: entry '%s': requires must be a list of ids"):format(id))
    end
    if r == id or not known[r] then
      fail(("Daemons: entry '%s' requires '%s', which must be declared earlier"):format(id, r))
    end
    if not seen[r] then
      seen[r] = true
      out[#out + 1] = r
    end
  end
  return out
end

--- Whether `id` is a valid health check id: `^[a-z0-9]+(-[a-z0-9]+)*$`.
function M.valid_health_id(id)
  return id:match('^[a-z0-9%-]+$') ~= nil and not id:find('^%-') and not id:find('%-$')
    and not id:find('%-%-')
end

--- Membership in a chain's ids in O(1) (building a chain of N entries must not cost N^2).
-- `index` maps an id to the position it was appended at and is shared along a chain's lineage,
-- so a hit is verified against `ids` (branches of one chain share it); only a failed
-- verification scans. Without an index it always scans. `n`: the chain's length (`ids` may be a
-- buffer shared with longer chains of the lineage), default #ids.
function M.id_set(ids, index, n)
  n = n or #ids
  return setmetatable({}, { __index = function(_, id)
    local p = index and index[id]
    if index and p == nil then
      return false
    end
    if p and p <= n and ids[p] == id then
      return true
    end
    for i = 1, n do
      if ids[i] == id then
        return true
      end
    end
    return false
  end })
end

--- Validate the id of a new entry against the ids already in the chain (`known`: M.id_set).
function M.id(id, ids, known)
  if type(id) ~= 'string' then
    if id == nil then
      fail('Daemons: entry has empty id')
    end
    fail(('Daemons: entry id must be a string, got %s'):format(type(id)))
  end
  if id == '' then
    fail('Daemons: entry has empty id')
  end
  if id:sub(1, 2) == '__' then
    fail(("Daemons: id '%s' is reserved (ids starting with '__' are internal)"):format(id))
  end
  if id:find('[%c]') then
    -- %q would break the message over lines at a newline: show every control byte escaped
    local shown = id:gsub('[%c"\\]', function(c)
      local named = { ['\n'] = '\\n', ['\t'] = '\\t', ['\r'] = '\\r', ['"'] = '\\"',
        ['\\'] = '\\\\' }
      return named[c] or ('\\%d'):format(c:byte())
    end)
    fail(('Daemons: id "%s" contains a control character'):format(shown))
  end
  known = known or M.id_set(ids)
  if known[id] then
    fail(("Daemons: duplicate id '%s'"):format(id))
  end
end

--- Validate one `add*` call. `kind` is 'daemon', 'oneshot' or 'health'; `ids` the ids already
-- declared (`index`: see M.id_set). Returns the normalised entry spec and a list of warnings;
-- raises a failure (use through `M.check`).
function M.entry(kind, ids, id, opts, index, n)
  local known = M.id_set(ids, index, n)
  M.id(id, ids, known)
  local ctx = ("Daemons: entry '%s': "):format(id)
  if type(opts) ~= 'table' then
    fail(('%soptions must be a table (or a function returning one), got %s'):format(ctx,
      type_name(opts)))
  end
  unknown_keys(opts, ENTRY_KEYS[kind], ctx, '', MISPLACED[kind])
  local warnings = {}
  local spec = { id = id, kind = kind }
  spec.requires = check_requires(opts.requires, ctx, id, known)
  if kind ~= 'health' then
    M.subcontainer(opts.subcontainer, ctx)
    spec.subcontainer = opts.subcontainer
    if opts.daemon ~= nil then
      if opts.exec ~= nil or opts.subcontainer ~= nil then
        fail(ctx .. 'give either daemon or subcontainer+exec')
      end
      local d = opts.daemon
      if type(d) ~= 'table' or not d.__orch_daemon then
        fail(('%sdaemon must be made by Daemon.of(...), got %s'):format(ctx, type_name(d)))
      end
      spec.daemon = d
      spec.exec = d.exec
      spec.subcontainer = d.subcontainer
    else
      if opts.exec == nil then
        if kind == 'daemon' then
          fail(ctx .. 'exec is required (or daemon = Daemon.of(...))')
        end
        fail(ctx .. 'exec is required')
      end
      local w
      spec.exec, w = M.exec(opts.exec, ctx, { has_sub = opts.subcontainer ~= nil })
      table.move(w, 1, #w, #warnings + 1, warnings)
    end
  end
  if kind ~= 'oneshot' then
    -- A daemon may go without a readiness check (orch's extension: it is ready once its
    -- process runs, and nothing is probed); a health check is nothing but its check.
    if opts.ready == nil and kind == 'health' then
      fail(ctx .. 'ready is required ({display = ..., fn = ...})')
    end
    if opts.ready ~= nil then
      spec.ready = check_ready(opts.ready, ctx, warnings)
    end
  end
  spec.visible = spec.ready ~= nil and type(spec.ready.display) == 'string'
  if not M.valid_health_id(id) then
    if spec.visible then
      fail(("Daemons: id '%s' is not a valid health check id "
        .. '(lowercase letters, digits and single dashes)'):format(id))
    end
    warnings[#warnings + 1] = ("Daemons: id '%s' would not be a valid health check id "
      .. '(lowercase letters, digits and single dashes); fine while hidden'):format(id)
  end
  return spec, warnings
end

--- Validate what an `exec.fn` returned (nil or a command table). Returns the normalised command
-- table or nil; raises a failure (use through `M.check`).
function M.fn_result(res, id, has_sub)
  if res == nil then
    return nil
  end
  local ctx = ("entry '%s': exec.fn returned an invalid command: "):format(id)
  local out = M.exec(res, ctx, { allow_fn = false, has_sub = has_sub })
  return out
end

return M
