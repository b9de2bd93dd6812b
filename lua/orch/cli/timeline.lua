--- `orch timeline [FILE|-]`: draw a run as a timeline (orch.timeline), from a JSON log
-- (`orch run --log-format json`; `-` is stdin) or from the recent events of a running orch
-- (its control socket: the `history` command), as SVG (default) or for a terminal.
-- @module orch.cli.timeline
local core = require 'orch.core'
local time = require 'orch.runtime.time'
local timeline = require 'orch.timeline'
local cli_args = require 'orch.cli.args'
local remote = require 'orch.cli.remote'

local out, err, usage_error = cli_args.out, cli_args.err, cli_args.usage_error

local M = {}

local FORMATS = { svg = true, term = true }

local function positive_int(name, v)
  local n = tonumber(v)
  if not n or n ~= math.floor(n) or n < 1 then
    usage_error('timeline', "option '--%s' needs a positive integer, got '%s'", name,
      tostring(v))
  end
  return math.tointeger(n)
end

-- The columns of the terminal on stdout, else $COLUMNS, else 80.
local function term_width()
  local tty = core.tty and core.isatty(1) and core.tty(1)
  if tty then
    local cols = tty:winsize()
    tty:close()
    if cols and cols > 0 then
      return cols
    end
  end
  return tonumber(os.getenv('COLUMNS') or '') or 80
end

local function use_color(opts, to_file)
  if opts['no-color'] then
    return false
  elseif opts.color then
    return true
  end
  local nc = os.getenv('NO_COLOR')
  return not to_file and not (nc and nc ~= '') and core.isatty(1) == true
end

-- Draw the model `m` and write it where `opts` says; the exit status.
local function emit(m, opts)
  local text
  if opts.format == 'term' then
    text = timeline.term.render(m, { width = opts.width or term_width(),
      color = use_color(opts, opts.output ~= nil) })
  else
    text = timeline.svg.render(m, { width = opts.width })
  end
  if opts.output and opts.output ~= '-' then
    local f, ferr = io.open(opts.output, 'w')
    if not f then
      err(('orch: cannot write %s\n'):format(ferr))
      return 1
    end
    local ok, werr = f:write(text)
    f:close()
    if not ok then
      err(('orch: cannot write %s: %s\n'):format(opts.output, tostring(werr)))
      return 1
    end
    return 0
  end
  out(text)
  return 0
end

-- The lines of FILE (`-`: stdin), or nil once why not is said.
local function file_lines(path)
  local f, ferr
  if path == '-' then
    f = io.stdin
  else
    f, ferr = io.open(path, 'r')
    if not f then
      usage_error('timeline', 'cannot read %s', ferr)
    end
  end
  local lines = {}
  while true do
    local l, rerr = f:read('l')
    if l == nil then
      if rerr then
        err(('orch: cannot read %s: %s\n'):format(path, rerr))
        return nil
      end
      break
    end
    lines[#lines + 1] = l
  end
  if f ~= io.stdin then
    f:close()
  end
  return lines
end

--- `orch timeline [FILE|-] [--format svg|term] [-o FILE] [--width N] [--control NAME|PATH |
-- --name NAME]`.
function M.cmd_timeline(opts, pos)
  if #pos > 1 then
    usage_error('timeline', 'too many arguments: orch timeline [FILE|-]')
  end
  opts.format = opts.format or 'svg'
  if not FORMATS[opts.format] then
    usage_error('timeline', "unknown format '%s' (svg or term)", tostring(opts.format))
  end
  if opts.width then
    opts.width = positive_int('width', opts.width)
  end
  local file = pos[1]
  if file and (opts.control or opts.name) then
    usage_error('timeline', 'give a FILE or --control/--name, not both')
  end
  if file then
    local lines = file_lines(file)
    if not lines then
      return 1
    end
    local m, why = timeline.model_from_log_lines(lines,
      { name = file == '-' and 'stdin' or file })
    if not m then
      err(('orch: timeline: %s\n'):format(why))
      return 1
    end
    return emit(m, opts)
  end
  -- `--control NAME` (no '/') names an orch, as --name does
  if opts.control and not opts.control:find('/', 1, true) then
    opts.name, opts.control = opts.control, nil
  end
  return remote.request('timeline', opts, { cmd = 'history' }, function(client, reply)
    client:close()
    if type(reply.events) ~= 'table' then
      err('orch: timeline: this orch does not keep a history (a newer orch is needed)\n')
      return 1
    end
    local m, why = timeline.model_from_log_lines(reply.events,
      { name = 'history', t_end = time.parse_iso(reply.now) })
    if not m then
      err(('orch: timeline: %s\n'):format(why))
      return 1
    end
    if math.type(reply.dropped) == 'integer' and reply.dropped > 0 then
      err(('orch: timeline: the %d oldest events are no longer kept; the picture starts at the '
        .. 'oldest one kept\n'):format(reply.dropped))
    end
    return emit(m, opts)
  end)
end

return M
