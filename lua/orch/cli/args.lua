--- The arguments of the `orch` command line: the options of each command and their parsing,
-- the usage errors (exit status 2) they raise, and the stdout/stderr writers all commands share.
-- @module orch.cli.args

-- Options per command: name -> 'flag' | 'value' (required) | 'optional' (only as --x=V).
local OPTIONS = {
  run = {
    ['until-ready'] = 'optional',
    ['log-format'] = 'value',
    ['no-color'] = 'flag',
    ['color'] = 'flag',
    ['timestamps'] = 'flag',
    ['status-file'] = 'value',
    ['log-lines'] = 'value',
    ['log-dir'] = 'value',
    ['no-contain'] = 'flag',
    ['control'] = 'value',
    ['name'] = 'value',
    ['no-control'] = 'flag',
    ['watch'] = 'flag',
    ['ui'] = 'flag',
    ['data'] = 'value',
    ['help'] = 'flag',
  },
  check = { ['data'] = 'value', ['name'] = 'value', ['help'] = 'flag' },
  graph = { ['format'] = 'value', ['help'] = 'flag' },
}

local function out(s)
  io.stdout:write(s)
  io.stdout:flush()
end

local function err(s)
  io.stderr:write(s)
  io.stderr:flush()
end

local UsageError = {}

local function usage_error(cmd, fmt, ...)
  error(setmetatable({ cmd = cmd, message = fmt:format(...) }, UsageError), 0)
end

-- The value of one option of `cmd` (`kind`: 'flag', 'value' or 'optional'; nil = unknown), shown
-- as `shown` in errors: a flag is true, a 'value' takes the inline `value` or the next argument.
-- Returns the value and the index of the last argument it used. Shared by both parsers.
local function option_value(cmd, kind, shown, value, args, i)
  if not kind then
    usage_error(cmd, "unknown option '%s' for '%s'", shown, cmd)
  end
  if kind == 'flag' and value then
    usage_error(cmd, "option '%s' takes no value", shown)
  elseif kind == 'value' and not value then
    i = i + 1
    value = args[i]
    if value == nil then
      usage_error(cmd, "option '%s' needs a value", shown)
    end
  end
  return value or true, i
end

-- Parse `args[i..]` for `cmd`: options first, then the script and its arguments.
local function parse(cmd, args, i)
  local spec = OPTIONS[cmd]
  local opts = {}
  while i <= #args do
    local a = args[i]
    if a == '--' then
      i = i + 1
      break
    elseif a == '-h' then
      opts.help = true
    elseif a:sub(1, 2) == '--' then
      local name, value = a:match('^%-%-([^=]+)=(.*)$')
      name = name or a:sub(3)
      opts[name], i = option_value(cmd, spec[name], '--' .. name, value, args, i)
    elseif a:sub(1, 1) == '-' and #a > 1 then
      usage_error(cmd, "unknown option '%s' for '%s'", a, cmd)
    else
      break
    end
    i = i + 1
  end
  local script = args[i]
  local rest = {}
  for j = i + 1, #args do
    rest[#rest + 1] = args[j]
  end
  return opts, script, rest
end

-- A usage error unless `script` is given and names a readable file.
local function check_script(cmd, script)
  if not script then
    usage_error(cmd, "missing the script: orch %s [options] main.lua", cmd)
  end
  local f, ferr = io.open(script, 'r')
  if not f then
    usage_error(cmd, "cannot read '%s': %s", script, (ferr:gsub('^[^:]*: ', '')))
  end
  -- A directory opens but cannot be read.
  local ok, rerr = f:read(0)
  f:close()
  if ok == nil and rerr then
    usage_error(cmd, "cannot read '%s': %s", script, rerr)
  end
end

-- Options of each control command (plus --control, --name and --help for all).
local CONTROL_OPTIONS = {
  status = { json = 'flag', watch = 'flag', color = 'flag', ['no-color'] = 'flag' },
  logs = { lines = 'value', follow = 'flag', json = 'flag', timestamps = 'flag', color = 'flag',
    ['no-color'] = 'flag', since = 'value', reopen = 'flag' },
  stop = { json = 'flag' },
  start = { json = 'flag' },
  restart = { json = 'flag' },
  signal = { json = 'flag' },
  shutdown = { ['no-wait'] = 'flag', json = 'flag' },
  reload = { full = 'flag', json = 'flag' },
  ui = {},
  timeline = { format = 'value', output = 'value', width = 'value', color = 'flag',
    ['no-color'] = 'flag' },
}

local CONTROL_SHORT = { n = 'lines', f = 'follow', w = 'watch', h = 'help', o = 'output' }

-- Options anywhere among the arguments; returns opts and the positional arguments.
local function parse_control(cmd, args, i)
  local spec = CONTROL_OPTIONS[cmd]
  local opts, pos = {}, {}
  local function kind_of(name)
    if name == 'control' or name == 'name' then
      return 'value'
    elseif name == 'help' then
      return 'flag'
    end
    return spec[name]
  end
  while i <= #args do
    local a = args[i]
    if a == '--' then
      for j = i + 1, #args do
        pos[#pos + 1] = args[j]
      end
      break
    end
    local name, value
    if a:sub(1, 2) == '--' then
      name, value = a:match('^%-%-([^=]+)=(.*)$')
      name = name or a:sub(3)
    elseif a:match('^%-%a') then
      name = CONTROL_SHORT[a:sub(2, 2)]
      if not name then
        usage_error(cmd, "unknown option '%s' for '%s'", a, cmd)
      end
      if #a > 2 then
        value = a:sub(3)
      end
    end
    if name then
      opts[name], i = option_value(cmd, kind_of(name), a, value, args, i)
    else
      pos[#pos + 1] = a
    end
    i = i + 1
  end
  return opts, pos
end

return {
  out = out,
  err = err,
  UsageError = UsageError,
  usage_error = usage_error,
  option_value = option_value,
  parse = parse,
  parse_control = parse_control,
  check_script = check_script,
}
