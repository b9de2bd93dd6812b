--- Pre-built daemons: `Daemon.of(subcontainer, exec)` validates an exec (and subcontainer) once
-- and returns a template that `addDaemon(id, {daemon = d, ...})` accepts; `build()` turns it
-- into a runtime supervisor (orch.entries.daemon) like any other entry.
-- @module orch.entries.daemon_of
local util = require 'orch.runtime.util'
local validate = require 'orch.entries.validate_exec'
local exec_summary = require 'orch.entries.exec_summary'

local M = {}

-- A pre-built daemon (template): validated exec + subcontainer, instantiated at build().
local Template = {}
Template.__index = Template
Template.__tostring = function(self)
  return 'orch.Daemon (' .. exec_summary.summary(self.exec) .. ')'
end

--- A pre-built daemon for `addDaemon(id, {daemon = d, ready = ..., requires = ...})`.
-- `Daemon.of(subcontainer, exec)`; `Daemon.of(exec)` for a host process; the SDK's
-- `Daemon.of(effects, subcontainer, exec)` is accepted too (effects ignored).
-- @raise on invalid options (level 2)
function M.of(...)
  local n = select('#', ...)
  local sub, exec
  if n >= 3 then
    sub, exec = select(2, ...)
  elseif n == 2 then
    sub, exec = ...
  else
    exec = ...
  end
  local ctx = validate.context('Daemon.of: ')
  local spec, msg = validate.check(function()
    validate.subcontainer(sub, ctx)
    return validate.exec(exec, ctx, { has_sub = sub ~= nil })
  end)
  if not spec then
    error(tostring(msg), 2)
  end
  for _, w in ipairs(msg or {}) do
    util.log(nil, 'warning', w)
  end
  return setmetatable({ __orch_daemon = true, exec = spec, subcontainer = sub }, Template)
end

return M
