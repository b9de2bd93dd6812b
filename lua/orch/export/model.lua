--- The neutral model of an evaluated graph that every exporter reads: one plain table per entry
-- with its kind, its requires edges (with their reactions), what it runs (command, env, user,
-- stop, limits, restart policy), its readiness (which health helper and its parameters, or a Lua
-- function), its trigger cadence and its image and mounts. Nothing in it is a function: what
-- cannot be read from the script (a hand-written trigger, a `ready.fn` that does more than call
-- one helper) is marked so that each exporter reports it as a loss.
--
-- `ready.fn` is read by calling it once in a task whose scope holds a recorder: the health
-- helpers then return at once with what they would check (orch.healthCheck), and any process
-- spawn is refused (orch.runtime.process), so describing a script starts nothing.
-- @module orch.export.model
local sched = require 'orch.runtime.sched'
local util = require 'orch.runtime.util'
local trigger = require 'orch.entries.trigger'
local vexec = require 'orch.entries.validate_exec'
local vpolicy = require 'orch.entries.validate_policy'
local HealthDaemon = require 'orch.entries.health_daemon'
local Daemon = require 'orch.entries.daemon'

local M = {}

--- The defaults orch applies when an option is absent (the model fills them in, so that an
-- exporter never guesses).
M.DEFAULTS = {
  sigtermTimeout = Daemon.DEFAULT_SIGTERM_TIMEOUT,
  gracePeriod = HealthDaemon.DEFAULT_GRACE_PERIOD,
  probeTimeout = HealthDaemon.DEFAULT_PROBE_TIMEOUT,
  stopSignal = 'SIGTERM',
  backoff = vpolicy.BACKOFF_DEFAULTS,
}

--- How long a `ready.fn` may take to be described (ms): one that sleeps or waits is not a
-- plain helper call.
M.DESCRIBE_TIMEOUT = 1000

