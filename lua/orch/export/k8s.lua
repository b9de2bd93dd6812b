--- `orch export k8s`: the graph as one Pod template (a Deployment, or a Job when it holds only
-- oneshots). Oneshots become init containers; daemons and health checks that others require
-- become native sidecars (init containers with `restartPolicy: Always` and a `startupProbe`,
-- which gate the next init container as `requires` does); the rest are containers. Since an
-- entry only requires earlier ones, declaration order is a valid start order.
-- @module orch.export.k8s
local yaml = require 'orch.export.yaml'
local names = require 'orch.export.names'
local common = require 'orch.export.common'
local datadir = require 'orch.runtime.datadir'
local passwd = require 'orch.subcontainer.passwd'

local map, set = yaml.map, yaml.set

local M = {}

--- The image a host process runs in when nothing else is given.
M.HOST_IMAGE = 'debian:bookworm-slim'
--- Where `--orch-image` images hold the script (`orch probe /orch/main.lua <id>`).
M.SCRIPT_IN_IMAGE = '/orch/main.lua'
--- A startup probe's failureThreshold: orch waits for a requirement for ever.
M.STARTUP_FAILURES = 1000000

local function handler(e, probe, opts, loss, field)
  if probe.helper == 'checkPortListening' then
    return 'tcpSocket', map('port', probe.port)
  elseif probe.helper == 'checkWebUrl' and probe.port then
    if probe.expectStatus then
      loss:add(e.id, field, 'expectStatus: httpGet succeeds on any status from 200 to 399')
    else
      loss:add(e.id, field, 'checkWebUrl takes any HTTP status as success; httpGet fails on '
        .. 'a status of 400 or more')
    end
    if probe.scheme == 'https' and not probe.insecure then
      loss:add(e.id, field, 'httpGet does not verify the TLS certificate')
    end
    local host = probe.host
    if host == 'localhost' or host == '127.0.0.1' or host == '::1' or host == '' then
      host = nil
    end
    return 'httpGet', map('scheme', probe.scheme:upper(), 'host', host, 'path', probe.path,
      'port', probe.port)
  elseif probe.helper == 'runHealthScript' then
    local cmd = probe.command
    if type(cmd) == 'string' then
      cmd = { '/bin/sh', '-c', cmd }
    end
    return 'exec', map('command', cmd)
  end
  if opts.orchImage then
    return 'exec', map('command', { 'orch', 'probe', M.SCRIPT_IN_IMAGE, e.id })
  end
  loss:add(e.id, field, ('ready.fn has no probe (%s; with --orch-image it would run '
    .. '`orch probe`)'):format(probe.why or probe.helper))
  return nil
end

-- The probes of `e`: readiness (and startup for a sidecar, liveness for restartAfter).
local function probes(e, c, sidecar, opts, loss)
  local r = e.ready
  if not r then
    return
  end
  if r.notify then
    loss:add(e.id, 'ready.notify', 'sd_notify readiness has no equivalent in Kubernetes')
  end
  if not r.probe then
    return
  end
  local kind, h = handler(e, r.probe, opts, loss, 'ready.fn')
  if not kind then
    return
  end
  local period, why = common.period(r)
  if why then
    loss:add(e.id, 'ready.trigger', why)
  end
  local timeout = r.timeout
  if r.probe.timeout and (timeout == 0 or r.probe.timeout < timeout) then
    timeout = r.probe.timeout
  end
  local tsec = timeout > 0 and common.seconds(timeout, 1) or nil
  local function probe(extra)
    local p = map(kind, h, 'periodSeconds', period, 'timeoutSeconds', tsec)
    for i = 1, #extra, 2 do
      set(p, extra[i], extra[i + 1])
    end
    return p
  end
  if sidecar then
    set(c, 'startupProbe', probe({ 'failureThreshold', M.STARTUP_FAILURES }))
  end
  set(c, 'readinessProbe', probe({ 'failureThreshold', r.failureThreshold,
    'successThreshold', r.successThreshold }))
  if r.restartAfter then
    set(c, 'livenessProbe', probe({ 'initialDelaySeconds', common.seconds(r.gracePeriod),
      'failureThreshold', r.restartAfter }))
  end
