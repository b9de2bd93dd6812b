--- The control commands of the `orch` command line (status, logs, stop, start, restart, signal,
-- shutdown, reload): clients of a running orch's control socket (orch.control.client).
-- @module orch.cli.remote
local core = require 'orch.core'
local sched = require 'orch.runtime.sched'
local log = require 'orch.log'
local time = require 'orch.runtime.time'
local paths = require 'orch.control.paths'
local protocol = require 'orch.control.protocol'
local client_mod = require 'orch.control.client'
local render = require 'orch.control.render'
local cli_args = require 'orch.cli.args'
local run_root = require('orch.cli.evaluate').run_root

local out, err, usage_error = cli_args.out, cli_args.err, cli_args.usage_error

local M = {}

local function use_color(opts)
  if opts['no-color'] then
    return false
  elseif opts.color then
    return true
  end
  local nc = os.getenv('NO_COLOR')
  return not (nc and nc ~= '') and core.isatty and core.isatty(1) == true
end

-- Where the orch `opts` names listens (a usage error when the name is invalid).
local function control_where(cmd, opts)
  local where, werr = paths.resolve({ control = opts.control, name = opts.name })
  if not where then
    usage_error(cmd, '%s', werr)
  end
  return where
end

-- Connect to the orch at `where` (in a task); prints why not and returns nil.
local function control_connect(where, opts)
  local client, msg, code = client_mod.connect(where)
  if client then
    return client, where
  end
  if code == 'ENOENT' or code == 'ECONNREFUSED' then
    local what = where.name and ("no orch named '%s' is running"):format(where.name)
      or 'no orch is running there'
    msg = ('%s (no control socket at %s)'):format(what, where.path)
    if where.default and not opts.name then
      msg = msg .. '; the name defaults to that of the current directory'
    end
    if where.default then
      local names = client_mod.running(where.dir)
      if #names > 0 then
        msg = msg .. ('; running: %s (use --name)'):format(table.concat(names, ', '))
      end
    end
  elseif code == 'EACCES' then
    msg = ('permission denied on %s: only the user running that orch, or root, may control it')
      :format(where.path)
  end
  err('orch: ' .. msg .. '\n')
  return nil
end

-- The next object (yields); prints a protocol failure and returns nil.
local function control_recv(client)
  local obj, why = client:recv()
  local line = why
  if not obj then
    if why == 'eof' then
      why = 'orch closed the connection'
    end
    err('orch: ' .. why .. '\n')
    return nil
  end
  if obj.ok == false then
    local e = type(obj.error) == 'table' and obj.error or {}
    err(('orch: %s\n'):format(tostring(e.message or e.code or 'request failed')))
    return nil
  end
  return obj, line
end

-- Connect to the orch `opts` names, send `req` and read the first reply, as the root task;
-- then `handle(client, reply, raw)` (which closes the client) gives the exit status. 1 when orch
-- cannot be reached or refuses (said on stderr).
local function request(cmd, opts, req, handle)
  local where = control_where(cmd, opts)
  return run_root(function()
    local client = control_connect(where, opts)
    if not client then
      return 1
    end
    client:send(req)
    local reply, raw = control_recv(client)
    if not reply then
      client:close()
      return 1
    end
    return handle(client, reply, raw)
  end)
end

local function cmd_status(opts, pos)
  if #pos > 1 then
    usage_error('status', "too many arguments: orch status [id]")
  end
  local req = { cmd = 'status', id = pos[1], watch = opts.watch or nil }
  return request('status', opts, req, function(client, reply, raw)
    local color = not opts.json and use_color(opts)
    local broken = false -- stdout is gone (orch status --watch | head)
    local function put(s)
      if not (io.stdout:write(s) and io.stdout:flush()) then
        broken = true
      end
    end
    local function show(obj, received, clear, line)
      if opts.json then
        put(line .. '\n')
        return
      end
      local text = render.status(obj, { color = color, elapsed = core.now() - received })
      if clear then
        text = '\27[H\27[2J' .. text
      end
      put(text)
    end
    if not opts.watch then
      show(reply, core.now(), false, raw)
      client:close()
      return 0
    end
    -- --watch: a new table on every change; on a terminal, redrawn in place every second
    local tty = not opts.json and core.isatty and core.isatty(1) == true
    local last, received = reply, core.now()
    show(reply, received, tty, raw)
    local ticker
    if tty then
      ticker = sched.spawn(function()
        while true do
          sched.sleep(1000)
          show(last, received, true)
        end
      end)
    end
    while not broken do
      local obj, why = client:recv()
      if not obj then
        if ticker then
          ticker:cancel()
        end
        client:close()
        if why == 'eof' then
          err('orch: the orch has stopped\n')
          return 0
        end
        err('orch: ' .. why .. '\n')
        return 1
      end
      last, received = obj, core.now()
      if not tty and not opts.json then
        put('\n')
      end
      show(obj, received, tty, why)
    end
    if ticker then
      ticker:cancel()
    end
    client:close()
    return 0
  end)
