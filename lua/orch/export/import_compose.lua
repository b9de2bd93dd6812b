--- `orch import compose`: a docker compose file as a readable main.lua. One `addDaemon` per
-- service (`addOneshot` for a service that others wait for with
-- `service_completed_successfully`), declared so that every requirement comes first
-- (orch.export.import_compose_order); a healthcheck becomes `runHealthScript` with its interval,
-- retries, start period and timeout; `depends_on` becomes `requires`
-- (orch.export.import_compose_ready). What has no equivalent is a loss (`build`, `ports`,
-- `networks`, ...). This module writes each service's `exec`; compose's values are read and
-- Lua's written by orch.export.import_compose_values.
-- @module orch.export.import_compose
local yaml_read = require 'orch.export.yaml_read'
local ids = require 'orch.graph.ids'
local values = require 'orch.export.import_compose_values'
local order = require 'orch.export.import_compose_order'
local ready = require 'orch.export.import_compose_ready'

local lua_string, lua_key, lua_list = values.lua_string, values.lua_key, values.lua_list
local unescape = values.unescape

local M = {}

--- compose's healthcheck defaults (ms), the docker engine's.
M.HEALTH_DEFAULTS = ready.HEALTH_DEFAULTS

--- Milliseconds of a compose duration (`1m30s`, `500ms`, `10s`, or a number of seconds).
M.duration = values.duration

local KNOWN = {
  image = true, command = true, entrypoint = true, environment = true, env_file = true,
  user = true, working_dir = true, stop_signal = true, stop_grace_period = true,
  healthcheck = true, depends_on = true, restart = true, deploy = true, pids_limit = true,
  ulimits = true, init = true,
}

local RESTART = { no = 'never', always = 'always', ['on-failure'] = 'on-failure',
  ['unless-stopped'] = 'always' }

-- `exec.command` of service `name` (`s`): command after entrypoint, or the image's own.
local function write_command(ctx, name, s)
  local w, loss = ctx.w, ctx.loss
  local argv = values.command_of(s.command)
  local ep = values.command_of(s.entrypoint)
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
      if values.has_interpolation(a) then
        loss:add(name, 'command', ('%s: compose interpolates it from its environment; orch '
          .. 'passes it as written'):format(a))
      end
      argv[i] = unescape(a)
    end
    w(('      command = %s,'):format(lua_list(argv)))
  else
    if not s.image then
      return nil, ("%s: service '%s' has neither command nor image"):format(ctx.file, name)
    end
    w('      command = orch.useEntrypoint(),')
    loss:add(name, 'command', "the image's own command: orch run needs its entrypoint in "
      .. 'subcontainer.entrypoint/cmd')
  end
  return true
end

-- `exec.env` and `exec.envFile` of service `name` (`s`).
local function write_env(ctx, name, s)
  local w, loss = ctx.w, ctx.loss
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
end

-- `exec.limits` of service `name` (`s`): deploy.resources.limits, pids_limit, ulimits.
local function write_limits(ctx, name, s)
  local w, loss = ctx.w, ctx.loss
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
end

-- The `exec` block of service `name` (`s`, a `kind` 'Daemon' or 'Oneshot'); true, or nil and
-- an error.
local function write_exec(ctx, name, s, kind)
  local w, loss, file = ctx.w, ctx.loss, ctx.file
  w('    exec = {')
  local ok, err = write_command(ctx, name, s)
  if not ok then
    return nil, err
  end
  write_env(ctx, name, s)
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
  write_limits(ctx, name, s)
  if s.init then
    w('      runAsInit = true,')
  end
  w('    },')
  return true
end

-- The `:addDaemon`/`:addOneshot` of service `name`; true, or nil and an error.
local function write_service(ctx, name)
  local w, loss, file = ctx.w, ctx.loss, ctx.file
  local s = ctx.services[name]
  local shown, problem = ids.problem(name)
  if shown then
    return nil, ("%s: service %s cannot be an orch id: it %s"):format(file, shown, problem)
  end
  for k in pairs(s) do
    if not KNOWN[k] then
      loss:add(name, k, ('%s: not mapped'):format(k))
    end
  end
  local kind = ctx.oneshot[name] and 'Oneshot' or 'Daemon'
  w(('  :add%s(%s, {'):format(kind, lua_string(name)))
  if s.image then
    w(('    subcontainer = { image = %s },'):format(lua_string(tostring(s.image))))
  end
  local ok, err = write_exec(ctx, name, s, kind)
  if ok then
    ok, err = ready.write_ready(ctx, name, s, kind)
  end
  if not ok then
    return nil, err
  end
  ready.write_requires(ctx, name, s)
  w('  })')
  return true
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
  local names = order.names(text, services)
  local ordered, oerr = order.order(services, names)
  if not ordered then
    return nil, ('%s: %s'):format(file, oerr)
  end
  local out = {
    ('-- main.lua imported by `orch import compose` from %s'):format(file:match('[^/]*$')),
    "local orch = require 'orch'",
    false, -- the helpers' line, when a healthcheck uses them
    '',
    'return orch.Daemons.of{}',
  }
  local ctx = { file = file, loss = loss, services = services, names = names,
    oneshot = order.oneshots(services) } -- a oneshot: another waits for it to succeed
  function ctx.w(s)
    out[#out + 1] = s
  end
  for _, name in ipairs(ordered) do
    local ok, serr = write_service(ctx, name)
    if not ok then
      return nil, serr
    end
  end
  if ctx.helpers then
    out[3] = 'local healthCheck, trigger = orch.healthCheck, orch.trigger'
  else
    table.remove(out, 3)
  end
  return table.concat(out, '\n') .. '\n'
end

return M
