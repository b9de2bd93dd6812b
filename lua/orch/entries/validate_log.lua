--- Validation of `exec.log`, an entry's own log file: `{file = PATH, maxSize = SIZE, keep = N}`
-- (every key optional). Sizes are bytes (an integer) or a string with a binary suffix
-- (`'256K'`, `'10M'`, `'1G'`, `'512KiB'`). Raises `orch.invalid` failures naming the field.
-- @module orch.entries.validate_log
local invalid = require 'orch.runtime.invalid'
local util = require 'orch.runtime.util'

local M = {}

local fail, expect, type_name = invalid.fail, invalid.expect, invalid.type_name

--- Defaults: rotate at 10 MiB, keep 5 rotated files (`name.log.1` ... `name.log.5`).
M.DEFAULT_MAX_SIZE = 10 * 1024 * 1024
M.DEFAULT_KEEP = 5

--- The largest `keep` accepted (each rotation renames every kept file).
M.MAX_KEEP = 1000

local KEYS = { 'file', 'maxSize', 'keep' }
-- floats as 1024 ^ k gave, written out: folding `^` calls libm's pow() while the module loads,
-- which maps ~380 KiB of libm into orch's RSS
local UNITS = { [''] = 1, K = 1024, M = 1048576.0, G = 1073741824.0 }

--- Bytes of a size (`10485760`, `'10M'`, `'256KiB'`, `'1g'`), or nil when it is not one.
function M.parse_size(v)
  if math.type(v) == 'integer' then
    return v > 0 and v or nil
  end
  if type(v) ~= 'string' then
    return nil
  end
  local n, unit = v:upper():match('^%s*(%d+)%s*([KMG]?)I?B?%s*$')
  if not n then
    return nil
  end
  local bytes = math.tointeger(tonumber(n) * UNITS[unit])
  if not bytes or bytes <= 0 then
    return nil
  end
  return bytes
end

--- Validate `log` (the value of `exec.log`) in the context `ctx` (orch.invalid). Returns the
-- normalised `{file = string|nil, maxSize = bytes, keep = integer}`, or nil when `log` is nil.
function M.check(log, ctx)
  if log == nil then
    return nil
  end
  expect(log, type(log) == 'table' and getmetatable(log) == nil, ctx, 'exec.log',
    'a table {file = ..., maxSize = ..., keep = ...}')
  invalid.unknown_keys(log, KEYS, ctx, 'exec.log.')
  local out = { maxSize = M.DEFAULT_MAX_SIZE, keep = M.DEFAULT_KEEP }
  if log.file ~= nil then
    expect(log.file, type(log.file) == 'string', ctx, 'exec.log.file', 'a path')
    if log.file == '' or log.file:find('\0', 1, true) or log.file:sub(-1) == '/' then
      fail(ctx, 'exec.log.file', ('exec.log.file must be a file path, got %s'):format(
        util.show(log.file)))
    end
    out.file = log.file
  end
  if log.maxSize ~= nil then
    local bytes = M.parse_size(log.maxSize)
    if not bytes then
      fail(ctx, 'exec.log.maxSize', ("exec.log.maxSize must be a size in bytes (an integer or "
        .. "a string such as '10M', '256K'), got %s"):format(type(log.maxSize) == 'string'
        and util.show(log.maxSize) or type_name(log.maxSize)))
    end
    out.maxSize = bytes
  end
  if log.keep ~= nil then
    if math.type(log.keep) ~= 'integer' or log.keep < 0 or log.keep > M.MAX_KEEP then
      fail(ctx, 'exec.log.keep', ('exec.log.keep must be an integer from 0 to %d (rotated '
        .. 'files kept), got %s'):format(M.MAX_KEEP, math.type(log.keep) == 'integer'
        and tostring(log.keep) or type_name(log.keep)))
    end
    out.keep = log.keep
  end
  return out
end

return M