end

local SINCE_UNITS = { s = 1, m = 60, h = 3600, d = 86400 }

--- The time `--since` names, in seconds since the epoch: an ISO 8601 UTC time
-- (`2026-12-03T18:00:00Z`, fraction optional), `@SECONDS`, or a duration before `now`
-- (`90s`, `10m`, `2h`, `1d`; a plain number is seconds). nil when it is none of them.
function M.parse_since(v, now)
  if type(v) ~= 'string' then
    return nil
  end
  local t = time.parse_iso(v)
  if t then
    return t
  end
  local epoch = v:match('^@(%d+%.?%d*)$')
  if epoch then
    return tonumber(epoch)
  end
  local n, unit = v:match('^(%d+%.?%d*)([smhd]?)$')
  if n then
    return now - tonumber(n) * SINCE_UNITS[unit == '' and 's' or unit]
  end
  return nil
end

-- `orch logs --reopen`: the orch reopens its log files (as on SIGUSR2).
local function cmd_reopen(opts, pos)
  if #pos > 0 or opts.lines or opts.follow or opts.since then
    usage_error('logs', '--reopen takes no entry ids and no other option but --json')
  end
  return request('logs', opts, { cmd = 'reopen' }, function(client, _, raw)
    client:close()
    out(opts.json and (raw .. '\n') or 'log files reopened\n')
    return 0
  end)
end

local function cmd_logs(opts, pos)
  if opts.reopen then
    return cmd_reopen(opts, pos)
  end
  local since
  if opts.since ~= nil then
    since = M.parse_since(opts.since, core.time())
    if not since then
      usage_error('logs', "--since takes a time (2026-12-03T18:00:00Z, @EPOCH) or a duration "
        .. "before now (30s, 10m, 2h, 1d), got '%s'", tostring(opts.since))
    end
  end
  local n = opts.lines
  if n == nil and since then
    n = 'all' -- everything since then, unless -n says otherwise
  end
  if n ~= nil then
    if n == 'all' then
      n = 1000000000
    else
      n = tonumber(n)
      if not n or n < 0 or n ~= math.floor(n) then
        usage_error('logs', "-n takes a count of lines, got '%s'", tostring(opts.lines))
      end
      n = math.tointeger(n)
    end
  end
  local req = { cmd = 'logs', ids = #pos > 0 and pos or nil, n = n, follow = opts.follow or nil,
    since = since }
  return request('logs', opts, req, function(client, head)
    local ts
    local broken = false
    local writer = log.new({
      format = opts.json and 'json' or 'text',
      color = not opts.json and use_color(opts),
      timestamps = opts.timestamps,
      clock = function()
        return ts or core.time()
      end,
      ids = head.entries or {},
      out = function(s)
        if not io.stdout:write(s) or not io.stdout:flush() then
          broken = true
        end
      end,
    })
    while not broken do
      local obj, why = client:recv()
      if not obj then
        client:close()
        if why == 'eof' and opts.follow then
          return 0 -- orch has stopped
        end
        err('orch: ' .. (why == 'eof' and 'orch closed the connection' or why) .. '\n')
        return 1
      end
      if obj.type == 'end' then
        break
      elseif obj.type == 'line' and type(obj.id) == 'string' and type(obj.line) == 'string' then
        ts = time.parse_iso(obj.ts)
        writer:lines(obj.id, obj.stream == 'stderr' and 'stderr' or 'stdout', { obj.line })
      end
    end
    client:close()
    return 0
  end)
