--- `orch export k8s|compose|systemd`: evaluate main.lua as `orch check` does (nothing started),
-- translate its graph (orch.export.*) and print what did not translate exactly on stderr.
-- @module orch.cli.export
local USAGE = require 'orch.cli.usage'
local cli_args = require 'orch.cli.args'
local evaluate = require 'orch.cli.evaluate'
local check = require 'orch.cli.check'
local env_file = require 'orch.runtime.env_file'
local model_of = require 'orch.export.model'
local data_dir = require 'orch.cli.data_dir'
local control_paths = require 'orch.control.paths'
local Loss = require 'orch.export.loss'

local out, err, usage_error = cli_args.out, cli_args.err, cli_args.usage_error

local M = {}

local RENDERERS = {
  k8s = 'orch.export.k8s',
  compose = 'orch.export.compose',
  systemd = 'orch.export.systemd',
}

-- Options anywhere before `--`: the first other argument is the script, the rest its args.
local OPTIONS = { output = 'value', o = 'value', strict = 'flag', registry = 'value',
  name = 'value', ['host-image'] = 'value', ['orch-image'] = 'flag', help = 'flag',
  h = 'flag', orch = 'value', data = 'value' }

local function parse(cmd, args, i)
  local opts, pos = {}, {}
  while i <= #args do
    local a = args[i]
    if a == '--' then
      table.move(args, i + 1, #args, #pos + 1, pos)
      break
    end
    local name, value = a:match('^%-%-([^=]+)=(.*)$')
    if not name then
      name = a:match('^%-%-(.+)$') or a:match('^%-(%a)$')
    end
    if name and a ~= '-' then
      local kind = OPTIONS[name]
      if not kind then
        usage_error(cmd, "unknown option '%s' for '%s'", a, cmd)
      end
      if kind == 'value' and not value then
        i = i + 1
        value = args[i]
        if value == nil then
          usage_error(cmd, "option '%s' needs a value", a)
        end
      elseif kind == 'flag' and value then
        usage_error(cmd, "option '%s' takes no value", a)
      end
      opts[name] = value or true
    else
      pos[#pos + 1] = a
    end
    i = i + 1
  end
  opts.output = opts.output or opts.o
  opts.help = opts.help or opts.h
  return opts, pos
end

local function write_file(path, text)
  local f, e = io.open(path, 'w')
  if not f then
    return nil, e
  end
  f:write(text)
  f:close()
  return true
end

local function app_name(script, opts)
  if opts.name then
    return opts.name
  end
  local dir = script:match('^(.*)/[^/]*$') or '.'
  local abs = dir
  if abs:sub(1, 1) ~= '/' then
    local p = io.popen('pwd')
    local cwd = p and p:read('l') or ''
    if p then
      p:close()
    end
    abs = cwd .. '/' .. dir
  end
  local base = abs:gsub('/%.?$', ''):match('([^/]+)$') or 'orch'
  if base == 'examples' or base == '.' then
    base = (script:match('([^/]+)%.lua$') or 'orch')
  end
  return base
end

-- The orch binary running now (systemd units call it for readiness).
local function self_exe()
  local ok, core = pcall(require, 'orch.core')
  return ok and core.exepath and core.exepath() or nil
end

local function cwd()
  local p = io.popen('pwd')
  local d = p and p:read('l')
  if p then
    p:close()
  end
  return d or '/'
end

--- Evaluate `script` with `args` and return its model (nil and a message on failure), and
-- whether it is one run of a Daemons.dynamic function (as orch check lists it).
function M.load_model(script, args, data)
  local chain, entries, scope = check.load_quiet(script, args, data)
  if not chain then
    return nil, evaluate.message_of(entries)
  end
  local dynamic = scope and scope.dynamic_chain
  chain = dynamic or chain
  local model, why = evaluate.run_root(function()
    return model_of.of_chain(chain)
  end)
  if not model then
    return nil, ('orch: export: %s: %s'):format(script, why)
  end
  return model, nil, dynamic ~= nil
end

--- `orch export FORMAT [options] main.lua [args...]`.
function M.cmd_export(argv)
  local format = argv[2]
  if format == '-h' or format == '--help' or format == nil then
    if format == nil then
      usage_error('export', 'missing the format: orch export k8s|compose|systemd main.lua')
    end
    out(USAGE.export)
    return 0
  end
  local opts, pos = parse('export', argv, 3)
  if opts.help then
    out(USAGE.export)
    return 0
  end
  if not RENDERERS[format] then
    usage_error('export', "unknown format '%s' (k8s, compose or systemd)", tostring(format))
  end
  local script = pos[1]
  cli_args.check_script('export', script)
  local args = table.move(pos, 2, #pos, 1, {})
  if format == 'systemd' and not opts.output then
    usage_error('export', 'systemd writes one file per unit: give -o DIR')
  end
  local data = data_dir.resolve('export', opts.data, opts.name
    or control_paths.default_name(script))
  local model, merr, dynamic = M.load_model(script, args, data)
  if not model then
    err(merr .. '\n')
    return 1
  end
  local loss = Loss.new(format)
  if dynamic then
    loss:add(nil, 'Daemons.dynamic', 'the entries of one run of fn (ctx.reload = 0) were '
      .. 'exported; later runs (reloads) may produce others')
  end
  local ropts = {
    name = app_name(script, opts),
    registry = opts.registry,
    hostImage = opts['host-image'],
    orchImage = opts['orch-image'] or false,
    script = script,
    args = args,
    orch = opts.orch or (format == 'systemd' and self_exe()) or nil,
    cwd = cwd(),
    read_env_file = env_file.read,
    data = data,
    -- what orch probe would not find by itself (the default is the script's directory name)
    probeData = (opts.data or opts.name) and data or nil,
  }
  local result, rerr = require(RENDERERS[format]).render(model, ropts, loss)
  if not result then
    err(('orch: export %s: %s\n'):format(format, rerr))
    return 1
  end
  err(loss:format())
  if opts.strict and loss:count() > 0 then
    err(('orch: export %s: %d construct%s did not translate exactly (--strict); nothing '
      .. 'written\n'):format(format, loss:count(), loss:count() == 1 and '' or 's'))
    return 1
  end
  if type(result) == 'string' then
    if opts.output then
      os.execute(("mkdir -p '%s'"):format(opts.output:gsub("'", "'\\''")))
      local file = opts.output .. '/' .. (format == 'k8s' and 'kubernetes.yaml' or 'compose.yaml')
      local ok, werr = write_file(file, result)
      if not ok then
        err(('orch: export: %s\n'):format(werr))
        return 1
      end
    else
      out(result)
    end
    return 0
  end
  os.execute(("mkdir -p '%s'"):format(opts.output:gsub("'", "'\\''")))
  for _, f in ipairs(result) do
    local ok, werr = write_file(opts.output .. '/' .. f.name, f.text)
    if not ok then
      err(('orch: export: %s\n'):format(werr))
      return 1
    end
  end
  return 0
end

M.parse = parse

return M
