--- `orch ui [NAME]`: the interactive terminal view of a running orch (orch.cli.ui.app), and
-- what `orch run --ui` starts inside orch itself (`attach`).
-- @module orch.cli.ui
local paths = require 'orch.control.paths'
local cli_args = require 'orch.cli.args'
local run_root = require('orch.cli.evaluate').run_root
local terminal = require 'orch.cli.ui.terminal'
local app = require 'orch.cli.ui.app'
local remote = require 'orch.cli.remote'

local err, usage_error = cli_args.err, cli_args.usage_error

local M = {}

--- Why `orch ui` (or `orch run --ui`) cannot draw here, as the one-line error, or nil.
function M.unusable()
  local why = terminal.unusable()
  if why then
    return ('%s: orch ui needs a terminal (use orch status --watch or orch logs -f on a '
      .. 'pipe)'):format(why)
  end
  return nil
end

--- Run the UI against `where` in the current task; `embedded` inside orch run. Returns why it
-- ended, or nil and the error.
function M.attach(where, embedded)
  return app.run(where, { embedded = embedded, open_terminal = terminal.open })
end

--- `orch ui [NAME] [--control PATH | --name NAME]`: exit 0 once quit, 1 when orch cannot be
-- reached or the UI failed, 2 on a usage error (stdout or stdin not a terminal included).
function M.cmd_ui(opts, pos)
  if #pos > 1 then
    usage_error('ui', 'too many arguments: orch ui [NAME]')
  end
  if pos[1] and opts.name and pos[1] ~= opts.name then
    usage_error('ui', "two names: '%s' and --name '%s'", pos[1], opts.name)
  end
  local where, werr = paths.resolve({ control = opts.control, name = opts.name or pos[1] })
  if not where then
    usage_error('ui', '%s', werr)
  end
  local why = M.unusable()
  if why then
    usage_error('ui', '%s', why)
  end
  return run_root(function()
    local probe = remote.control_connect(where, opts) -- says why not, as orch status does
    if not probe then
      return 1
    end
    probe:close()
    local res, uerr = M.attach(where, false)
    if not res then
      err('orch: ' .. tostring(uerr) .. '\n')
      return 1
    end
    if res ~= 'quit' and not res:match('^SIG') then
      err('orch: ' .. res .. '\n')
    end
    return 0
  end)
end

return M
