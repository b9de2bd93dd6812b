--- Validation of the options given to `Daemons:add*` and `Daemon.of`.
-- Every check runs at the `add*` call (TypeScript checked these at compile time). A failed check
-- raises a structured error (`M.Invalid`: `field`, `id`, `message`; `tostring` gives the message)
-- that `M.check` returns as `nil, err`; the public methods raise its text at level 2, so the
-- error points at the caller's line in main.lua, and the CLI's locator finds `field` in the
-- source without reading the text. Wording follows reference.md section 5.3; unknown keys
-- name the nearest valid key (`exec.sigterm_timeout` suggests `sigtermTimeout`).
-- @module orch.validate
local util = require 'orch.util'
local ids = require 'orch.ids'

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

--- A validation failure: `message` (the whole text, wording of reference.md 5.3; also what
-- `tostring` gives), `field` (the option it is about, as written in the script:
-- `exec.sigtermTimeout`, `requires`, `exec.env.PATH`; nil when it is about the id or the entry
-- as a whole) and `id` (the entry's id, when it is about an entry).
local Invalid = {}
Invalid.__index = Invalid
Invalid.__tostring = function(e)
  return e.message
end
M.Invalid = Invalid

--- Whether `e` is a validation failure.
function M.is_invalid(e)
  return getmetatable(e) == Invalid
end

--- A context for messages: their prefix (`Daemons: entry 'web': `) and the entry's id.
function M.context(prefix, id)
  return { prefix = prefix, id = id }
end

-- Raise a failure about `field` of the entry of `ctx`; `text` follows the context's prefix.
local function fail(ctx, field, text)
  error(setmetatable({ field = field, id = ctx.id, message = ctx.prefix .. text }, Invalid), 0)
end

-- The same with a message that does not start with the context's prefix.
local function fail_whole(ctx, field, message)
  error(setmetatable({ field = field, id = ctx.id, message = message }, Invalid), 0)
end

--- Run `fn(...)`; a validation failure becomes `nil, err` (an `M.Invalid`), anything else is
-- re-raised.
function M.check(fn, ...)
  local res = table.pack(pcall(fn, ...))
  if res[1] then
    return table.unpack(res, 2, res.n)
  end
  local err = res[2]
  if getmetatable(err) == Invalid then
    return nil, err
  end
  error(err, 0)
end

--- `useEntrypoint([override])`: a command marker resolved at spawn time from the subcontainer.
-- Raises (level 2) when `override` is not a list of strings.
function M.use_entrypoint(override)
  if override ~= nil then
    if not util.is_sequence(override) then
      util.bad_argument(1, 'useEntrypoint', 'list of strings expected, got ' .. type(override), 2)
    end
    for _, a in ipairs(override) do
      if type(a) ~= 'string' then
        util.bad_argument(1, 'useEntrypoint', 'list of strings expected', 2)
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
  local field = path .. tostring(k)
  if misplaced and misplaced[k] then
    fail(ctx, field, ('unknown option %s (%s)'):format(field, misplaced[k]))
  end
  local near = util.nearest(k, valid)
  if near then
    fail(ctx, field, ('unknown option %s (did you mean %s?)'):format(field, near))
  end
  fail(ctx, field, ('unknown option %s (valid: %s)'):format(field, util.join(valid)))
end

local function expect(v, ok, ctx, name, what)
  if not ok then
    fail(ctx, name, ('%s must be %s, got %s'):format(name, what, type_name(v)))
  end
end

--- The longest time option accepted (ms): 2^31 - 1, about 24.8 days (what a JavaScript
-- timer accepts: upstream code with more would fire at once).
M.MAX_MS = util.MAX_MS

local function check_ms(v, ctx, name)
  if v == nil then
    return
  end
  local bad, shown = util.check_ms(v)
  if bad == 'type' then
    fail(ctx, name, ('%s must be a non-negative integer (ms), got %s'):format(name, shown))
  elseif bad then
    fail(ctx, name, ('%s must be at most %d ms (about 24.8 days), got %s'):format(name,
      M.MAX_MS, shown))
  end
end

local function check_string_list(v, ctx, name, allow_empty)
  if not util.is_sequence(v) then
    fail(ctx, name, ('%s must be a list of strings, got %s'):format(name, type_name(v)))
  end
  if #v == 0 and not allow_empty then
    fail(ctx, name, name .. ' must not be empty')
  end
  for _, a in ipairs(v) do
    if type(a) ~= 'string' then
      fail(ctx, name, ('%s must be a list of strings, got a %s element'):format(name, type(a)))
    end
    if a:find('\0', 1, true) then
      fail(ctx, name, name .. ' contains a NUL byte')
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
      fail(ctx, name, ('%s has an invalid variable name %s'):format(name, util.show(k)))
    end
    local field = name .. '.' .. k
    if v ~= false and type(v) ~= 'string' then
      fail(ctx, field, ('%s must be a string (or false to unset), got %s'):format(field,
        type_name(v)))
    end
    if type(v) == 'string' and v:find('\0', 1, true) then
      fail(ctx, field, field .. ' contains a NUL byte')
    end
    out[k] = v
  end
  return out
end

-- A string path option: not empty, no NUL byte (C would cut the path there).
local function check_path(v, ctx, name, what)
  if v == nil then
    return
  end
  if v == '' then
    fail(ctx, name, name .. ' must not be empty')
  end
  expect(v, type(v) == 'string', ctx, name, what)
  if v:find('\0', 1, true) then
    fail(ctx, name, name .. ' contains a NUL byte')
  end
end

--- The largest uid or gid: uid_t and gid_t are 32 bits, and (uid_t)-1 means "unchanged" to
-- setuid-family calls, so it cannot name a user.
M.MAX_UID = 4294967294

--- What `user` names (a user name, a uid or `"uid:gid"`): `{name = s}` or `{uid = n[, gid = n]}`,
-- or nil and what is wrong with it. Numeric strings are read as spawn reads them (decimal).
function M.parse_user(v)
  if math.type(v) == 'integer' then
    if v < 0 then
      return nil, 'form'
    end
    if v > M.MAX_UID then
      return nil, ('uid %d is out of range (at most %d)'):format(v, M.MAX_UID)
    end
    return { uid = v }
  end
  if type(v) ~= 'string' or v == '' then
    return nil, 'form'
  end
  if v:find('\0', 1, true) then
    return nil, 'contains a NUL byte'
  end
  -- a name never starts with white space, '+' or '-'; C's strtol would read '+5' as uid 5
  if v:find('^[%s+-]') then
    return nil, 'form'
  end
  local uid, gid = v:match('^(%d+):(.*)$')
  if not uid then
    uid = v:match('^%d+$')
    if not uid then
      return { name = v }
    end
  elseif not gid:match('^%d+$') then
    return nil, ('"uid:gid" needs a numeric gid, got %s'):format(util.show(gid))
  end
  local out = {}
  for _, p in ipairs { { 'uid', uid }, { 'gid', gid } } do
    local digits = p[2] and p[2]:gsub('^0+(%d)', '%1')
    if digits then
      if #digits > 10 or tonumber(digits) > M.MAX_UID then
        return nil, ('%s %s is out of range (at most %d)'):format(p[1], digits, M.MAX_UID)
      end
      out[p[1]] = math.tointeger(tonumber(digits))
    end
  end
  return out
end

local function check_user(v, ctx, name)
  if v == nil then
    return
  end
  local ok, why = M.parse_user(v)
  if ok then
    return
  end
  if why ~= 'form' then
    fail(ctx, name, ('%s %s'):format(name, why))
  end
  if type(v) == 'number' or v == '' then
    fail(ctx, name, ('%s must be a user name, a uid or "uid:gid", got %s'):format(name,
      v == '' and 'an empty string' or tostring(v)))
  end
  if type(v) == 'string' then
    fail(ctx, name, ('%s must be a user name, a uid or "uid:gid", got %s'):format(name,
      util.show(v)))
  end
  expect(v, false, ctx, name, 'a user name, a uid or "uid:gid"')
end

--- Validate a subcontainer value (nil = host process). A plain table holds image metadata
-- (`entrypoint`, `cmd`, `env`, `user`, `workdir`, `image`, `name`); a table with a metatable is a
-- provider object (a later SubContainer issue) and is accepted as is. `ctx`: `M.context`.
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
    if sub.workdir:find('\0', 1, true) then
      fail(ctx, 'subcontainer.workdir', 'subcontainer.workdir contains a NUL byte')
    end
  end
end

local function check_command(cmd, ctx, has_sub)
  local name = 'exec.command'
  if type(cmd) == 'string' then
    if cmd == '' then
      fail(ctx, name, 'exec.command must not be empty')
    end
    if cmd:find('\0', 1, true) then
      fail(ctx, name, 'exec.command contains a NUL byte')
    end
    return cmd
  end
  if getmetatable(cmd) == UseEntrypoint then
    if not has_sub then
      fail(ctx, name, 'exec.command = useEntrypoint() needs a subcontainer with image metadata')
    end
    return cmd
  end
  if type(cmd) ~= 'table' then
    fail(ctx, name, ('exec.command must be a string or a list of strings, got %s'):format(
      type_name(cmd)))
  end
  check_string_list(cmd, ctx, name)
  if cmd[1] == '' then
    fail(ctx, name, 'exec.command must not be empty')
  end
  return util.copy(cmd)
end

--- Validate an exec table. `ctx`: `M.context`; `opts.allow_fn` (false for what an `exec.fn`
-- returns) and `opts.has_sub` (a subcontainer was given). Returns a normalised copy and a list of
-- warnings. Raises a validation failure (use through `M.check`).
function M.exec(exec, ctx, opts)
  opts = opts or {}
  local warnings = {}
  expect(exec, type(exec) == 'table', ctx, 'exec', 'a table')
  unknown_keys(exec, EXEC_KEYS, ctx, 'exec.')
  local out = {}
  if exec.fn ~= nil then
    if opts.allow_fn == false then
      fail(ctx, 'exec.fn', 'exec.fn cannot be returned by exec.fn')
    end
    expect(exec.fn, type(exec.fn) == 'function', ctx, 'exec.fn', 'a function')
    if exec.command ~= nil then
      fail(ctx, 'exec', 'exec: give either command or fn, not both')
    end
    for k in pairs(exec) do
      if not FN_EXEC_KEYS[k] then
        fail(ctx, 'exec.' .. k, ('exec.%s cannot be combined with exec.fn (return it from fn '
          .. 'instead)'):format(k))
      end
    end
    out.fn = exec.fn
  else
    if exec.command == nil then
      fail(ctx, 'exec.command',
        'exec.command is required (a string, a list of strings, or use exec.fn)')
    end
    out.command = check_command(exec.command, ctx, opts.has_sub)
  end
  check_ms(exec.sigtermTimeout, ctx, 'exec.sigtermTimeout')
  out.sigtermTimeout = exec.sigtermTimeout
  out.env = check_env(exec.env, ctx, 'exec.env')
  check_path(exec.cwd, ctx, 'exec.cwd', 'a path')
  out.cwd = exec.cwd
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
    warnings[#warnings + 1] = ctx.prefix .. 'exec.runAsInit ignores onStdout/onStderr '
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
  if ready.fn == nil then
    fail(ctx, 'ready.fn', 'ready.fn is required (a function returning {result = ..., '
      .. 'message = ...})')
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
      fail(ctx, 'ready.trigger', ('ready.trigger is trigger.%s itself; call it to make a '
        .. 'trigger, e.g. %s'):format(factory[1], factory[2]))
    end
    out.trigger = ready.trigger
  end
  return out
end

local function check_requires(req, ctx, id, known)
  if req == nil then
    fail(ctx, 'requires', 'requires is required (a list of earlier ids; {} for none)')
  end
  if not util.is_sequence(req) then
    fail(ctx, 'requires', 'requires must be a list of ids')
  end
  local out, seen = {}, {}
  for _, r in ipairs(req) do
    if type(r) ~= 'string' then
      fail(ctx, 'requires', 'requires must be a list of ids')
    end
    if r == id or not known[r] then
      fail_whole(ctx, 'requires', ("Daemons: entry '%s' requires '%s', which must be declared "
        .. 'earlier'):format(id, r))
    end
    if not seen[r] then
      seen[r] = true
      out[#out + 1] = r
    end
  end
  return out
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
  spec.requires = check_requires(opts.requires, ctx, id, known)
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
  end
  if kind ~= 'oneshot' then
    -- A daemon may go without a readiness check (orch's extension: it is ready once its
    -- process runs, and nothing is probed); a health check is nothing but its check.
    if opts.ready == nil and kind == 'health' then
      fail(ctx, 'ready', 'ready is required ({display = ..., fn = ...})')
    end
    if opts.ready ~= nil then
      spec.ready = check_ready(opts.ready, ctx, warnings)
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

--- Validate what an `exec.fn` returned (nil or a command table). Returns the normalised command
-- table or nil; raises a failure (use through `M.check`).
function M.fn_result(res, id, has_sub)
  if res == nil then
    return nil
  end
  local ctx = M.context(("entry '%s': exec.fn returned an invalid command: "):format(id), id)
  local out = M.exec(res, ctx, { allow_fn = false, has_sub = has_sub })
  return out
end

return M
