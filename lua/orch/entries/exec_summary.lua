--- One-line summaries of an entry's exec table for listings (`orch check`, `chain:entries()`,
-- a pre-built daemon's `tostring`): the command as a shell would read it, and the restart
-- policy with what differs from the defaults.
-- @module orch.entries.exec_summary
local validate = require 'orch.entries.validate_exec'
local vpolicy = require 'orch.entries.validate_policy'

local M = {}

--- One-line summary of an exec table for listings (`orch check`, `chain:entries()`).
function M.summary(exec)
  if exec == nil then
    return ''
  end
  if exec.fn then
    return '<exec.fn>'
  end
  local cmd = exec.command
  if type(cmd) == 'string' then
    return cmd
  end
  if getmetatable(cmd) == validate.UseEntrypoint then
    return tostring(cmd)
  end
  local parts = {}
  for i, a in ipairs(cmd) do
    if a == '' or a:find('[%s\'"\\$`]') then
      a = "'" .. a:gsub("'", "'\\''") .. "'"
    end
    parts[i] = a
  end
  return table.concat(parts, ' ')
end

--- One-line summary of an entry's restart policy for `orch check`: `always`,
-- `on-failure, max 3 in 60000 ms, backoff initial=1000 step=0 factor=2 max=8000`.
function M.policy_summary(exec, kind)
  if exec == nil then
    return '-'
  end
  local parts = { exec.restart or (kind == 'oneshot' and 'on-failure' or 'always') }
  if exec.maxRestarts then
    parts[#parts + 1] = ('max %d%s'):format(exec.maxRestarts,
      exec.restartWindow and (' in %d ms'):format(exec.restartWindow) or '')
  end
  local b = exec.backoff
  if b then
    local kv = {}
    for _, k in ipairs(vpolicy.BACKOFF_KEYS) do
      if b[k] ~= vpolicy.BACKOFF_DEFAULTS[k] then
        kv[#kv + 1] = ('%s=%s'):format(k, tostring(b[k]))
      end
    end
    if #kv > 0 then
      parts[#parts + 1] = 'backoff ' .. table.concat(kv, ' ')
    end
  end
  return table.concat(parts, ', ')
end

return M
