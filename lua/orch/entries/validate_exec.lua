--- Validation of `exec` and `subcontainer` tables (and of what an `exec.fn` returns): the
-- command, environment, working directory and user of a process. Raises `orch.invalid`
-- failures; `orch.validate` re-exports what callers use.
-- @module orch.entries.validate_exec
local util = require 'orch.runtime.util'
local invalid = require 'orch.runtime.invalid'
local validate_log = require 'orch.entries.validate_log'
local vpolicy = require 'orch.entries.validate_policy'
local vstop = require 'orch.entries.validate_stop'

local M = {}

local fail, expect, type_name = invalid.fail, invalid.expect, invalid.type_name
local unknown_keys, check_ms = invalid.unknown_keys, invalid.check_ms
local check_string_list = invalid.check_string_list

local EXEC_KEYS = {
  'command', 'fn', 'env', 'cwd', 'user', 'sigtermTimeout', 'runAsInit', 'onStdout', 'onStderr',
  'log', 'restart', 'maxRestarts', 'restartWindow', 'backoff', -- policy: validate_policy
  'stopSignal', 'stopCommand', 'reloadSignal', 'reloadOnChange', 'envFile', 'limits',
}
local FN_EXEC_KEYS = { fn = true, sigtermTimeout = true, log = true, restart = true,
  maxRestarts = true, restartWindow = true, backoff = true }
local SUB_KEYS = { 'image', 'name', 'entrypoint', 'cmd', 'env', 'user', 'workdir' }
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

-- A uid or gid written in decimal, as an integer, or nil and why not.
local function id_number(kind, digits)
  digits = digits:match('^0*(%d+)$') or digits
  local n = #digits <= 10 and math.tointeger(tonumber(digits))
  if not n or n > M.MAX_UID then
    return nil, ('%s %s is out of range (at most %d)'):format(kind, digits, M.MAX_UID)
  end
  return n
end

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
  local n, why = id_number('uid', uid)
  if not n then
    return nil, why
  end
  if gid == nil then
    return { uid = n }
  end
  local g
  g, why = id_number('gid', gid)
  if not g then
    return nil, why
  end
  return { uid = n, gid = g }
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
  if exec.log ~= nil and opts.allow_fn == false then
    fail(ctx, 'exec.log', 'exec.log cannot be returned by exec.fn (give it beside fn)')
  end
  out.log = validate_log.check(exec.log, ctx)
  if opts.allow_fn == false then -- the policy is the entry's, not a command's
    for _, k in ipairs(vpolicy.KEYS) do
      if exec[k] ~= nil then
        fail(ctx, 'exec.' .. k, ('exec.%s belongs in the entry\'s exec, not in what exec.fn '
          .. 'returns'):format(k))
      end
    end
  end
  vpolicy.exec(exec, out, ctx)
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
  vstop.check(exec, ctx, out)
  if out.runAsInit and (out.onStdout or out.onStderr) then
    warnings[#warnings + 1] = ctx.prefix .. 'exec.runAsInit ignores onStdout/onStderr '
      .. '(the output is passed through as for an entry without callbacks)'
  end
  return out, warnings
end

--- Validate what an `exec.fn` returned (nil or a command table). Returns the normalised command
-- table or nil; raises a failure (use through `M.check`).
function M.fn_result(res, id, has_sub)
  if res == nil then
    return nil
  end
  local ctx = invalid.context(("entry '%s': exec.fn returned an invalid command: "):format(id), id)
  local out = M.exec(res, ctx, { allow_fn = false, has_sub = has_sub })
  return out
end

--- The structured failures of orch.invalid, for the entries that validate (Daemon.of, exec.fn).
M.context = invalid.context
M.check = invalid.check

return M
