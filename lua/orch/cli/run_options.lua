--- The options of `orch run` checked and turned into what the run needs (`--until-ready`,
-- `--log-format`, colours, `--status-file`, `--log-dir`, `--log-lines`, the control socket,
-- `--ui` or the progress line); a bad one is a usage error that names it.
-- @module orch.cli.run_options
local core = require 'orch.core'
local util = require 'orch.runtime.util'
local control_paths = require 'orch.control.paths'
local run_setup = require 'orch.cli.run_setup'
local usage_error = require('orch.cli.args').usage_error
-- loaded on first use: most runs have no terminal view
local ui = util.lazy('orch.cli.ui')

local M = {}

--- The run options of the parsed command line `opts` (raises a usage error).
-- @tparam table opts from orch.cli.args
-- @tparam integer default_until_ready ms, for a `--until-ready` without a value
-- @treturn table `{watch, until_ready, until_ready_ms, log_format, color, timestamps,
--   status_file, log_dir, log_lines, no_control, control, name, ui, progress}`
function M.parse(opts, default_until_ready)
  local ropts = { watch = opts.watch and true or nil }
  if opts['until-ready'] then
    ropts.until_ready = true
    local v = opts['until-ready']
    if v == true then
      ropts.until_ready_ms = default_until_ready
    else
      local n = tonumber(v)
      if not n or n < 0 or n ~= math.floor(n) then
        usage_error('run', "--until-ready takes milliseconds, got '%s'", v)
      end
      ropts.until_ready_ms = n > 0 and math.tointeger(n) or nil
    end
  end
  local fmt = opts['log-format'] or 'text'
  if fmt ~= 'text' and fmt ~= 'json' then
    usage_error('run', "unknown log format '%s' (text or json)", fmt)
  end
  ropts.log_format = fmt
  if opts['no-color'] then
    ropts.color = false
  elseif opts.color then
    ropts.color = true
  end
  ropts.timestamps = opts.timestamps and true or false
  if opts['status-file'] then
    if opts['status-file'] == '' then
      usage_error('run', '--status-file needs a path')
    end
    ropts.status_file = opts['status-file']
  end
  if opts['log-dir'] then
    ropts.log_dir = run_setup.log_dir(opts['log-dir'])
  end
  if opts['log-lines'] then
    local n = tonumber(opts['log-lines'])
    if not n or n < 0 or n ~= math.floor(n) then
      usage_error('run', "--log-lines takes a count, got '%s'", opts['log-lines'])
    end
    ropts.log_lines = math.tointeger(n)
  end
  if opts['no-control'] then
    ropts.no_control = true
  elseif opts.control or opts.name then
    ropts.control, ropts.name = opts.control, opts.name
    local _, cerr = control_paths.resolve({ control = opts.control, name = opts.name })
    if cerr then
      usage_error('run', '%s', cerr)
    end
  elseif os.getenv('ORCH_CONTROL') == '0' then
    ropts.no_control = true
  end
  if opts.ui then
    local why = ui.unusable()
    if why then
      usage_error('run', '--ui: %s', why)
    elseif ropts.no_control then
      usage_error('run', '--ui needs the control socket (it cannot go with --no-control or '
        .. 'ORCH_CONTROL=0)')
    elseif ropts.until_ready then
      usage_error('run', '--ui cannot go with --until-ready')
    end
    ropts.ui = true
  elseif fmt == 'text' and core.isatty and core.isatty(1) and core.tty then
    ropts.progress = true -- the start-up progress line, on a terminal only
  end
  return ropts
end

return M
