--- The `orch` command line: `main(args)` is called by the binary with the arguments after the
-- program name and returns the exit status: 0 clean, 1 runtime failure (script error, timeout,
-- forced shutdown), 2 usage error. It dispatches to the commands, one module each under
-- orch.cli: `run` (orch.cli.run), `check` and `graph` (orch.cli.check), the control commands
-- (orch.cli.remote, and `ui`: orch.cli.ui), `image` (orch.cli.image); orch.cli.args parses the
-- options, orch.cli.usage holds the help and orch.cli.evaluate loads main.lua.
-- @module orch.cli
local core = require 'orch.core'
local USAGE = require 'orch.cli.usage'
local cli_args = require 'orch.cli.args'
local evaluate = require 'orch.cli.evaluate'
local check = require 'orch.cli.check'
local run = require 'orch.cli.run'
local remote = require 'orch.cli.remote'

local out, err, usage_error = cli_args.out, cli_args.err, cli_args.usage_error
local parse, parse_control, UsageError = cli_args.parse, cli_args.parse_control,
  cli_args.UsageError
local message_of = evaluate.message_of

local M = {}

M.evaluate = evaluate.evaluate
M.format_entries = check.format_entries
M.format_graph = check.format_graph

-- `orch run`'s DEFAULT_UNTIL_READY and FORCE_EXIT_DELAY, and relay_pid, are fields of
-- orch.cli.run, read there when used: reading or setting them here reaches them there.
local RUN_FIELDS = { DEFAULT_UNTIL_READY = true, FORCE_EXIT_DELAY = true, relay_pid = true }
setmetatable(M, {
  __index = function(_, k)
    if RUN_FIELDS[k] then
      return run[k]
    end
  end,
  __newindex = function(t, k, v)
    if RUN_FIELDS[k] then
      run[k] = v
    else
      rawset(t, k, v)
    end
  end,
})

-- the clients of a running orch's control socket (the terminal view loaded only for `orch ui`)
local CONTROL_COMMANDS = { ui = function(...)
  return require('orch.cli.ui').cmd_ui(...)
end, timeline = function(...) -- a FILE, or the history of a running orch
  return require('orch.cli.timeline').cmd_timeline(...)
end }
for name, fn in pairs(remote.commands) do
  CONTROL_COMMANDS[name] = fn
end

local COMMANDS = { run = run.cmd_run, check = check.cmd_check, graph = check.cmd_graph }

-- commands that parse their own arguments (orch.cli.export, orch.cli.probe, orch.cli.import)
local OWN_ARGS = {
  export = function(args)
    return require('orch.cli.export').cmd_export(args)
  end,
  probe = function(args)
    return require('orch.cli.probe').cmd_probe(args)
  end,
  import = function(args)
    return require('orch.cli.import').cmd_import(args)
  end,
}

--- The entry point: `args` are the arguments after the program name; returns the exit status.
function M.main(args)
  args = args or {}
  -- main.c blocks the stop signals until there are handlers; only `run` installs any.
  local first_arg = tostring(args[1] or '')
  if core.unblock_signals and first_arg ~= 'run' and not first_arg:match('%.lua$') then
    core.unblock_signals()
  end
  local ok, code = xpcall(function()
    local first = args[1]
    if first == nil then
      err(USAGE.main)
      return 2
    elseif first == '-h' or first == '--help' or first == 'help' then
      local topic = args[2]
      out(USAGE[topic] or USAGE.main)
      return 0
    elseif first == '-V' or first == '--version' then
      out(('orch %s (%s)\n'):format(core.version or '?', _VERSION))
      return 0
    end
    local cmd, start = first, 2
    if cmd == 'test' then -- its options are busted's, parsed there
      return require('orch.cli.test').cmd_test(args, start)
    end
    if OWN_ARGS[cmd] then
      return OWN_ARGS[cmd](args)
    end
    if CONTROL_COMMANDS[cmd] then
      local copts, pos = parse_control(cmd, args, start)
      if copts.help then
        out(USAGE[cmd])
        return 0
      end
      return CONTROL_COMMANDS[cmd](copts, pos)
    elseif cmd == 'image' then -- subcommands, options anywhere (orch.cli.image)
      return require('orch.cli.image').main(args, start)
    end
    if not COMMANDS[cmd] then
      if first:match('%.lua$') and not first:match('^%-') then
        cmd, start = 'run', 1
      elseif first:match('^%-') then
        usage_error(nil, "unknown option '%s'", first)
      else
        usage_error(nil, "unknown command '%s'", first)
      end
    end
    local opts, script, rest = parse(cmd, args, start)
    return COMMANDS[cmd](opts, script, rest)
  end, function(e)
    if getmetatable(e) == UsageError then
      return e
    end
    return debug.traceback(message_of(e), 2)
  end)
  if ok then
    return code
  end
  if getmetatable(code) == UsageError then
    local hint = code.cmd and ('orch ' .. code.cmd .. ' --help') or 'orch --help'
    err(('orch: %s (try \'%s\')\n'):format(code.message, hint))
    return 2
  end
  err('orch: internal error: ' .. tostring(code) .. '\n')
  return 1
end

return M
