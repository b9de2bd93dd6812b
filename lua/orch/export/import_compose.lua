--- `orch import compose`: a docker compose file as a readable main.lua. One `addDaemon` per
-- service (`addOneshot` for a service that others wait for with
-- `service_completed_successfully`), declared so that every requirement comes first; a
-- healthcheck becomes `runHealthScript` with its interval, retries, start period and timeout;
-- `depends_on` becomes `requires`. What has no equivalent is a loss (`build`, `ports`,
-- `networks`, ...).
-- @module orch.export.import_compose
local yaml_read = require 'orch.export.yaml_read'
local ids = require 'orch.graph.ids'

local M = {}

-- compose's healthcheck defaults (ms), the docker engine's
M.HEALTH_DEFAULTS = { interval = 30000, timeout = 30000, retries = 3, start_period = 0 }

--- Milliseconds of a compose duration (`1m30s`, `500ms`, `10s`, or a number of seconds).
function M.duration(v)
  if type(v) == 'number' then
    return math.tointeger(v * 1000)
  end
  if type(v) ~= 'string' or v == '' then
    return nil
  end
  local total, rest = 0, v
  local units = { h = 3600000, m = 60000, s = 1000, ms = 1, us = 0.001 }
  while rest ~= '' do
    local num, unit, tail = rest:match('^(%d+%.?%d*)(%a+)(.*)$')
    if not num or not units[unit] then
      return nil
    end
    total = total + tonumber(num) * units[unit]
    rest = tail
  end
  return math.tointeger(math.floor(total + 0.5))
end

