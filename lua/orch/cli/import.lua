--- `orch import compose FILE`: a docker compose file as a main.lua on stdout
-- (orch.export.import_compose), what did not translate on stderr.
-- @module orch.cli.import
local USAGE = require 'orch.cli.usage'
local cli_args = require 'orch.cli.args'
local Loss = require 'orch.export.loss'
local import_compose = require 'orch.export.import_compose'

local out, err, usage_error = cli_args.out, cli_args.err, cli_args.usage_error

local M = {}

--- `orch import compose [--strict] FILE`.
function M.cmd_import(args)
  local opts, pos = {}, {}
  for i = 2, #args do
    local a = args[i]
    if a == '-h' or a == '--help' then
      opts.help = true
    elseif a == '--strict' then
      opts.strict = true
    elseif a:sub(1, 1) == '-' and #a > 1 then
      usage_error('import', "unknown option '%s' for 'import'", a)
    else
      pos[#pos + 1] = a
    end
  end
  if opts.help then
    out(USAGE.import)
    return 0
  end
  if pos[1] ~= 'compose' then
    usage_error('import', pos[1] and ("unknown format '%s' (compose)"):format(pos[1])
      or 'missing the format: orch import compose FILE')
  end
  local file = pos[2]
  if not file then
    usage_error('import', 'missing the file: orch import compose FILE')
  end
  local f, ferr = io.open(file, 'r')
  if not f then
    usage_error('import', "cannot read '%s': %s", file, (ferr:gsub('^[^:]*: ', '')))
  end
  local text = f:read('a')
  f:close()
  if not text then
    usage_error('import', "cannot read '%s'", file)
  end
  local loss = Loss.new('import')
  local lua, terr = import_compose.translate(text, file, loss)
  if not lua then
    err(('orch: import: %s\n'):format(terr))
    return 1
  end
  err(loss:format())
  if opts.strict and loss:count() > 0 then
    err(('orch: import: %d key%s did not translate exactly (--strict); nothing written\n')
      :format(loss:count(), loss:count() == 1 and '' or 's'))
    return 1
  end
  out(lua)
  return 0
end

return M