end

local function env_list(e, image_env)
  local merged, keys = {}, {}
  for _, src in ipairs({ image_env or {}, e.exec.env or {} }) do
    for k, v in pairs(src) do
      if merged[k] == nil then
        keys[#keys + 1] = k
      end
      merged[k] = v
    end
  end
  table.sort(keys)
  local list = {}
  for _, k in ipairs(keys) do
    if merged[k] ~= false then
      list[#list + 1] = map('name', k, 'value', tostring(merged[k]))
    end
  end
  return #list > 0 and list or nil
end

local function security(e, loss, opts)
  local u = e.exec.user
  if u == nil then
    return nil
  end
  local s = tostring(u)
  local uid, gid = s:match('^(%d+):(%d+)$')
  uid = uid or s:match('^(%d+)$')
  if not uid and e.image and e.image.provider and opts.data then
    -- a name in an orch.SubContainer: its image's own passwd says which uid
    local pw = passwd.resolve(datadir.open(opts.data):image_rootfs(e.image.id), s)
    if pw then
      uid, gid = tostring(pw.uid), tostring(pw.gid)
    end
  end
  if not uid and s == 'root' then
    uid, gid = '0', '0'
  end
  if not uid then
    loss:add(e.id, 'exec.user', ("user name '%s': runAsUser needs a uid; the image's user "
      .. 'is used'):format(s))
    return nil
  end
  return map('runAsUser', math.tointeger(tonumber(uid)), 'runAsGroup',
    gid and math.tointeger(tonumber(gid)) or nil)
end

local function resources(e, loss)
  local l = e.exec.limits
  if not l then
    return nil
  end
  local lim = map('memory', l.memory and tostring(l.memory) or nil,
    'cpu', l.cpu and (('%dm'):format(math.ceil(l.cpu * 1000))) or nil)
  for _, k in ipairs({ 'pids', 'nofile', 'core' }) do
    if l[k] then
      loss:add(e.id, 'exec.limits.' .. k, 'no per-container limit in Kubernetes')
    end
  end
  if not (l.memory or l.cpu) then
    return nil
  end
  return map('limits', lim)
end

-- The container of entry `e` (`sidecar`: an init container that keeps running).
local function container(e, cname, ctx, sidecar)
  local opts, loss = ctx.opts, ctx.loss
  local c = map('name', cname)
  if e.kind == 'health' then
    local probe = e.ready.probe
    set(c, 'image', probe and probe.image and common.image_ref({ image = { id = probe.image } },
      opts.registry) or opts.hostImage or M.HOST_IMAGE)
    set(c, 'command', { 'sleep', 'infinity' })
    loss:add(e.id, 'kind', 'a health check runs no process: a container that sleeps carries '
      .. 'its probe')
    if sidecar then
      set(c, 'restartPolicy', 'Always')
    end
    probes(e, c, sidecar, opts, loss)
    return c
  end
  local image = common.image_ref(e, opts.registry)
  if not image then
    image = opts.hostImage or M.HOST_IMAGE
    loss:add(e.id, 'subcontainer', ('a host process: it runs in the image %s '
      .. '(--host-image)'):format(image))
  end
  set(c, 'image', image)
  common.common_losses(e, loss)
  local argv, args = common.argv(e)
  if e.exec.entrypoint then
    set(c, 'args', args)
  else
    set(c, 'command', argv)
  end
  if sidecar then
    set(c, 'restartPolicy', 'Always')
  end
  local image_env = e.image and not e.image.id and e.image.env or nil
  set(c, 'env', env_list(e, image_env))
  if e.exec.envFile then
    local cm = ctx.env_config_map(e)
    if cm then
      set(c, 'envFrom', { map('configMapRef', map('name', cm)) })
    end
  end
  set(c, 'workingDir', e.exec.cwd)
  set(c, 'securityContext', security(e, loss, opts))
  set(c, 'resources', resources(e, loss))
  local x = e.exec
  if x.stopCommand then
    local cmd = x.stopCommand
    if type(cmd) == 'string' then
      cmd = { '/bin/sh', '-c', cmd }
    end
    set(c, 'lifecycle', map('preStop', map('exec', map('command', cmd))))
    loss:add(e.id, 'exec.stopCommand', 'a preStop hook runs before SIGTERM, not instead of it')
  elseif x.stopSignal ~= 'SIGTERM' then
    loss:add(e.id, 'exec.stopSignal', ("%s: Kubernetes stops with the image's STOPSIGNAL "
      .. '(SIGTERM by default)'):format(x.stopSignal))
  end
  -- x.runAsInit: a container is the PID 1 of its own namespace already (exact)
  local mounts = ctx.mounts(e)
  set(c, 'volumeMounts', mounts)
  probes(e, c, sidecar, opts, loss)
  if e.kind == 'daemon' and x.restart ~= 'always' then
    loss:add(e.id, 'exec.restart', ("'%s': the containers of a Deployment always "
      .. 'restart'):format(x.restart))
  end
  if x.maxRestarts and not ctx.job then
    loss:add(e.id, 'exec.maxRestarts', 'a Deployment restarts for ever')
  end
  if x.restartWindow then
    loss:add(e.id, 'exec.restartWindow', 'no restart window in Kubernetes')
  end
  return c
end

--- Render the model: returns the YAML stream, or nil and an error (a name collision).
-- `opts`: `name` (the app), `registry`, `hostImage`, `orchImage`, `read_env_file(path)`.
function M.render(model, opts, loss)
  local app = names.dns1123(opts.name or 'orch')
  if app == '' then
    app = 'orch'
  end
  local ids = {}
  for i, e in ipairs(model.entries) do
    ids[i] = e.id
  end
  local cnames, err = names.map(ids, names.dns1123, 'Kubernetes name')
  if not cnames then
    return nil, err
  end
  local docs, volumes, claims, seen_vol = {}, {}, {}, {}
  local only_oneshots = #model.entries > 0
  for _, e in ipairs(model.entries) do
    if e.kind ~= 'oneshot' then
      only_oneshots = false
    end
  end
  local ctx = { opts = opts, loss = loss, job = only_oneshots }
  function ctx.env_config_map(e)
    local vars, why = opts.read_env_file(e.exec.envFile)
    if not vars then
      loss:add(e.id, 'exec.envFile', ('%s: not read at export (%s); no ConfigMap'):format(
        e.exec.envFile, why))
      return nil
    end
    loss:add(e.id, 'exec.envFile', ('%s is read once, at export, into a ConfigMap (orch reads '
      .. 'it at each start)'):format(e.exec.envFile))
    local cm = ('%s-%s-env'):format(app, cnames[e.id])
    local data, keys = map(), {}
    for k in pairs(vars) do
      keys[#keys + 1] = k
    end
    table.sort(keys)
    for _, k in ipairs(keys) do
      set(data, k, vars[k])
    end
    docs[#docs + 1] = map('apiVersion', 'v1', 'kind', 'ConfigMap', 'metadata', map('name', cm,
      'labels', map('app.kubernetes.io/name', app)), 'data', data)
    return cm
  end
  function ctx.mounts(e)
    local list = {}
    for _, m in ipairs(e.image and e.image.mounts or {}) do
      local vname, source_kind, source
      if m.type == 'volume' and m.volumeId then
        vname = names.dns1123('vol-' .. m.volumeId)
        source_kind, source = 'persistentVolumeClaim', map('claimName',
          names.dns1123(app .. '-' .. m.volumeId), 'readOnly', m.readonly or nil)
        if not seen_vol['claim:' .. m.volumeId] then
          seen_vol['claim:' .. m.volumeId] = true
          claims[#claims + 1] = map('apiVersion', 'v1', 'kind', 'PersistentVolumeClaim',
            'metadata', map('name', names.dns1123(app .. '-' .. m.volumeId), 'labels',
              map('app.kubernetes.io/name', app)),
            'spec', map('accessModes', { 'ReadWriteOnce' }, 'resources',
              map('requests', map('storage', opts.volumeSize or '1Gi'))))
        end
      else
        vname = names.dns1123(('%s-%s'):format(m.type or 'mount', m.packageId or m.volumeId
          or cnames[e.id]))
        source_kind, source = 'emptyDir', map()
        loss:add(e.id, 'subcontainer.mounts', ("the %s mount at %s becomes an empty "
          .. 'emptyDir'):format(tostring(m.type), tostring(m.mountpoint)))
      end
      if not seen_vol[vname] then
        seen_vol[vname] = true
        volumes[#volumes + 1] = map('name', vname, source_kind, source)
      end
      list[#list + 1] = map('name', vname, 'mountPath', m.mountpoint, 'subPath', m.subpath,
        'readOnly', m.readonly or nil)
    end
    if e.image and e.image.sharedRun then
      loss:add(e.id, 'subcontainer.sharedRun', 'no shared /run between containers')
    end
    return #list > 0 and list or nil
  end
  local init, containers = {}, {}
  local grace = 0
  for i, e in ipairs(model.entries) do
    common.edge_losses(e, model, loss, { ignore = true }, {
      stop = 'a running container keeps running when its requirement becomes unhealthy',
      restart = 'a running container is not restarted when its requirement comes back',
    })
    local sidecar = e.kind ~= 'oneshot' and #e.required_by > 0
    local last = i == #model.entries
    local c = container(e, cnames[e.id], ctx, sidecar)
    if e.exec then
      grace = math.max(grace, e.exec.sigtermTimeout)
    end
    if (e.kind == 'oneshot' and not (only_oneshots and last)) or sidecar then
      init[#init + 1] = c
    else
      containers[#containers + 1] = c
    end
  end
  for _, e in ipairs(model.entries) do
    if e.exec and e.exec.sigtermTimeout < grace then
      loss:add(e.id, 'exec.sigtermTimeout', ('%d ms: the Pod has one grace period, %d s (the '
        .. 'longest)'):format(e.exec.sigtermTimeout, common.seconds(grace)))
    end
  end
  if #containers == 0 then
    containers[1] = map('name', 'hold', 'image', opts.hostImage or M.HOST_IMAGE,
      'command', { 'sleep', 'infinity' })
    loss:add(nil, 'graph', 'every daemon is required by a oneshot: a container that sleeps '
      .. 'holds the Pod')
  end
  local restart_policy = 'Always'
  if only_oneshots then
    restart_policy = 'OnFailure'
    for _, e in ipairs(model.entries) do
      if e.exec.restart == 'never' then
        restart_policy = 'Never'
      end
    end
  end
  local labels = map('app.kubernetes.io/name', app)
  local pod = map('restartPolicy', restart_policy,
    'terminationGracePeriodSeconds', common.seconds(grace),
    'initContainers', #init > 0 and init or nil,
    'containers', containers,
    'volumes', #volumes > 0 and volumes or nil)
  local template = map('metadata', map('labels', labels), 'spec', pod)
  local workload
  if only_oneshots then
    local limit
    for _, e in ipairs(model.entries) do
      if e.exec.maxRestarts then
        limit = math.min(limit or e.exec.maxRestarts, e.exec.maxRestarts)
      end
    end
    workload = map('apiVersion', 'batch/v1', 'kind', 'Job', 'metadata', map('name', app,
      'labels', labels), 'spec', map('backoffLimit', limit or 2147483647, 'template', template))
  else
    workload = map('apiVersion', 'apps/v1', 'kind', 'Deployment', 'metadata', map('name', app,
      'labels', labels), 'spec', map('replicas', 1, 'strategy', map('type', 'Recreate'),
        'selector', map('matchLabels', labels), 'template', template))
  end
  for _, c in ipairs(claims) do
    docs[#docs + 1] = c
  end
  docs[#docs + 1] = workload
  local parts = {}
  for i, d in ipairs(docs) do
    parts[i] = '---\n' .. yaml.encode(d)
  end
  return table.concat(parts)
end

return M