-- A command as compose would exec it: a list as is, a string split as a shell would (quotes).
local function split_words(s)
  local words, cur, q, any = {}, {}, nil, false
  local i = 1
  while i <= #s do
    local c = s:sub(i, i)
    if q then
      if c == q then
        q = nil
      elseif c == '\\' and q == '"' and i < #s then
        i = i + 1
        cur[#cur + 1] = s:sub(i, i)
      else
        cur[#cur + 1] = c
      end
    elseif c == '"' or c == "'" then
      q, any = c, true
    elseif c == '\\' and i < #s then
      i = i + 1
      cur[#cur + 1] = s:sub(i, i)
      any = true
    elseif c:match('%s') then
      if #cur > 0 or any then
        words[#words + 1] = table.concat(cur)
        cur, any = {}, false
      end
    else
      cur[#cur + 1] = c
      any = true
    end
    i = i + 1
  end
  if #cur > 0 or any then
    words[#words + 1] = table.concat(cur)
  end
  return words
end

local function strings(list)
  local out = {}
  for i, v in ipairs(list) do
    out[i] = tostring(v)
  end
  return out
end

local function command_of(v)
  if type(v) == 'string' then
    return split_words(v)
  elseif type(v) == 'table' then
    return strings(v)
  end
  return nil
end

-- compose's `$$` is a literal `$` (other interpolation is left as written, with a loss)
local function unescape(s)
  return (tostring(s):gsub('%$%$', '$'))
end

local function has_interpolation(s)
  return tostring(s):gsub('%$%$', ''):find('%$[{%w_]') ~= nil
end

-- Lua source for a value.
local function lua_string(s)
  return (('%q'):format(s):gsub('\\\n', '\\n'):gsub('\\9', '\\t'))
end

local function lua_key(k)
  if k:match('^[%a_][%w_]*$') then
    return k
  end
  return '[' .. lua_string(k) .. ']'
end

local function lua_list(list)
  local parts = {}
  for i, v in ipairs(list) do
    parts[i] = lua_string(v)
  end
  return '{ ' .. table.concat(parts, ', ') .. ' }'
end

local KNOWN = {
  image = true, command = true, entrypoint = true, environment = true, env_file = true,
  user = true, working_dir = true, stop_signal = true, stop_grace_period = true,
  healthcheck = true, depends_on = true, restart = true, deploy = true, pids_limit = true,
  ulimits = true, init = true,
}

local RESTART = { no = 'never', always = 'always', ['on-failure'] = 'on-failure',
  ['unless-stopped'] = 'always' }

-- The services in an order where each comes after what it depends on (file order otherwise).
local function order(services, names)
  local out, state = {}, {}
  local function visit(name, path)
    if state[name] == 'done' then
      return true
    end
    if state[name] == 'visiting' then
      return nil, ('depends_on cycle: %s'):format(table.concat(path, ' -> ') .. ' -> ' .. name)
    end
    state[name] = 'visiting'
    path[#path + 1] = name
    local deps = services[name].depends_on
    local list = {}
    if type(deps) == 'table' then
      if #deps > 0 then
        list = strings(deps)
      else
        for k in pairs(deps) do
          list[#list + 1] = k
        end
        table.sort(list, function(a, b)
          return (names.index[a] or 0) < (names.index[b] or 0)
        end)
      end
    end
    for _, d in ipairs(list) do
      if not services[d] then
        return nil, ("service '%s' depends on '%s', which is not a service"):format(name, d)
      end
      local ok, err = visit(d, path)
      if not ok then
        return nil, err
      end
    end
    path[#path] = nil
    state[name] = 'done'
    out[#out + 1] = name
    return true
  end
  for _, name in ipairs(names) do
    local ok, err = visit(name, {})
    if not ok then
      return nil, err
    end
  end
  return out
end

-- The order of the services' keys in the file (mappings lose it): scan the top-level lines.
local function file_order(text)
  local names, index, in_services, indent = {}, {}, false, nil
  for line in (text .. '\n'):gmatch('([^\n]*)\n') do
    if line:match('^services%s*:') then
      in_services = true
    elseif line:match('^%S') then
      in_services = false
    elseif in_services then
      local ind, key = line:match('^( +)([^%s#:][^:]-)%s*:')
      if ind and (indent == nil or #ind == indent) then
        indent = #ind
        key = key:gsub('^["\'](.*)["\']$', '%1')
        names[#names + 1] = key
        index[key] = #names
      end
    end
  end
  names.index = index
  return names
end

--- Translate compose `text` (from `file`); returns the main.lua source, or nil and an error.
function M.translate(text, file, loss)
  local doc, err = yaml_read.decode(text)
  if not doc then
    return nil, ('%s: %s'):format(file, err)
  end
  if type(doc) ~= 'table' or type(doc.services) ~= 'table' then
    return nil, ('%s: no services'):format(file)
  end
  for k in pairs(doc) do
    if k ~= 'services' and k ~= 'version' and k ~= 'name' then
      loss:add(nil, k, ('top-level %s: not mapped'):format(k))
    end
  end
  local services = doc.services
  local names = file_order(text)
  local known = {}
  for _, n in ipairs(names) do
    known[n] = true
  end
  local extra = {}
  for n in pairs(services) do
    if not known[n] then
      extra[#extra + 1] = n
    end
  end
  table.sort(extra)
  for _, n in ipairs(extra) do
    names[#names + 1] = n
    names.index[n] = #names
  end
  local ordered, oerr = order(services, names)
  if not ordered then
    return nil, ('%s: %s'):format(file, oerr)
  end
  -- a service that another waits for with service_completed_successfully is a oneshot
  local oneshot = {}
  for _, s in pairs(services) do
    if type(s.depends_on) == 'table' and #s.depends_on == 0 then
      for d, c in pairs(s.depends_on) do
        if type(c) == 'table' and c.condition == 'service_completed_successfully' then
          oneshot[d] = true
        end
      end
    end
  end
  local out = {
    ('-- main.lua imported by `orch import compose` from %s'):format(file:match('[^/]*$')),
    "local orch = require 'orch'",
    false, -- the helpers' line, when a healthcheck uses them
    '',
    'return orch.Daemons.of{}',
  }
  local function w(s)
    out[#out + 1] = s
  end
  for _, name in ipairs(ordered) do
    local s = services[name]
    local shown, problem = ids.problem(name)
    if shown then
      return nil, ("%s: service %s cannot be an orch id: it %s"):format(file, shown, problem)
    end
    for k in pairs(s) do
      if not KNOWN[k] then
        loss:add(name, k, ('%s: not mapped'):format(k))
      end
    end
    local kind = oneshot[name] and 'Oneshot' or 'Daemon'
    w(('  :add%s(%s, {'):format(kind, lua_string(name)))
    if s.image then
      w(('    subcontainer = { image = %s },'):format(lua_string(tostring(s.image))))
    end
    w('    exec = {')
    local argv = command_of(s.command)
    local ep = command_of(s.entrypoint)
    if ep then
      local full = ep
      for _, a in ipairs(argv or {}) do
        full[#full + 1] = a
      end
      argv = full
      loss:add(name, 'entrypoint', 'joined with command into exec.command')
    end
    if argv and #argv > 0 then
      for i, a in ipairs(argv) do
        if has_interpolation(a) then
          loss:add(name, 'command', ('%s: compose interpolates it from its environment; orch '
            .. 'passes it as written'):format(a))
        end
        argv[i] = unescape(a)
      end
      w(('      command = %s,'):format(lua_list(argv)))
    else
      if not s.image then
        return nil, ("%s: service '%s' has neither command nor image"):format(file, name)
      end
      w('      command = orch.useEntrypoint(),')
      loss:add(name, 'command', "the image's own command: orch run needs its entrypoint in "
        .. 'subcontainer.entrypoint/cmd')
    end
    local env = s.environment
    if type(env) == 'table' then
      local pairs_list = {}
      if #env > 0 then
        for _, item in ipairs(env) do
          local k, v = tostring(item):match('^([^=]+)=(.*)$')
          if k then
            pairs_list[#pairs_list + 1] = { k, v }
          else
            loss:add(name, 'environment', ('%s without a value: taken from compose\'s '
              .. 'environment, not mapped'):format(tostring(item)))
          end
        end
      else
        for k, v in pairs(env) do
          if v == nil then
            loss:add(name, 'environment', ('%s without a value: not mapped'):format(k))
          else
            pairs_list[#pairs_list + 1] = { k, tostring(v) }
          end
        end
      end
      table.sort(pairs_list, function(a, b)
        return a[1] < b[1]
      end)
      if #pairs_list > 0 then
        w('      env = {')
        for _, p in ipairs(pairs_list) do
          w(('        %s = %s,'):format(lua_key(p[1]), lua_string(unescape(p[2]))))
        end
        w('      },')
      end
    end
    local ef = s.env_file
    if type(ef) == 'table' then
      if #ef > 1 then
        loss:add(name, 'env_file', 'only the first env_file is mapped (exec.envFile)')
      end
      ef = ef[1]
      if type(ef) == 'table' then
        ef = ef.path
      end
    end
    if type(ef) == 'string' then
      w(('      envFile = %s,'):format(lua_string(ef)))
    end
    if s.user ~= nil then
      w(('      user = %s,'):format(lua_string(tostring(s.user))))
    end
    if s.working_dir then
      w(('      cwd = %s,'):format(lua_string(s.working_dir)))
    end
    if s.stop_signal then
      w(('      stopSignal = %s,'):format(lua_string(s.stop_signal)))
    end
    local grace = M.duration(s.stop_grace_period)
    if s.stop_grace_period and not grace then
      return nil, ("%s: service '%s': stop_grace_period '%s' is not a duration"):format(file,
        name, tostring(s.stop_grace_period))
    end
    w(('      sigtermTimeout = %d,'):format(grace or 10000))
    local restart = s.restart or 'no'
    local base, max = tostring(restart):match('^(on%-failure):(%d+)$')
    local policy = RESTART[base or restart]
    if not policy then
      return nil, ("%s: service '%s': unknown restart '%s'"):format(file, name, tostring(restart))
    end
    if restart == 'unless-stopped' then
      loss:add(name, 'restart', "unless-stopped becomes 'always'")
    end
    if kind == 'Oneshot' and policy == 'always' then
      loss:add(name, 'restart', "a oneshot is not restarted after it succeeded: 'on-failure'")
      policy = 'on-failure'
    end
    w(('      restart = %s,'):format(lua_string(policy)))
    if max then
      w(('      maxRestarts = %d,'):format(tonumber(max)))
    end
    local limits = {}
    local lim = type(s.deploy) == 'table' and type(s.deploy.resources) == 'table'
      and s.deploy.resources.limits
    if type(lim) == 'table' then
      if lim.memory then
        local m = tostring(lim.memory):upper():gsub('B$', ''):gsub('([KMG])$', '%1')
        limits[#limits + 1] = ('memory = %s'):format(tonumber(m) and m or lua_string(m))
      end
      if lim.cpus then
        limits[#limits + 1] = ('cpu = %s'):format(tostring(tonumber(lim.cpus)))
      end
      if lim.pids then
        limits[#limits + 1] = ('pids = %d'):format(lim.pids)
      end
    end
    if type(s.deploy) == 'table' then
      for k in pairs(s.deploy) do
        if k ~= 'resources' then
          loss:add(name, 'deploy.' .. k, 'not mapped')
        end
      end
    end
    if s.pids_limit then
      limits[#limits + 1] = ('pids = %d'):format(s.pids_limit)
    end
    if type(s.ulimits) == 'table' then
      for k, v in pairs(s.ulimits) do
        local n = type(v) == 'table' and (v.hard or v.soft) or v
        if k == 'nofile' or k == 'core' then
          limits[#limits + 1] = ('%s = %d'):format(k, n)
        else
          loss:add(name, 'ulimits.' .. k, 'not mapped')
        end
      end
    end
    if #limits > 0 then
      table.sort(limits)
      w(('      limits = { %s },'):format(table.concat(limits, ', ')))
    end
    if s.init then
      w('      runAsInit = true,')
    end
    w('    },')
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
            :format(file, name)
        end
        local d = M.HEALTH_DEFAULTS
        local interval = M.duration(hc.interval) or d.interval
        local timeout = M.duration(hc.timeout) or d.timeout
        local start = M.duration(hc.start_period) or d.start_period
        local visible = ids.valid_health_id(name)
        out[3] = 'local healthCheck, trigger = orch.healthCheck, orch.trigger'
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
    w('  })')
  end
  if not out[3] then
    table.remove(out, 3)
  end
  return table.concat(out, '\n') .. '\n'
end

return M
