--- A service's readiness and requirements in `orch import compose`
-- (orch.export.import_compose): its healthcheck as a `ready` block (`runHealthScript` with
-- compose's interval, retries, start period and timeout) and its `depends_on` as `requires`.
-- Both write into the translation's context `ctx` (`w` writes a line; `file`, `loss`,
-- `services`, `names`, `oneshot`; `helpers` is set when the healthCheck/trigger helpers are
-- used).
-- @module orch.export.import_compose_ready
local ids = require 'orch.graph.ids'
local values = require 'orch.export.import_compose_values'

local lua_string, lua_key, lua_list = values.lua_string, values.lua_key, values.lua_list
local unescape, duration = values.unescape, values.duration

local M = {}

--- compose's healthcheck defaults (ms), the docker engine's.
M.HEALTH_DEFAULTS = { interval = 30000, timeout = 30000, retries = 3, start_period = 0 }

--- The `ready` block of service `name` (`s`, a `kind` 'Daemon' or 'Oneshot') from its
-- healthcheck, if it has one; true, or nil and an error.
function M.write_ready(ctx, name, s, kind)
  local w, loss = ctx.w, ctx.loss
  local hc = s.healthcheck
  if type(hc) == 'table' and hc.test and not hc.disable and not (type(hc.test) == 'table'
    and hc.test[1] == 'NONE') then
    if kind == 'Oneshot' then
      loss:add(name, 'healthcheck', 'a oneshot is ready when it exits successfully')
    else
      local test = hc.test
      local probe
      if type(test) == 'string' then
        probe = lua_string(unescape(test))
      elseif test[1] == 'CMD-SHELL' then
        probe = lua_string(unescape(test[2]))
      elseif test[1] == 'CMD' then
        local list = {}
        for i = 2, #test do
          list[#list + 1] = unescape(tostring(test[i]))
        end
        probe = lua_list(list)
      else
        return nil, ("%s: service '%s': healthcheck test must start with CMD or CMD-SHELL")
          :format(ctx.file, name)
      end
      local d = M.HEALTH_DEFAULTS
      local interval = duration(hc.interval) or d.interval
      local timeout = duration(hc.timeout) or d.timeout
      local start = duration(hc.start_period) or d.start_period
      local visible = ids.valid_health_id(name)
      ctx.helpers = true
      w('    ready = {')
      w(('      display = %s,'):format(visible and lua_string(name) or 'false'))
      w('      fn = function()')
      w(('        return healthCheck.runHealthScript(%s, { timeout = %d })'):format(probe,
        timeout))
      w('      end,')
      w(('      trigger = trigger.cooldownTrigger(%d),'):format(interval))
      w(('      failureThreshold = %d,'):format(hc.retries or d.retries))
      w(('      gracePeriod = %d,'):format(start))
      w(('      timeout = %d,'):format(timeout))
      w('    },')
      if hc.start_interval then
        loss:add(name, 'healthcheck.start_interval', 'not mapped')
      end
    end
  end
  return true
end

--- The `requires` line of service `name` (`s`) from its depends_on.
function M.write_requires(ctx, name, s)
  local w, loss, services, oneshot, names = ctx.w, ctx.loss, ctx.services, ctx.oneshot, ctx.names
  local deps = s.depends_on
  local req = {}
  -- compose orders the start only: a running service ignores what it depends on later
  local function add_req(d, c)
    if c == 'service_started' and type(services[d].healthcheck) == 'table' then
      loss:add(name, 'depends_on.' .. d, ('service_started: orch waits for %s to be '
        .. 'ready'):format(d))
    end
    if oneshot[d] then
      req[#req + 1] = lua_string(d)
    else
      req[#req + 1] = ("%s = { onUnhealthy = 'ignore' }"):format(lua_key(d))
    end
  end
  if type(deps) == 'table' then
    if #deps > 0 then
      for _, d in ipairs(deps) do
        add_req(tostring(d), 'service_started')
      end
    else
      local keys = {}
      for d in pairs(deps) do
        keys[#keys + 1] = d
      end
      table.sort(keys, function(a, b)
        return names.index[a] < names.index[b]
      end)
      for _, d in ipairs(keys) do
        add_req(d, type(deps[d]) == 'table' and deps[d].condition or 'service_started')
        if type(deps[d]) == 'table' and deps[d].restart then
          loss:add(name, 'depends_on.' .. d .. '.restart', 'not mapped')
        end
      end
    end
  end
  w(('    requires = { %s },'):format(table.concat(req, ', ')):gsub('{  }', '{}'))
end

return M
