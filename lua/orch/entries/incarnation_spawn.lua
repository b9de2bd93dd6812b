--- Spawning the process of an incarnation's command (orch.entries.incarnation): its argv (also
-- `orch.useEntrypoint()`), its environment (subcontainer, `exec.envFile`, `exec.env`, pushed
-- readiness), the options of `process.spawn` (output handlers, user, cwd, rlimits, the
-- subcontainer's plan), its tracking group and cgroup limits, and the spawn itself, once more
-- when the tracker falls back from a refused cgroup join.
-- @module orch.entries.incarnation_spawn
local process = require 'orch.runtime.process'
local util = require 'orch.runtime.util'
local validate = require 'orch.entries.validate_exec'
local track = require 'orch.runtime.track'
local env_file = require 'orch.runtime.env_file'
local cgroup_limits = require 'orch.runtime.cgroup_limits'
local subcontainer = require 'orch.subcontainer'

local M = {}

--- Default wait between SIGTERM and SIGKILL (the seed's documented value; DECISIONS).
M.DEFAULT_SIGTERM_TIMEOUT = 30000

--- The entry's sigtermTimeout (that of the command an exec.fn returned first).
function M.sigterm_timeout(rt, exec)
  return exec.sigtermTimeout or rt.exec.sigtermTimeout or M.DEFAULT_SIGTERM_TIMEOUT
end

local function output_handler(self, stream, cb)
  local id, fx, push = self.id, self.effects, self.pushed
  return function(chunk)
    if push then
      push:output(stream, chunk) -- ready.logLine/onLine; the chunk still goes to the log
    end
    if chunk == nil then
      return
    end
    if cb then
      local ok, err = pcall(cb, chunk)
      if not ok then
        util.log(fx, 'error', ('%s: exec.%s raised: %s'):format(id,
          stream == 'stdout' and 'onStdout' or 'onStderr', util.error_message(err)))
      end
    elseif fx and type(fx.output) == 'function' then
      local ok, err = pcall(fx.output, id, stream, chunk)
      if not ok then
        util.log(fx, 'error', ('effects.output failed: %s'):format(tostring(err)))
      end
    else
      io.stdout:write(chunk)
      io.stdout:flush()
    end
  end
end

-- effects -> the `log(level, msg)` a Command reports leftovers with: one per effects table (all
-- entries of a chain share theirs), not a closure per spawn kept by every running process.
local loggers = setmetatable({}, { __mode = 'k' })
local NO_EFFECTS = {}

local function logger(fx)
  local key = fx or NO_EFFECTS
  local fn = loggers[key]
  if not fn then
    fn = function(level, msg)
      util.log(fx, level, msg)
    end
    loggers[key] = fn
  end
  return fn
end

-- The subcontainer's env, then exec.envFile's, then exec.env: each overrides the one before.
local function merged_env(sub, env, file_env)
  local out = {}
  if sub and type(sub.env) == 'table' then
    for k, v in pairs(sub.env) do
      out[k] = v
    end
  end
  for k, v in pairs(file_env or {}) do
    out[k] = v
  end
  for k, v in pairs(env or {}) do
    out[k] = v
  end
  return out
end

-- The argv of a command, or nil and a reason.
local function resolve_argv(cmd, sub)
  if getmetatable(cmd) == validate.UseEntrypoint and subcontainer.is(sub) then
    return sub:useEntrypoint(cmd.override) -- from the image's config
  elseif getmetatable(cmd) == validate.UseEntrypoint then
    local argv = {}
    for _, a in ipairs(sub and sub.entrypoint or {}) do
      argv[#argv + 1] = a
    end
    for _, a in ipairs(cmd.override or (sub and sub.cmd) or {}) do
      argv[#argv + 1] = a
    end
    if #argv == 0 then
      return nil, 'command cannot be empty'
    end
    return argv
  end
  return process.argv(cmd)
end

--- Spawn `exec.command` for the supervisor `self` (`id`, `exec`, `subcontainer`, `tracker`,
-- `effects`, `pushed`): `{cmd, group, env, file_env}` (the process, its tracking group or nil,
-- its environment, what `exec.envFile` said or nil); or nil, a message and an error code.
function M.spawn(self, exec)
  local argv, why = resolve_argv(exec.command, self.subcontainer)
  if not argv then
    return nil, why, 'EINVAL'
  end
  local sub = self.subcontainer
  local pass = exec.runAsInit
  local file_env
  if exec.envFile then -- read at each spawn: an edit applies at the next restart
    local ferr
    file_env, ferr = env_file.read(exec.envFile)
    if not file_env then
      return nil, ferr, 'ENOENT'
    end
  end
  local env = merged_env(sub, exec.env, file_env)
  if self.pushed then
    for k, v in pairs(self.pushed:env() or {}) do
      env[k] = v
    end
  end
  local opts = {
    env = env,
    cwd = exec.cwd or (sub and sub.workdir) or nil,
    user = exec.user or (sub and sub.user) or nil,
    stdout = output_handler(self, 'stdout', not pass and exec.onStdout or nil),
    stderr = output_handler(self, 'stderr', not pass and exec.onStderr or nil),
    pidns = exec.runAsInit or nil,
    rlimits = exec.limits and (exec.limits.nofile or exec.limits.core)
      and { nofile = exec.limits.nofile, core = exec.limits.core } or nil,
    sigterm_timeout = M.sigterm_timeout(self, exec),
    fds = self.pushed and self.pushed:fds() or nil, -- ready.notifyFd
    name = self.id,
    log = logger(self.effects),
  }
  if subcontainer.is(sub) then -- the image's env, user and workdir; its namespaces
    local plan, perr = sub:spawn_plan({ env = env, user = exec.user, cwd = exec.cwd,
      pidns = opts.pidns })
    if not plan then
      return nil, perr, 'ENOENT'
    end
    for k, v in pairs(plan) do
      opts[k] = v
    end
  end
  -- Tracking (orch.track): a cgroup or an environment tag per incarnation, from the tracker
  -- the chain was built with (none: the process group only).
  local tracker, group, cmd = self.tracker, nil, nil
  local function failed(...)
    if opts.fds then
      self.pushed:spawn_failed()
    end
    return ...
  end
  for _ = 1, 2 do
    if tracker then
      local gerr, gcode
      group, gerr, gcode = tracker:group(self.id)
      if not group then
        return failed(nil, ("spawn '%s': %s"):format(tostring(argv[1]), tostring(gerr)), gcode)
      end
      opts.env[track.ENV] = group.id
      opts.cgroup, opts.tag = group.cgroup, group.tag
    end
    -- cgroup limits need a cgroup v2 of the incarnation's own: an error, never a silent no-op
    local wanted = cgroup_limits.wanted(exec.limits)
    if #wanted > 0 then
      local lok, lerr
      if group and group.cgroup and group.v2 then
        lok, lerr = cgroup_limits.apply(group.cgroup, exec.limits)
      else
        lerr = ('exec.limits.%s needs a cgroup v2 per incarnation, and orch tracks processes '
          .. 'by %s here (run orch as root on a cgroup v2 system, or under systemd with '
          .. 'Delegate=yes)'):format(wanted[1], group and group.cgroup and 'cgroup v1'
          or 'process group')
      end
      if not lok then
        if group and tracker then
          tracker:spawn_failed(group, lerr, 'EINVAL', 'limits')
        end
        return failed(nil, lerr, 'EINVAL')
      end
    end
    local msg, code, stage
    cmd, msg, code, stage = process.spawn(argv, opts)
    if cmd then
      break
    end
    -- A refused cgroup join makes the tracker fall back to /proc: once more without it.
    if not (group and tracker:spawn_failed(group, msg, code, stage)) then
      return failed(nil, msg, code)
    end
  end
  return { cmd = cmd, group = group, env = opts.env, file_env = file_env }
end

return M
