--- orch: the SDK table returned by `require 'orch'`.
-- `Daemons`, `Daemon`, `healthCheck`, `trigger`, `SubContainer`, `Mounts`, `useEntrypoint`,
-- `setupMain`, and the task
-- primitives a main.lua may use at top level or inside callbacks (`sleep`, `spawn`, `exec`,
-- `run`, `now`, `ABORTED`).
-- @module orch
local sched = require 'orch.runtime.sched'
local process = require 'orch.runtime.process'
local validate = require 'orch.graph.validate'

local M = {}

--- The fluent chain builder (`Daemons.of{effects = ...}`).
M.Daemons = require 'orch.graph.daemons'
--- Pre-built daemons (`Daemon.of(subcontainer, exec)`).
M.Daemon = require 'orch.entries.daemon'
--- Health-check helpers (`checkPortListening`, `checkWebUrl`, `runHealthScript`).
M.healthCheck = require 'orch.entries.health'
--- Triggers (`defaultTrigger`, `cooldownTrigger`, `statusTrigger`, `changeOnFirstSuccess`,
-- `lastStatus`, `successFailure`).
M.trigger = require 'orch.entries.trigger'

--- Subcontainers (`SubContainer.of(effects, {imageId =, sharedRun =}, mounts, name)`, `eager`):
-- an image's root filesystem with its own namespaces, in which entries and `exec` run.
M.SubContainer = require 'orch.subcontainer'
--- The mounts of a subcontainer (`Mounts.of():mountVolume{...}:mountAssets{...}`).
M.Mounts = require 'orch.subcontainer.mounts'

--- A command taken from the subcontainer's image metadata: `entrypoint` followed by `override`
-- (or else the image's `cmd`).
-- @tparam[opt] {string,...} override
M.useEntrypoint = validate.use_entrypoint

--- `setupMain(fn)`: the SDK's wrapper for `main`; returns `fn`, which orch calls with
-- `ctx = {effects = ..., args = ...}` and which returns a chain.
-- @tparam function fn
-- @treturn function fn
function M.setupMain(fn)
  if type(fn) ~= 'function' then
    require('orch.runtime.util').bad_argument(1, 'setupMain', 'function expected, got ' .. type(fn))
  end
  return fn
end

--- Sleep `ms` milliseconds (yields).
M.sleep = sched.sleep
--- Start `fn(...)` as a new task.
M.spawn = sched.spawn
--- Run a command to completion, collecting its output (yields): `{exitCode, signal, stdout,
-- stderr, timedOut}` or nil, message, code.
M.exec = process.exec
--- Run `fn` as the root task and drive the loop until it ends.
M.run = sched.run
--- Loop time in milliseconds.
M.now = sched.now
--- The error raised in a task aborted while it waits (e.g. `exec.fn` on stop).
M.ABORTED = sched.ABORTED

return M
