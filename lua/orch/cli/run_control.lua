--- The control socket of `orch run`: the server (orch.control.server) with what it may ask of
-- the run (state, shutdown, reload, log reopening), and `--ui`, the terminal view attached to
-- that socket in a task of orch. Installed as methods of orch.cli.run's Run.
-- @module orch.cli.run_control
local core = require 'orch.core'
local sched = require 'orch.runtime.sched'
local util = require 'orch.runtime.util'
local control_paths = require 'orch.control.paths'
local control_server = require 'orch.control.server'
local err = require('orch.cli.args').err
-- loaded on first use: most runs have no terminal view
local ui = util.lazy('orch.cli.ui')

local M = {}

-- The methods this file adds (`install` copies them onto the class).
local Run = {}

-- orch run --ui: the UI (orch.cli.ui) on orch's own control socket, in a task of orch. q
-- stops orch; an error in the UI leaves orch running with its log on stdout again.
function Run:start_ui()
  self.ui_task = sched.spawn(function()
    local res, uerr = ui.attach(self.where, true)
    self.ui_task = nil
    if not res then
      err(('orch: %s; orch keeps running (orch ui attaches again)\n'):format(tostring(uerr)))
    elseif res == 'quit' then
      self:request_stop('ui: quit')
    end
  end)
  self.ui_task.quiet = true
end

-- Orch is stopping: the terminal goes back to the log.
function Run:stop_ui()
  local t = self.ui_task
  self.ui_task = nil
  if t then
    t:cancel()
  end
end

-- Listen on the control socket (orch.control.server); prints why not and returns false.
function Run:start_control()
  local o = self.opts
  if o.no_control then
    return true
  end
  local where, werr = control_paths.resolve({ control = o.control, name = o.name,
    script = self.script })
  if not where then
    err('orch: ' .. werr .. '\n')
    return false
  end
  local name = where.name or control_paths.default_name(self.script)
  local srv, lerr, note = control_server.listen(where, {
    sink = self.sink,
    meta = function()
      local m = self:meta().orch
      m.name = name
      m.uptime = core.now() - self.started_at
      return m
    end,
    chain = function()
      if self.stop_requested then
        return nil, 'orch is stopping'
      elseif self.phase ~= 'running' or not self.chain then
        return nil, ('orch is %s'):format(self.phase)
      end
      return self.chain
    end,
    shutdown = function()
      self:request_stop('shutdown requested')
    end,
    log_files = self.files,
    reopen = function()
      self:reopen('orch logs --reopen')
    end,
    reload = function(full, why)
      return self:request_reload(full, why)
    end,
    log = function(msg, level)
      self:log(msg, level)
    end,
  })
  if not srv then
    -- Never run with a socket someone else may answer on in orch's place: say why and stop.
    if note == 'live' or o.control or o.name then
      err('orch: ' .. lerr .. '\n')
    else
      err(('orch: cannot create the control socket: %s (run with --no-control to go without '
        .. 'it)\n'):format(lerr))
    end
    return false
  end
  if note then
    self:log(note, 'warning')
  end
  self.control = srv
  self.where = where
  return true
end

--- Add the methods (`start_control`, `start_ui`, `stop_ui`) to the class `Run`.
function M.install(class)
  util.assign(class, Run)
end

return M
