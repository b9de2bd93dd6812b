--- `orch.SubContainer`: a package's image root filesystem with its own mounts and namespaces,
-- in which daemons, oneshots, health scripts and `exec` run (reference.md 2.12, the newer
-- upstream's lazy form). `SubContainer.of(effects, {imageId, sharedRun}, mounts, name)` makes it
-- lazily: the container (orch.subcontainer.leader) starts on first use or `hold()`;
-- `SubContainer.eager(...)` starts it at once. `destroy()` ends it once the last hold is released;
-- the graph destroys each one after every entry using it stopped.
-- Processes run in it through `spawn_plan`: they join the leader's namespaces (src/spawn_ns.c)
-- and keep every guarantee of an orch process (cgroup, group kill, output, exit codes). The
-- image's config gives the default user, workdir, env, entrypoint and cmd; users and groups
-- resolve from the image's own /etc/passwd and /etc/group.
-- Over the guide's 400 lines on purpose: this is the whole public surface of the seed's
-- SubContainer (of/eager, exec/execFail/spawn/launch, rootfs/subpath, hold/destroy) with its
-- argument checks; the leader (with its overlay), mounts and users are modules of their own.
-- @module orch.subcontainer
local core = require 'orch.core'
local sched = require 'orch.runtime.sched'
local process = require 'orch.runtime.process'
local datadir = require 'orch.runtime.datadir'
local util = require 'orch.runtime.util'
local leader = require 'orch.subcontainer.leader'
local mounts_mod = require 'orch.subcontainer.mounts'
local passwd = require 'orch.subcontainer.passwd'

local M = {}

--- How long `destroy()` gives the leader after SIGTERM before SIGKILL (ms).
M.DESTROY_TIMEOUT = 5000
--- The PATH of a process whose image env has none (as OCI runtimes do).
M.DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

local SubContainer = {}
SubContainer.__index = SubContainer
SubContainer.__orch_subcontainer = true
M.SubContainer = SubContainer

--- Whether `v` is a SubContainer object (a plain table of image metadata is not).
function M.is(v)
  return getmetatable(v) == SubContainer
end

local function name_of(self)
  return self._desc.name or self._desc.imageId
end

local function fail(self, msg)
  error(("subcontainer '%s': %s"):format(name_of(self), msg), 0)
end

-- The data directory: effects.dataDir, else the run's (datadir.current()).
local function data_of(effects)
  if type(effects) == 'table' and type(effects.dataDir) == 'string' then
    return datadir.open(effects.dataDir)
  end
  return datadir.current()
end

-- Check the arguments of `of`/`eager`; the object.
local function new(effects, opts, mounts, name, what)
  if type(opts) ~= 'table' then
    error(('SubContainer.%s: options must be a table {imageId = ..., sharedRun = ...}, got %s')
      :format(what, type(opts)), 3)
  end
  local ok, why = datadir.check_id(opts.imageId, 'image')
  if not ok then
    error(('SubContainer.%s: imageId: %s'):format(what, why), 3)
  end
  if opts.sharedRun ~= nil and type(opts.sharedRun) ~= 'boolean' then
    error(('SubContainer.%s: sharedRun must be a boolean, got %s'):format(what,
      type(opts.sharedRun)), 3)
  end
  for k in pairs(opts) do
    if k ~= 'imageId' and k ~= 'sharedRun' then
      error(("SubContainer.%s: unknown option '%s' (valid: imageId, sharedRun)"):format(what,
        tostring(k)), 3)
    end
  end
  local list
  if mounts == nil then
    list = {}
  elseif mounts_mod.is(mounts) then
    list = mounts:build()
  elseif type(mounts) == 'table' then
    list = mounts -- already built (Mounts:build())
  else
    error(('SubContainer.%s: mounts must be orch.Mounts.of()... or nil, got %s'):format(what,
      type(mounts)), 3)
  end
  if name ~= nil and (type(name) ~= 'string' or not name:match('^[%w][%w._%-]*$')) then
    error(("SubContainer.%s: name must be letters, digits, '.', '_' and '-', got %s"):format(
      what, tostring(name)), 3)
  end
  local data, derr = data_of(effects)
  return setmetatable({
    _desc = { imageId = opts.imageId, name = name, sharedRun = opts.sharedRun == true,
      mounts = list },
    _effects = effects, _data = data, _data_err = derr, _holds = 0, _state = 'lazy',
  }, SubContainer)
end

--- A lazy subcontainer: nothing starts until its first use or `hold()`.
function M.of(effects, opts, mounts, name)
  return new(effects, opts, mounts, name, 'of')
end

--- A subcontainer started at once (yields until it is ready; raises if it cannot start).
-- @async
function M.eager(effects, opts, mounts, name)
  local self = new(effects, opts, mounts, name, 'eager')
  self._eager = true
  self:_ensure()
  return self
end

--- `{imageId, name, sharedRun, mounts}`: what the subcontainer is (its identity for a reload;
-- mounts as `Mounts:build()` gives them).
function SubContainer:describe()
  local d = self._desc
  local list = {}
  for i, m in ipairs(d.mounts) do
    local c = {}
    for k, v in pairs(m) do
      c[k] = v
    end
    list[i] = c
  end
  return { imageId = d.imageId, name = d.name, sharedRun = d.sharedRun, mounts = list }
end

--- Whether it was made with `eager` (a reload refuses those: reference.md scenario 69).
function SubContainer:isEager()
  return self._eager == true
end

-- Copy resolv.conf and hosts of the host into the container (its upper layer).
local function copy_host_files(root)
  for _, f in ipairs({ 'resolv.conf', 'hosts' }) do
    local src = io.open('/etc/' .. f, 'rb')
    if src then
      local text = src:read('a')
      src:close()
      datadir.mkdir_p(root .. '/etc')
      local dst = io.open(root .. '/etc/' .. f, 'wb')
      if dst then
        dst:write(text or '')
        dst:close()
      end
    end
  end
end

local function log(self, level, msg)
  util.log(self._effects, level, msg)
end

-- Start the container (yields).
local function create(self)
  local data = self._data
  if not data then
    return nil, self._data_err
  end
  local userns = core.getuid() ~= 0
  if userns and core.set_subreaper then
    -- not root: a process joins the PID namespace from a child of orch's, which forks the real
    -- one and exits (src/spawn.c); orch must be its new parent
    core.set_subreaper()
  end
  local d = self._desc
  local cfg, cerr = data:image_config(d.imageId)
  if not cfg then
    return nil, cerr
  end
  local binds, berr = mounts_mod.bind_args(d.mounts, data)
  if not binds then
    return nil, berr
  end
  local tmp = data.root .. '/.mnt'
  local ok, merr = datadir.mkdir_p(tmp)
  if not ok then
    return nil, merr
  end
  local l, lerr = leader.start({ lower = data:image_rootfs(d.imageId), tmp = tmp,
    userns = userns,
    hostname = name_of(self), shared_run = d.sharedRun, binds = binds,
    log = function(level, msg)
      log(self, level, msg)
    end })
  if not l then
    if userns then
      lerr = ('%s (without root a subcontainer needs an unprivileged user namespace and an '
        .. 'overlay mounted in it: a kernel that allows them (user.max_user_namespaces, '
        .. 'kernel.unprivileged_userns_clone), or run orch as root)'):format(lerr)
    end
    return nil, lerr
  end
  self._cfg, self._leader = cfg, l
  self._root = ('/proc/%d/root'):format(l.pid)
  copy_host_files(self._root)
  l.cmd:on_exit(function()
    if self._leader == l then -- not by destroy(): the next use starts a new one
      self._leader, self._root = nil, nil
      if self._state == 'running' then
        self._state = 'lazy'
        log(self, 'warning', ("subcontainer '%s': its leader exited (%s)"):format(name_of(self),
          l.cmd:describe_exit()))
      end
    end
  end)
  return true
end

--- Start the container unless it runs (yields); raises when it cannot.
-- @async
function SubContainer:_ensure()
  while true do
    if self._state == 'destroyed' or self._state == 'destroying' then
      fail(self, 'it was destroyed')
    elseif self._state == 'running' and self._leader then
      return
    elseif self._state == 'creating' then
      self._created:wait()
    else
      self._state = 'creating'
      self._created = sched.event()
      local ok, err = create(self)
      local ev = self._created
      self._state = ok and 'running' or 'lazy'
      ev:set()
      if not ok then
        fail(self, err)
      end
      if self._pending and self._holds == 0 then
        self:_teardown()
        fail(self, 'it was destroyed')
      end
    end
  end
end

--- The host path of its root filesystem (starts it; yields).
-- @async
function SubContainer:rootfs()
  self:_ensure()
  return self._root
end

--- The host path of `p` inside it (starts it; yields).
-- @async
function SubContainer:subpath(p)
  return self:rootfs() .. '/' .. tostring(p):gsub('^/+', '')
end

-- The image's env (`K=V` list) as a map.
local function env_map(list)
  local m = {}
  for _, kv in ipairs(list or {}) do
    local k, v = kv:match('^([^=]+)=(.*)$')
    if k then
      m[k] = v
    end
  end
  return m
end

--- The image's config (user, workdir, env, entrypoint, cmd) (starts it; yields).
-- @async
function SubContainer:imageConfig()
  self:_ensure()
  return self._cfg
end

--- The command of the image: its entrypoint followed by `override` or its cmd (as upstream's
-- `useEntrypoint`); nil and 'command cannot be empty' when that is empty.
-- @async
function SubContainer:useEntrypoint(override)
  local cfg = self:imageConfig()
  local argv = {}
  for _, a in ipairs(cfg.entrypoint or {}) do
    argv[#argv + 1] = a
  end
  for _, a in ipairs(override or cfg.cmd or {}) do
    argv[#argv + 1] = a
  end
  if #argv == 0 then
    return nil, 'command cannot be empty'
  end
  return argv
end

--- What `orch.process.spawn` needs to run a process in it, for `o` = `{env (a map), user,
-- cwd, pidns}`: the image's env under `o.env` (HOME, USER and LOGNAME of the user unless set),
-- the user resolved in the image, the workdir, its namespaces and capabilities. Starts it
-- (yields). Returns the spawn options, or nil and why.
-- @async
function SubContainer:spawn_plan(o)
  local ok, err = pcall(self._ensure, self)
  if not ok then
    return nil, util.error_message(err)
  end
  local cfg = self._cfg
  local u, uerr = passwd.resolve(self._root, o.user or cfg.user)
  if not u then
    return nil, ("subcontainer '%s': %s"):format(name_of(self), uerr)
  end
  if self._leader.userns and (u.uid ~= 0 or u.gid ~= 0) then
    return nil, ("subcontainer '%s': user '%s' (uid %d): without root orch maps only uid 0 "
      .. "(you) into a subcontainer; run orch as root, or set user = 'root'"):format(
      name_of(self), tostring(o.user or cfg.user), u.uid)
  end
  local env = env_map(cfg.env)
  if env.PATH == nil then
    env.PATH = M.DEFAULT_PATH
  end
  env.HOME = u.home
  if u.name then
    env.USER, env.LOGNAME = u.name, u.name
  end
  for k, v in pairs(o.env or {}) do
    env[k] = v
  end
  return { env_base = {}, env = env, ids = { uid = u.uid, gid = u.gid, groups = u.groups },
    cwd = o.cwd or cfg.workdir or '/', join = self._leader.pid, caps = leader.CAP_NUMBERS,
    pidns = o.pidns }
end

-- The argv of a command (a string runs under sh -c, as upstream).
local function argv_of(cmd)
  if type(cmd) == 'string' then
    return { 'sh', '-c', cmd }
  end
  return cmd
end

--- Run `cmd` in it to completion (yields): `opts` = `{env, user, cwd}`; `timeoutMs` SIGKILLs
-- it when it passes. Returns `{exitCode, exitSignal, stdout, stderr}`; raises when it cannot
-- start.
-- @async
function SubContainer:exec(cmd, opts, timeoutMs)
  opts = opts or {}
  local plan, perr = self:spawn_plan(opts)
  if not plan then
    error(perr, 0)
  end
  plan.timeout = timeoutMs or false
  local res, msg = process.exec(argv_of(cmd), plan)
  if not res then
    fail(self, msg)
  end
  return { exitCode = res.exitCode, exitSignal = res.signal, stdout = res.stdout,
    stderr = res.stderr }
end

--- As `exec`, but raises when the command does not exit with 0.
-- @async
function SubContainer:execFail(cmd, opts, timeoutMs)
  local res = self:exec(cmd, opts, timeoutMs)
  if res.exitCode ~= 0 then
    local argv = argv_of(cmd)
    fail(self, ("'%s' %s: %s"):format(argv[1], res.exitSignal
      and ('exited with signal ' .. res.exitSignal)
      or ('exited with code ' .. tostring(res.exitCode)), res.stderr))
  end
  return res
end

local function start(self, cmd, opts, pidns)
  opts = opts or {}
  local plan, perr = self:spawn_plan({ env = opts.env, user = opts.user, cwd = opts.cwd,
    pidns = pidns })
  if not plan then
    error(perr, 0)
  end
  plan.stdout, plan.stderr = opts.stdout, opts.stderr
  plan.sigterm_timeout = opts.sigterm_timeout
  local c, msg = process.spawn(argv_of(cmd), plan)
  if not c then
    fail(self, msg)
  end
  return c
end

--- Start `cmd` in it (yields until started): `opts` = `{env, user, cwd, stdout, stderr}` (as
-- orch.process.spawn). Returns the orch.process Command.
-- @async
function SubContainer:spawn(cmd, opts)
  return start(self, cmd, opts, false)
end

--- Start `cmd` as PID 1 of a PID namespace of its own in its filesystem (runAsInit).
-- @async
function SubContainer:launch(cmd, opts)
  return start(self, cmd, opts, true)
end

--- Keep it alive (and start it, in the background, if it is lazy) until the returned
-- function is called (idempotent). Raises on a destroyed subcontainer.
function SubContainer:hold()
  if self._state == 'destroyed' or self._state == 'destroying' or self._pending then
    fail(self, 'it was destroyed')
  end
  self._holds = self._holds + 1
  if self._state == 'lazy' then
    sched.start({ name = 'subcontainer ' .. name_of(self), quiet = true }, function()
      pcall(self._ensure, self)
    end)
  end
  local released = false
  return function()
    if released then
      return
    end
    released = true
    self._holds = self._holds - 1
    if self._holds == 0 and self._pending then
      self:_teardown()
    end
  end
end

-- End the container (yields when in a task and the leader runs).
function SubContainer:_teardown()
  if self._state == 'destroyed' or self._state == 'destroying' then
    return
  end
  if self._state == 'creating' then -- _ensure tears down once created
    return
  end
  self._state = 'destroying'
  local l = self._leader
  self._leader, self._root = nil, nil
  if l and not l.cmd.exited.is_set then
    -- orch-init ends on SIGTERM, and the kernel then kills whatever was left in the namespace
    core.kill(l.pid, 'SIGTERM')
    if sched.current() and not l.cmd.exited:wait(M.DESTROY_TIMEOUT) then
      l.cmd:term({ signal = 'SIGKILL' })
    end
  end
  self._state = 'destroyed'
  self.destroyCount = (self.destroyCount or 0) + 1
end

--- Destroy it: at once when nothing holds it, else when the last hold is released.
-- Idempotent; yields until the leader is gone when called in a task.
function SubContainer:destroy()
  self._pending = true
  if self._holds == 0 then
    self:_teardown()
  end
end

--- Whether it runs now (its leader is up).
function SubContainer:running()
  return self._state == 'running' and self._leader ~= nil
end

--- The leader's pid in orch's PID namespace (nil unless it runs).
function SubContainer:leaderPid()
  return self._leader and self._leader.pid
end

return M
