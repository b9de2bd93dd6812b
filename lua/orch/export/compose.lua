--- `orch export compose`: one service per entry, `depends_on` with the condition that matches
-- what orch waits for (a oneshot's success, a check's success, a daemon's start), healthcheck,
-- restart policy, stop signal and grace period, user, working dir, env_file, limits and named
-- volumes. Every `$` is written as `$$` (compose would interpolate it).
-- @module orch.export.compose
local yaml = require 'orch.export.yaml'
local names = require 'orch.export.names'
local common = require 'orch.export.common'
local k8s = require 'orch.export.k8s'

local map, set = yaml.map, yaml.set

local M = {}

local function esc(s)
  return (tostring(s):gsub('%$', '$$'))
end

local function esc_list(list)
  if not list then
    return nil
  end
  local out = {}
  for i, v in ipairs(list) do
    out[i] = esc(v)
  end
  return out
end

local function sh_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- The healthcheck `test` of a probe, or nil (with a loss).
local function test_of(e, p, opts, loss)
  if opts.orchImage and p.helper ~= 'runHealthScript' then
    return { 'CMD', 'orch', 'probe', k8s.SCRIPT_IN_IMAGE, e.id }
  end
  if p.helper == 'runHealthScript' then
    if type(p.command) == 'string' then
      return { 'CMD-SHELL', esc(p.command) }
    end
    local t = { 'CMD' }
    for _, a in ipairs(p.command) do
      t[#t + 1] = esc(a)
    end
    return t
  elseif p.helper == 'checkPortListening' then
    loss:add(e.id, 'ready.fn', 'checkPortListening becomes a TCP connect to 127.0.0.1 from '
      .. 'bash in the image (a UDP port or another address is not seen)')
    return { 'CMD', 'bash', '-c', ('exec 3<>/dev/tcp/127.0.0.1/%d'):format(p.port) }
  elseif p.helper == 'checkWebUrl' then
    loss:add(e.id, 'ready.fn', 'checkWebUrl becomes curl in the image')
    local cmd = 'curl -s -o /dev/null --max-time ' .. common.seconds(p.timeout, 1)
    if p.insecure then
      cmd = cmd .. ' -k'
    end
    if p.expectStatus then
      local st = type(p.expectStatus) == 'table' and p.expectStatus or { p.expectStatus }
      local alts = {}
      for i, s in ipairs(st) do
        alts[i] = tostring(s)
      end
      cmd = cmd .. " -w '%{http_code}' " .. sh_quote(p.url) .. ' | grep -qxE '
        .. sh_quote(table.concat(alts, '|'))
    else
      cmd = cmd .. ' ' .. sh_quote(p.url)
    end
    return { 'CMD-SHELL', esc(cmd) }
  end
  loss:add(e.id, 'ready.fn', ('ready.fn has no healthcheck (%s; with --orch-image it would '
    .. 'run `orch probe`)'):format(p.why or p.helper))
  return nil
end

local function healthcheck(e, opts, loss)
  local r = e.ready
  if not r then
    return nil
  end
  if r.notify then
    loss:add(e.id, 'ready.notify', 'sd_notify readiness has no equivalent in compose')
  end
  if not r.probe then
    return nil
  end
  local test = test_of(e, r.probe, opts, loss)
  if not test then
    return nil
  end
  local period, why = common.period(r)
  if why then
    loss:add(e.id, 'ready.trigger', why)
  end
  if r.successThreshold > 1 then
    loss:add(e.id, 'ready.successThreshold', 'compose is healthy after one success')
  end
  if r.restartAfter then
    loss:add(e.id, 'ready.restartAfter', 'compose does not restart an unhealthy container')
  end
  local timeout = r.timeout
  if r.probe.timeout and (timeout == 0 or r.probe.timeout < timeout) then
    timeout = r.probe.timeout
  end
  return map('test', test, 'interval', period .. 's',
    'timeout', timeout > 0 and (common.seconds(timeout, 1) .. 's') or nil,
    'retries', r.failureThreshold, 'start_period', (r.gracePeriod // 1) .. 'ms')
end

local function restart_of(e, loss)
  local x = e.exec
  if x.restart == 'always' then
    if x.maxRestarts then
      loss:add(e.id, 'exec.maxRestarts', "restart 'always' has no limit in compose")
    end
    return 'always'
  elseif x.restart == 'on-failure' then
    if x.maxRestarts then
      if x.restartWindow then
        loss:add(e.id, 'exec.restartWindow', 'on-failure:N counts every restart')
      end
      return 'on-failure:' .. x.maxRestarts
    end
    return 'on-failure'
  end
  return 'no'
end

local function condition(dep, has_hc)
  if dep.kind == 'oneshot' then
    return 'service_completed_successfully'
  end
  if has_hc[dep.id] then
    return 'service_healthy'
  end
  return 'service_started'
end

--- Render the model as one compose file; nil and an error on a name collision.
function M.render(model, opts, loss)
  local ids = {}
  for i, e in ipairs(model.entries) do
    ids[i] = e.id
  end
  local snames, err = names.map(ids, names.compose, 'compose service name')
  if not snames then
    return nil, err
  end
  local services, volumes = map(), map()
  local has_hc = {}
  for _, e in ipairs(model.entries) do
    local s = map()
    common.edge_losses(e, model, loss, { ignore = true }, {
      stop = 'a running service keeps running when its requirement becomes unhealthy',
      restart = 'a running service is not restarted when its requirement comes back',
    })
    if e.kind == 'health' then
      local probe = e.ready.probe
      set(s, 'image', probe and probe.image and common.image_ref({ image = { id = probe.image } },
        opts.registry) or opts.hostImage or k8s.HOST_IMAGE)
      set(s, 'command', { 'sleep', 'infinity' })
      loss:add(e.id, 'kind', 'a health check runs no process: a service that sleeps carries '
        .. 'its healthcheck')
    else
      common.common_losses(e, loss)
      local image = common.image_ref(e, opts.registry)
      if not image then
        image = opts.hostImage or k8s.HOST_IMAGE
        loss:add(e.id, 'subcontainer', ('a host process: it runs in the image %s '
          .. '(--host-image)'):format(image))
      end
      set(s, 'image', image)
      local argv, args = common.argv(e)
      set(s, 'command', esc_list(e.exec.entrypoint and args or argv))
    end
    local hc = healthcheck(e, opts, loss)
    has_hc[e.id] = hc ~= nil
    set(s, 'healthcheck', hc)
    if #e.requires > 0 then
      local dep = map()
      for _, r in ipairs(e.requires) do
        local d = model.by_id[r.id]
        set(dep, snames[r.id], map('condition', condition(d, has_hc)))
        if d.ready and not has_hc[d.id] then
          loss:add(e.id, 'requires.' .. r.id, ('%s has no healthcheck: %s waits only for it to '
            .. 'start'):format(r.id, e.id))
        end
      end
      set(s, 'depends_on', dep)
    end
    local x = e.exec
    if x then
      set(s, 'restart', restart_of(e, loss))
      local env = map()
      local keys = {}
      local image_env = e.image and not e.image.id and e.image.env or {}
      local merged = {}
      for _, src in ipairs({ image_env, x.env or {} }) do
        for k, v in pairs(src) do
          if merged[k] == nil then
            keys[#keys + 1] = k
          end
          merged[k] = v
        end
      end
      table.sort(keys)
      for _, k in ipairs(keys) do
        if merged[k] ~= false then
          set(env, k, esc(merged[k]))
        end
      end
      if #keys > 0 then
        set(s, 'environment', env)
      end
      if x.envFile then
        set(s, 'env_file', { x.envFile })
      end
      set(s, 'working_dir', x.cwd)
      if x.user ~= nil then
        set(s, 'user', tostring(x.user))
      end
      if x.stopCommand then
        loss:add(e.id, 'exec.stopCommand', 'compose stops with a signal only')
      elseif x.stopSignal ~= 'SIGTERM' then
        set(s, 'stop_signal', x.stopSignal)
      end
      set(s, 'stop_grace_period', x.sigtermTimeout .. 'ms')
      if x.runAsInit then
        set(s, 'init', true)
      end
      local l = x.limits
      if l then
        if l.memory or l.cpu then
          set(s, 'deploy', map('resources', map('limits', map(
            'cpus', l.cpu and tostring(l.cpu) or nil,
            'memory', l.memory and (l.memory .. 'b') or nil))))
        end
        set(s, 'pids_limit', l.pids)
        if l.nofile or l.core then
          set(s, 'ulimits', map('nofile', l.nofile and map('soft', l.nofile, 'hard', l.nofile),
            'core', l.core and map('soft', l.core, 'hard', l.core)))
        end
      end
    end
    local vols = {}
    for _, m in ipairs(e.image and e.image.mounts or {}) do
      if m.type == 'volume' and m.volumeId then
        local vname = names.compose(m.volumeId)
        set(volumes, vname, map())
        if m.subpath then
          loss:add(e.id, 'subcontainer.mounts', ('subpath %s of volume %s: the whole volume is '
            .. 'mounted'):format(m.subpath, m.volumeId))
        end
        vols[#vols + 1] = map('type', 'volume', 'source', vname, 'target', m.mountpoint,
          'read_only', m.readonly or nil)
      else
        loss:add(e.id, 'subcontainer.mounts', ('the %s mount at %s becomes an anonymous '
          .. 'volume'):format(tostring(m.type), tostring(m.mountpoint)))
        vols[#vols + 1] = map('type', 'volume', 'target', m.mountpoint,
          'read_only', m.readonly or nil)
      end
    end
    if #vols > 0 then
      set(s, 'volumes', vols)
    end
    if e.image and e.image.sharedRun then
      loss:add(e.id, 'subcontainer.sharedRun', 'no shared /run between services')
    end
    set(services, snames[e.id], s)
  end
  local doc = map('services', services)
  if next(volumes) ~= nil then
    set(doc, 'volumes', volumes)
  end
  return yaml.encode(doc)
end

return M
