--- Validation of the `exec` keys for how a process is stopped, reloaded and bounded:
-- `stopSignal`, `stopCommand`, `reloadSignal`, `reloadOnChange`, `envFile`, `limits`
-- (orch.entries.validate_exec calls it). Raises `orch.invalid` failures naming the entry and
-- the field.
-- @module orch.entries.validate_stop
local util = require 'orch.runtime.util'
local invalid = require 'orch.runtime.invalid'

local M = {}

local fail, expect, type_name = invalid.fail, invalid.expect, invalid.type_name

--- The signals a stop or reload may send (as the core names them).
M.SIGNALS = { 'SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGTERM', 'SIGKILL', 'SIGUSR1', 'SIGUSR2',
  'SIGALRM', 'SIGCONT', 'SIGWINCH', 'SIGPWR', 'SIGABRT', 'SIGXCPU', 'SIGIO', 'SIGURG' }

--- The keys of `exec.limits`.
M.LIMIT_KEYS = { 'memory', 'cpu', 'pids', 'nofile', 'core' }

-- floats as 1024 ^ k gave, written out: folding `^` calls libm's pow() (~380 KiB of RSS)
local UNITS = { [''] = 1, K = 1024, M = 1048576.0, G = 1073741824.0, T = 1099511627776.0 }

--- A memory size (`'512M'`, `'1G'`, `'100K'`, a number of bytes) in bytes, or nil.
function M.parse_size(v)
  if math.type(v) == 'integer' then
    return v > 0 and v or nil
  end
  if type(v) ~= 'string' then
    return nil
  end
  local num, unit = v:upper():match('^(%d+%.?%d*)%s*([KMGT]?)I?B?$')
  local n = num and tonumber(num)
  if not n then
    return nil
  end
  local bytes = math.tointeger(math.floor(n * UNITS[unit]))
  return bytes and bytes > 0 and bytes or nil
end

local function check_signal(v, ctx, field)
  if v == nil then
    return nil
  end
  local name = type(v) == 'string' and v:upper() or nil
  if name and name:sub(1, 3) ~= 'SIG' then
    name = 'SIG' .. name
  end
  if not (name and util.contains(M.SIGNALS, name)) then
    local near = type(v) == 'string' and util.nearest(name, M.SIGNALS)
    fail(ctx, field, ('%s must be a signal name (%s), got %s%s'):format(field,
      util.join(M.SIGNALS), util.show(v), near and (' (did you mean ' .. near .. '?)') or ''))
  end
  return name
end

local function check_count(v, ctx, field, min)
  if v == nil then
    return nil
  end
  if math.type(v) ~= 'integer' or v < min then
    fail(ctx, field, ('%s must be an integer >= %d, got %s'):format(field, min, util.show(v)))
  end
  return v
end

local function check_limits(limits, ctx)
  if limits == nil then
    return nil
  end
  expect(limits, type(limits) == 'table', ctx, 'exec.limits',
    'a table {memory, cpu, pids, nofile, core}')
  invalid.unknown_keys(limits, M.LIMIT_KEYS, ctx, 'exec.limits.')
  local out = {}
  if limits.memory ~= nil then
    out.memory = M.parse_size(limits.memory)
    if not out.memory then
      fail(ctx, 'exec.limits.memory', ("exec.limits.memory must be a size such as '512M' or "
        .. "'2G' (or bytes), got %s"):format(util.show(limits.memory)))
    end
  end
  if limits.cpu ~= nil then
    local cpu = limits.cpu
    if type(cpu) ~= 'number' or cpu ~= cpu or cpu <= 0 or cpu > 4096 then
      fail(ctx, 'exec.limits.cpu', ('exec.limits.cpu must be a number of CPUs > 0 (1.5: one '
        .. 'and a half), got %s'):format(util.show(limits.cpu)))
    end
    out.cpu = limits.cpu
  end
  out.pids = check_count(limits.pids, ctx, 'exec.limits.pids', 1)
  out.nofile = check_count(limits.nofile, ctx, 'exec.limits.nofile', 1)
  out.core = check_count(limits.core, ctx, 'exec.limits.core', 0)
  return next(out) and out or nil
end

--- The stop/reload/limit keys a validated `exec` sets, in a line for `orch check` (`stop
-- SIGINT, reload SIGHUP on change, limits memory=512M pids=64`); nil when none.
function M.summary(exec)
  if exec == nil then
    return nil
  end
  local parts = {}
  if exec.stopSignal then
    parts[#parts + 1] = 'stop ' .. exec.stopSignal
  elseif exec.stopCommand then
    parts[#parts + 1] = 'stopCommand'
  end
  if exec.reloadSignal then
    parts[#parts + 1] = 'reload ' .. exec.reloadSignal
      .. (exec.reloadOnChange == 'signal' and ' on change' or '')
  end
  local l = exec.limits
  if l then
    local kv = {}
    for _, k in ipairs({ 'memory', 'cpu', 'pids', 'nofile', 'core' }) do
      local v = l[k]
      if k == 'memory' and v then -- bytes, shown as the largest unit that divides them
        for _, u in ipairs({ { 1073741824, 'G' }, { 1048576, 'M' }, { 1024, 'K' } }) do
          if v % u[1] == 0 then
            v = ('%d%s'):format(v // u[1], u[2])
            break
          end
        end
      end
      if v ~= nil then
        kv[#kv + 1] = ('%s=%s'):format(k, tostring(v))
      end
    end
    parts[#parts + 1] = 'limits ' .. table.concat(kv, ' ')
  end
  return #parts > 0 and table.concat(parts, ', ') or nil
end

--- Check the stop/reload/limit keys of `exec` into `out` (the normalised exec table).
function M.check(exec, ctx, out)
  out.stopSignal = check_signal(exec.stopSignal, ctx, 'exec.stopSignal')
  out.reloadSignal = check_signal(exec.reloadSignal, ctx, 'exec.reloadSignal')
  local roc = exec.reloadOnChange
  if roc ~= nil then
    if roc ~= 'restart' and roc ~= 'signal' then
      local near = type(roc) == 'string' and util.nearest(roc, { 'restart', 'signal' })
      fail(ctx, 'exec.reloadOnChange', ("exec.reloadOnChange must be 'restart' or 'signal', got "
        .. '%s%s'):format(util.show(roc), near and (' (did you mean ' .. near .. '?)') or ''))
    end
    if roc == 'signal' and not out.reloadSignal then
      fail(ctx, 'exec.reloadOnChange', "exec.reloadOnChange = 'signal' needs exec.reloadSignal "
        .. "(the signal on which the service reloads its configuration, e.g. 'SIGHUP')")
    end
    out.reloadOnChange = roc
  end
  if exec.stopCommand ~= nil then
    local c = exec.stopCommand
    if type(c) == 'string' then
      if c == '' then
        fail(ctx, 'exec.stopCommand', 'exec.stopCommand cannot be empty')
      end
    else
      invalid.check_string_list(c, ctx, 'exec.stopCommand')
    end
    if exec.stopSignal ~= nil then
      fail(ctx, 'exec.stopCommand', 'give exec.stopCommand or exec.stopSignal, not both')
    end
    out.stopCommand = type(c) == 'string' and c or util.copy(c)
  end
  if exec.envFile ~= nil then
    local f = exec.envFile
    if type(f) ~= 'string' or f == '' or f:find('\0', 1, true) then
      fail(ctx, 'exec.envFile', ('exec.envFile must be a path, got %s'):format(type_name(f)))
    end
    out.envFile = f
  end
  out.limits = check_limits(exec.limits, ctx)
end

return M