-- Call `fn` once with the helpers recording; returns the probe descriptor: the helper's
-- parameters when `fn` returned exactly what one helper call returned, else `{helper = 'lua',
-- why = ...}`.
local function describe_fn(fn)
  local calls, made = {}, {}
  local function record(d)
    calls[#calls + 1] = d
    local r = { result = 'success', message = 'described' }
    made[r] = d
    return r
  end
  local scope = { describe_probe = record, dry = true, built = function() end }
  local done = sched.event()
  local res
  local task = sched.start({ name = 'export:describe', quiet = true, scope = scope,
    deadline = M.DESCRIBE_TIMEOUT }, function()
    res = table.pack(pcall(fn))
    done:set()
  end)
  if not done:wait(M.DESCRIBE_TIMEOUT) then
    task:cancel()
    return { helper = 'lua', why = 'it waits (it does more than call one health helper)' }
  end
  if not res[1] then
    return { helper = 'lua', why = ('it raised: %s'):format(util.error_message(res[2])) }
  end
  local d = made[res[2]]
  if d and #calls == 1 then
    return d
  end
  if #calls > 1 then
    return { helper = 'lua', why = ('it calls %d health helpers'):format(#calls) }
  end
  if d == nil and #calls == 1 then
    return { helper = 'lua', why = ("it changes what %s returns"):format(calls[1].helper) }
  end
  return { helper = 'lua', why = 'it is Lua code, not a health helper' }
end

-- `url` -> scheme, host, port, path (checkWebUrl's parameters for httpGet probes).
local function split_url(url)
  local scheme, rest = url:match('^(%a[%w+.-]*)://(.*)$')
  if not scheme then
    return nil
  end
  scheme = scheme:lower()
  local authority, path = rest:match('^([^/?#]*)(.*)$')
  authority = authority:gsub('^.*@', '')
  local host, port = authority:match('^%[(.-)%]:?(%d*)$')
  if not host then
    host, port = authority:match('^([^:]*):?(%d*)$')
  end
  port = tonumber(port)
  if not port then
    port = scheme == 'https' and 443 or 80
  end
  if path == '' then
    path = '/'
  end
  return { scheme = scheme, host = host, port = math.tointeger(port), path = path }
end

local function ready_of(spec)
  local r = spec.ready
  if not r then
    return nil
  end
  local out = {
    display = r.display,
    notify = r.notify or nil,
    watchdog = r.watchdog,
    logLine = r.logLine,
    onLine = r.onLine ~= nil or nil,
    gracePeriod = r.gracePeriod or M.DEFAULTS.gracePeriod,
    timeout = r.timeout or M.DEFAULTS.probeTimeout,
    failureThreshold = r.failureThreshold or 1,
    successThreshold = r.successThreshold or 1,
    restartAfter = r.restartAfter,
  }
  if r.fn then
    local p = describe_fn(r.fn)
    if p.helper == 'checkWebUrl' then
      local u = split_url(p.url)
      if u then
        for k, v in pairs(u) do
          p[k] = v
        end
      end
    end
    out.probe = p
  end
  if r.trigger then
    out.trigger = trigger.describe(r.trigger) or { name = 'custom' }
  else
    out.trigger = { name = 'defaultTrigger' }
  end
  return out
end

-- A subcontainer: a provider object with `describe()` (orch.SubContainer), or a plain table of
-- image metadata.
local function image_of(sub)
  if sub == nil then
    return nil
  end
  local d, provider
  if type(sub.describe) == 'function' then
    d, provider = sub:describe(), true -- a provider object: only what it describes
  else
    d = sub -- image metadata: orch runs the command on the host
  end
  local mounts = {}
  for i, m in ipairs(type(d.mounts) == 'table' and d.mounts or {}) do
    mounts[i] = {
      type = m.type, volumeId = m.volumeId, packageId = m.packageId, subpath = m.subpath,
      mountpoint = m.mountpoint, readonly = m.readonly and true or false, filetype = m.filetype,
    }
  end
  local id = d.imageId or d.image
  return {
    id = type(id) == 'string' and id or nil,
    name = type(d.name) == 'string' and d.name or nil,
    sharedRun = d.sharedRun and true or false,
    provider = provider,
    entrypoint = util.deep_copy(d.entrypoint),
    cmd = util.deep_copy(d.cmd),
    env = util.deep_copy(d.env),
    user = d.user,
    workdir = d.workdir,
    mounts = mounts,
  }
end

local function command_of(command, image)
  if type(command) == 'string' then
    return { shell = command, argv = { '/bin/sh', '-c', command } }
  end
  if getmetatable(command) == vexec.UseEntrypoint then
    local c = { entrypoint = true, override = util.deep_copy(command.override) }
    if image and image.entrypoint then
      local argv = util.copy(image.entrypoint)
      for _, a in ipairs(command.override or image.cmd or {}) do
        argv[#argv + 1] = a
      end
      c.argv = argv
    end
    return c
  end
  if type(command) == 'table' then
    return { argv = util.copy(command) }
  end
  return {}
end

local function exec_of(spec, image)
  local e = spec.exec
  if not e then
    return nil
  end
  local out = command_of(e.command, image)
  out.fn = e.fn ~= nil or nil
  out.env = util.deep_copy(e.env)
  out.envFile = e.envFile
  out.cwd = e.cwd
  out.user = e.user
  out.stopSignal = e.stopSignal or (not e.stopCommand and M.DEFAULTS.stopSignal) or nil
  out.stopCommand = util.deep_copy(e.stopCommand)
  out.reloadSignal = e.reloadSignal
  out.sigtermTimeout = e.sigtermTimeout or M.DEFAULTS.sigtermTimeout
  out.limits = util.deep_copy(e.limits)
  out.restart = e.restart or (spec.kind == 'oneshot' and 'on-failure' or 'always')
  out.maxRestarts = e.maxRestarts
  out.restartWindow = e.restartWindow
  out.backoff = util.deep_copy(e.backoff)
  out.runAsInit = e.runAsInit or nil
  out.onOutput = (e.onStdout or e.onStderr) and true or nil
  out.log = e.log ~= nil or nil
  return out
end

--- The model of a chain's validated entries (`chain:specs()`), in declaration order (which is a
-- start order: an entry only requires earlier ones). Yields (call it from a task).
-- @tparam table specs the validated entries
-- @treturn table `{entries = {entry...}, by_id = {id = entry}}`; an entry is
--   `{id, kind, requires = {{id, onUnhealthy, after}...}, exec, ready, image, required_by}`
function M.of(specs)
  local entries, by_id = {}, {}
  for i, spec in ipairs(specs) do
    local requires = {}
    for j, r in ipairs(spec.requires or {}) do
      local edge = spec.edges and spec.edges[r]
      requires[j] = { id = r, onUnhealthy = edge and edge.onUnhealthy or 'stop',
        after = edge and edge.after or nil }
    end
    local image = image_of(spec.subcontainer)
    local e = {
      id = spec.id,
      kind = spec.kind,
      requires = requires,
      image = image,
      exec = exec_of(spec, image),
      ready = ready_of(spec),
      required_by = {},
    }
    entries[i], by_id[e.id] = e, e
  end
  for _, e in ipairs(entries) do
    for _, r in ipairs(e.requires) do
      local t = by_id[r.id].required_by
      t[#t + 1] = e.id
    end
  end
  return { entries = entries, by_id = by_id }
end

--- The chain's model, from a chain (or anything with `specs()`); nil and a message for a
-- dynamic main, whose entries exist only once it runs.
function M.of_chain(chain)
  if type(chain.specs) ~= 'function' then
    return nil, 'the script returns a dynamic main (Daemons.dynamic): its entries exist only '
      .. 'once it runs; export a chain'
  end
  return M.of(chain:specs())
end

M.split_url = split_url

return M
