--- One incarnation of a daemon or oneshot: a command's process (`CommandInc`,
-- orch.entries.incarnation_command, spawned by orch.entries.incarnation_spawn) or an `exec.fn`
-- task and the command it returned (`FnInc`, orch.entries.incarnation_fn). Both answer
-- `on_exit(fn)`, `result()` (after the exit: the outcome, once nothing tracked is left), `term()`
-- (the one TERM -> KILL path: `process.Command:term`), `kill_now()`, `signal(sig)` and `close()`.
-- The supervisor that owns them (orch.daemon) decides what happens next.
-- @module orch.entries.incarnation
local subcontainer = require 'orch.subcontainer'
local spawn = require 'orch.entries.incarnation_spawn'
local command = require 'orch.entries.incarnation_command'
local fn = require 'orch.entries.incarnation_fn'

local M = {}

--- Default wait between SIGTERM and SIGKILL (the seed's documented value; DECISIONS).
M.DEFAULT_SIGTERM_TIMEOUT = spawn.DEFAULT_SIGTERM_TIMEOUT

--- Start the command of `exec` for the supervisor `self`: at once (never yields), or, when its
-- subcontainer is not up yet, in a task that starts it first.
function M.command(self, exec)
  local sub = self.subcontainer
  if subcontainer.is(sub) and not sub:running() then
    return fn.start_in_subcontainer(self, exec)
  end
  return command.start(self, exec)
end

--- Start `exec.fn` for the supervisor `self` as an incarnation (never fails).
M.fn = fn.start

--- Tell effects.onProcess; without it, log failed exits and spawn errors.
M.emit = command.emit

return M
