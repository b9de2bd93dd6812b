--- `orch probe [--wait[=MS]] main.lua ID [-- args...]`: evaluate main.lua (nothing started),
-- call the `ready.fn` of entry ID once (with --wait: again, as its trigger says, until it
-- succeeds or MS ms have passed) and print the result: `<id>: <result>[: <message>]`. Exit 0 on
-- success, 1 otherwise. The readiness checks `orch export` writes call it.
-- @module orch.cli.probe
local sched = require 'orch.runtime.sched'
local util = require 'orch.runtime.util'
local results = require 'orch.entries.results'
local trigger = require 'orch.entries.trigger'
local USAGE = require 'orch.cli.usage'
local cli_args = require 'orch.cli.args'
local evaluate = require 'orch.cli.evaluate'
local check = require 'orch.cli.check'
local data_dir = require 'orch.cli.data_dir'
local control_paths = require 'orch.control.paths'

local out, err, usage_error = cli_args.out, cli_args.err, cli_args.usage_error

local M = {}

--- The default `ready.timeout` (ms), as an entry's.
M.DEFAULT_TIMEOUT = 60000

-- A health table from what ready.fn produced (pcall results), as the entry would report it.
local function normalise(ok, r)
  if not ok then
    local text = util.error_text(r)
    return { result = 'failure', message = text and util.strip_position(text)
      or ('ready.fn raised a %s value'):format(type(r)) }
  end
  if type(r) ~= 'table' or not results.RESULT_SET[r.result] then
    local shown = type(r) == 'table' and tostring(r.result) or tostring(r)
    return { result = 'failure', message = ("invalid health result '%s'"):format(shown) }
  end
  local msg = r.message
  if msg ~= nil and type(msg) ~= 'string' then
    msg = (type(msg) == 'number' or type(msg) == 'boolean') and tostring(msg)
      or ('(a %s message)'):format(type(msg))
  end
  return { result = r.result, message = msg }
end

-- One call of `fn`, bounded by `limit` ms (0: none).
local function call(fn, limit)
  local res
  local done = sched.event()
  local task = sched.start({ name = 'probe:ready.fn', quiet = true,
    deadline = limit > 0 and limit or nil }, function()
    res = table.pack(pcall(fn))
    done:set()
  end)
  local finished = done:wait(limit > 0 and limit or nil)
  if not task:finished() then
    task:cancel()
  end
  if task:preempted() then
    return { result = 'failure', message = ('ready.fn ran for more than %d ms without '
      .. 'yielding'):format(limit) }
  end
  if not finished or not res then
    return { result = 'failure', message = ('ready.fn did not return within %d ms'):format(
      limit) }
  end
  return normalise(res[1], res[2])
end

local function parse(args)
  local opts, pos = {}, {}
  local i = 2
  while i <= #args do
    local a = args[i]
    if a == '--' then
      opts.args = table.move(args, i + 1, #args, 1, {})
      break
    elseif a == '-h' or a == '--help' then
      opts.help = true
    elseif a == '--wait' then
      opts.wait = true
      if args[i + 1] and args[i + 1]:match('^%d+$') then
        opts.wait = math.tointeger(tonumber(args[i + 1]))
        i = i + 1
      end
    elseif a == '--data' or a:match('^%-%-data=') then
      local v = a:match('^%-%-data=(.*)$')
      if not v then
        i = i + 1
        v = args[i]
        if v == nil then
          usage_error('probe', "option '--data' needs a value")
        end
      end
      opts.data = v
    elseif a:match('^%-%-wait=') then
      local v = a:match('^%-%-wait=(%d+)$')
      if not v then
        usage_error('probe', "option '--wait' takes a number of ms, got '%s'", a:sub(8))
      end
      opts.wait = math.tointeger(tonumber(v))
    elseif a:sub(1, 1) == '-' and #a > 1 then
      usage_error('probe', "unknown option '%s' for 'probe'", a)
    else
      pos[#pos + 1] = a
    end
    i = i + 1
  end
  return opts, pos
end

-- Probe `spec` until success (`wait`) or once; returns the last health table.
local function run_probe(spec, wait)
  local ready = spec.ready
  local limit = ready.timeout or M.DEFAULT_TIMEOUT
  local last
  local function get_input()
    return { lastResult = last and last.result }
  end
  local done = sched.event()
  local task = sched.spawn('probe', function()
    local next_probe = (ready.trigger or trigger.defaultTrigger)(get_input)
    local shown
    repeat
      last = call(ready.fn, limit)
      if last.result == 'success' or not wait then
        break
      end
      local line = ('%s: %s%s\n'):format(spec.id, last.result,
        last.message and last.message ~= '' and (': ' .. last.message) or '')
      if line ~= shown then -- each new result once, not every probe
        err(line)
        shown = line
      end
    until not next_probe()
    done:set()
  end)
  local deadline = type(wait) == 'number' and wait > 0 and wait or nil
  local finished = done:wait(deadline)
  if not finished then
    task:cancel()
    last = { result = 'failure', message = ('not ready within %d ms (last: %s%s)'):format(
      wait, last and last.result or 'none', last and last.message and (' ' .. last.message)
        or '') }
  end
  return last
end

--- `orch probe`.
function M.cmd_probe(args)
  local opts, pos = parse(args)
  if opts.help then
    out(USAGE.probe)
    return 0
  end
  local script, id = pos[1], pos[2]
  cli_args.check_script('probe', script)
  if not id then
    usage_error('probe', 'missing the entry id: orch probe main.lua ID')
  end
  if pos[3] then
    usage_error('probe', "unexpected argument '%s' (script arguments go after --)", pos[3])
  end
  local data = data_dir.resolve('probe', opts.data, control_paths.default_name(script))
  local chain, entries, scope = check.load_quiet(script, opts.args or {}, data)
  if not chain then
    err(evaluate.message_of(entries) .. '\n')
    return 1
  end
  -- a Daemons.dynamic main: the entries of one run of its function, as orch check lists them
  chain = scope and scope.dynamic_chain or chain
  local spec
  for _, s in ipairs(chain:specs()) do
    if s.id == id then
      spec = s
    end
  end
  if not spec then
    err(("orch: probe: no entry '%s' in %s\n"):format(id, script))
    return 1
  end
  if not (spec.ready and spec.ready.fn) then
    err(("orch: probe: entry '%s' has no ready.fn to run%s\n"):format(id,
      spec.kind == 'oneshot' and ' (a oneshot is ready when it exits successfully)'
      or (spec.ready and ' (its readiness is pushed by the process)' or '')))
    return 1
  end
  local h = evaluate.run_root(function()
    return run_probe(spec, opts.wait)
  end)
  if type(h) ~= 'table' then
    return 1
  end
  local line = ('%s: %s%s\n'):format(id, h.result,
    h.message and h.message ~= '' and (': ' .. h.message) or '')
  if h.result == 'success' then
    out(line)
    return 0
  end
  err(line)
  return 1
end

return M