end

local function one_id(cmd, pos)
  if #pos == 0 then
    usage_error(cmd, 'missing the entry id: orch %s ID', cmd)
  elseif #pos > 1 then
    usage_error(cmd, 'too many arguments: orch %s ID', cmd)
  end
  return pos[1]
end

-- stop, start and restart.
local function cmd_action(cmd)
  return function(opts, pos)
    local id = one_id(cmd, pos)
    return request(cmd, opts, { cmd = cmd, id = id }, function(client, reply, raw)
      client:close()
      if opts.json then
        out(raw .. '\n')
        return 0
      end
      local ids = type(reply.ids) == 'table' and reply.ids or {}
      local list = table.concat(ids, ', ')
      if cmd == 'stop' then
        out(('stopped: %s\n'):format(list))
      elseif #ids == 0 then
        out(('nothing to start: %s and what requires it are not stopped\n'):format(id))
      elseif cmd == 'start' then
        out(('starting: %s\n'):format(list))
      else
        out(('restarting: %s\n'):format(list))
      end
      return 0
    end)
  end
end

local function cmd_signal(opts, pos)
  if #pos ~= 2 then
    usage_error('signal', 'expected an entry id and a signal: orch signal ID SIGNAL')
  end
  local id, sig = pos[1], protocol.signal_name(pos[2])
  if not sig then
    usage_error('signal', "unknown signal '%s'", pos[2])
  end
  local req = { cmd = 'signal', id = id, signal = sig }
  return request('signal', opts, req, function(client, reply, raw)
    client:close()
    if opts.json then
      out(raw .. '\n')
    else
      out(('sent %s to %s (pid %s)\n'):format(sig, id, tostring(reply.pid)))
    end
    return 0
  end)
end

local function cmd_shutdown(opts, pos)
  if #pos > 0 then
    usage_error('shutdown', 'orch shutdown takes no arguments')
  end
  return request('shutdown', opts, { cmd = 'shutdown' }, function(client, _, raw)
    if opts.json then
      out(raw .. '\n')
    end
    if opts['no-wait'] then
      client:close()
      return 0
    end
    repeat -- the connection ends when orch has stopped
      local obj = client:recv()
    until not obj
    client:close()
    if not opts.json then
      out('stopped\n')
    end
    return 0
  end)
end

local function cmd_reload(opts, pos)
  if #pos > 0 then
    usage_error('reload', 'orch reload takes no arguments')
  end
  local req = { cmd = 'reload', full = opts.full or nil }
  return request('reload', opts, req, function(client, reply, raw)
    client:close()
    if opts.json then
      out(raw .. '\n')
      return 0
    end
    if reply.full then
      out(('reloaded (full): %s\n'):format(tostring(reply.message)))
      return 0
    end
    local why = type(reply.why) == 'table' and reply.why or {}
    local function list(name, ids, with_why)
      ids = type(ids) == 'table' and ids or {}
      if #ids == 0 then
        return
      end
      local items = {}
      for i, id in ipairs(ids) do
        items[i] = with_why and why[id] and ('%s (%s)'):format(id, why[id]) or id
      end
      out(('%s: %s\n'):format(name, table.concat(items, ', ')))
    end
    out(('reloaded: kept %d\n'):format(type(reply.kept) == 'table' and #reply.kept or 0))
    list('restarted', reply.restarted, true)
    list('added', reply.added)
    list('removed', reply.removed)
    list('signalled (reloadOnChange)', reply.signalled, true)
    return 0
  end)
end

local CONTROL_COMMANDS = {
  status = cmd_status,
  logs = cmd_logs,
  stop = cmd_action('stop'),
  start = cmd_action('start'),
  restart = cmd_action('restart'),
  signal = cmd_signal,
  shutdown = cmd_shutdown,
  reload = cmd_reload,
}

M.commands = CONTROL_COMMANDS

--- Connect to the orch at `where` (in a task): the client, or nil once why not is printed.
M.control_connect = control_connect

--- Send `req` to the orch `opts` names (`--control`, `--name`) and hand the first reply to
-- `handle(client, reply, raw)`, which closes the client and gives the exit status (1, said on
-- stderr, when orch cannot be reached or refuses).
M.request = request

return M
