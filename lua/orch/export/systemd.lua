--- `orch export systemd`: one service unit per entry and a target that wants them all.
-- `requires` becomes `Requires=`/`After=` (`Wants=` for an `ignore` edge, plus `PartOf=` for a
-- `restart` edge); a oneshot is `Type=oneshot` with `RemainAfterExit=yes`; `ready.notify` is
-- `Type=notify`; any other readiness check is an `ExecStartPost=orch probe --wait ...` so that
-- the unit counts as started, and its dependents start, only once the check passes.
-- @module orch.export.systemd
local names = require 'orch.export.names'
local common = require 'orch.export.common'
local datadir = require 'orch.runtime.datadir'
local passwd = require 'orch.subcontainer.passwd'

local M = {}

-- One word of a command line, quoted for systemd (specifiers and variables escaped).
local function word(s)
  s = tostring(s)
  local q = s:gsub('\\', '\\\\'):gsub('"', '\\"'):gsub('%%', '%%%%'):gsub('%$', '$$'):gsub('\n',
    '\\n')
  if q == s and s ~= '' and not s:find('[%s;\'"]') then
    return s
  end
  return '"' .. q .. '"'
end

local function command_line(argv)
  local w = {}
  for i, a in ipairs(argv) do
    w[i] = word(a)
  end
  return table.concat(w, ' ')
end

-- `argv[1]` as an absolute path (looked up in PATH now), as systemd wants it.
local function absolute(argv, lookup)
  local first = argv[1]
  if first:find('/', 1, true) then
    return argv
  end
  local path = lookup(first)
  if not path then
    return argv
  end
  local out = { path }
  table.move(argv, 2, #argv, 2, out)
  return out
end

local function which(name)
  for dir in (os.getenv('PATH') or '/usr/bin:/bin'):gmatch('[^:]+') do
    local p = dir .. '/' .. name
    local f = io.open(p, 'r')
    if f then
      f:close()
      return p
    end
  end
  return nil
end

local function abspath(p, cwd)
  if p:sub(1, 1) == '/' then
    return p
  end
  return (cwd .. '/' .. p):gsub('/%./', '/'):gsub('/%.$', '')
end

local function seconds_text(ms)
  if ms % 1000 == 0 then
    return tostring(ms // 1000)
  end
  return ms .. 'ms'
end

local function env_line(k, v)
  return 'Environment=' .. word(k .. '=' .. tostring(v))
end

-- `argv[1]` looked up in the image's PATH under `rootfs` (a name stays a name when absent).
local function in_image(argv, rootfs, path)
  if argv[1]:find('/', 1, true) then
    return argv
  end
  for dir in (path or '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin')
    :gmatch('[^:]+') do
    local f = io.open(rootfs .. dir .. '/' .. argv[1], 'r')
    if f then
      f:close()
      local out = { dir .. '/' .. argv[1] }
      table.move(argv, 2, #argv, 2, out)
      return out
    end
  end
  return argv
end

-- A subcontainer (an orch.SubContainer: orch runs it in its image) as a unit that runs in the
-- image's root filesystem of the data directory, read-only (orch gives each subcontainer a
-- copy-on-write layer), with its mounts as bind mounts. Returns the image config (or nil) and
-- the lines; the losses go to `loss`.
local function sandbox(e, opts, loss)
  local lines = {}
  local img = e.image
  if not opts.data then
    loss:add(e.id, 'subcontainer', 'no data directory (--data): the unit runs on the host, '
      .. 'not in the image ' .. tostring(img.id))
    return nil, lines
  end
  local dd = datadir.open(opts.data)
  local rootfs = dd:image_rootfs(img.id)
  local cfg, why = dd:image_config(img.id)
  if not cfg then
    loss:add(e.id, 'subcontainer', ("%s: the image's user, workdir, env and entrypoint are "
      .. 'unknown'):format(why))
  end
  lines[#lines + 1] = 'RootDirectory=' .. rootfs
  lines[#lines + 1] = 'MountAPIVFS=yes'
  lines[#lines + 1] = 'ReadOnlyPaths=/'
  lines[#lines + 1] = 'TemporaryFileSystem=/tmp /run'
  lines[#lines + 1] = 'BindReadOnlyPaths=/etc/resolv.conf /etc/hosts'
  loss:add(e.id, 'subcontainer', "the image's root filesystem is read-only (orch gives the "
    .. 'subcontainer a copy-on-write layer); /tmp and /run are empty tmpfs')
  for _, m in ipairs(img.mounts) do
    local src
    if m.type == 'volume' and m.volumeId then
      src = dd:volume(m.volumeId)
    elseif m.type == 'assets' then
      src = dd:assets()
    elseif m.type == 'backup' then
      src = dd:backups()
    end
    if not src then
      loss:add(e.id, 'subcontainer.mounts', ('the %s mount at %s is not set up'):format(
        tostring(m.type), tostring(m.mountpoint)))
    else
      if m.subpath then
        src = src .. '/' .. m.subpath:gsub('^/+', '')
      end
      local spec = word(src .. ':' .. m.mountpoint)
      if m.readonly then
        lines[#lines + 1] = 'BindReadOnlyPaths=' .. spec
      else
        lines[#lines + 1] = 'BindPaths=' .. spec
        lines[#lines + 1] = 'ReadWritePaths=' .. m.mountpoint
      end
    end
  end
  if img.sharedRun then
    loss:add(e.id, 'subcontainer.sharedRun', 'no /run shared between units')
  end
  return cfg, lines
end

--- Render the model: a list of `{name, text}` files, or nil and an error.
-- `opts`: `name`, `script` (main.lua), `args`, `orch` (the binary), `cwd`, `lookup(name)`.
function M.render(model, opts, loss)
  local app = names.systemd(opts.name or 'orch')
  local ids = {}
  for i, e in ipairs(model.entries) do
    ids[i] = e.id
  end
  local unames, err = names.map(ids, function(id)
    return app .. '-' .. names.systemd(id) .. '.service'
  end, 'systemd unit name')
  if not unames then
    return nil, err
  end
  local lookup = opts.lookup or which
  local cwd = opts.cwd or os.getenv('PWD') or '/'
  local orch = opts.orch or '/usr/bin/orch'
  local script = abspath(opts.script or 'main.lua', cwd)
  local files = {}
  local target = app .. '.target'
  for _, e in ipairs(model.entries) do
    local unit, service = {}, {}
    local function u(s)
      unit[#unit + 1] = s
    end
    local function s(line)
      service[#service + 1] = line
    end
    u('Description=' .. (e.ready and type(e.ready.display) == 'string' and e.ready.display
      or e.id) .. ' (orch entry ' .. e.id .. ')')
    u('PartOf=' .. target)
    for _, r in ipairs(e.requires) do
      local dep = model.by_id[r.id]
      local name = unames[r.id]
      if r.onUnhealthy == 'ignore' then
        u('Wants=' .. name)
        loss:add(e.id, 'requires.' .. r.id, ("onUnhealthy = 'ignore': Wants= starts %s even if "
          .. '%s fails to start'):format(e.id, r.id))
      else
        u('Requires=' .. name)
        if r.onUnhealthy == 'restart' then
          u('PartOf=' .. name)
        end
        if dep.ready and dep.ready.probe then
          loss:add(e.id, 'requires.' .. r.id, ("onUnhealthy = '%s': systemd checks %s's "
            .. 'readiness only at its start, not later'):format(r.onUnhealthy, r.id))
        end
      end
      if r.after and dep.kind ~= 'oneshot' then
        loss:add(e.id, 'requires.' .. r.id .. '.after', ('the %d ms of tolerated outage have '
          .. 'no equivalent'):format(r.after))
      end
      u('After=' .. name)
    end
    local x = e.exec
    local probe_cmd
    if e.ready and e.ready.probe then
      local argv = { orch, 'probe', '--wait', script, e.id }
      if opts.probeData then
        table.insert(argv, 4, '--data=' .. opts.probeData)
      end
      if #(opts.args or {}) > 0 then
        argv[#argv + 1] = '--'
        table.move(opts.args, 1, #opts.args, #argv + 1, argv)
      end
      probe_cmd = command_line(argv)
    end
    if e.kind == 'health' then
      s('Type=oneshot')
      s('RemainAfterExit=yes')
      s('ExecStart=' .. (probe_cmd or '/bin/true'))
      loss:add(e.id, 'kind', 'a health check is checked once, at start, by orch probe')
    else
      common.common_losses(e, loss)
      local cfg, box
      if e.image and e.image.provider then
        cfg, box = sandbox(e, opts, loss)
      end
      local image_env = {}
      for _, kv in ipairs(cfg and cfg.env or {}) do
        local k, v = kv:match('^([^=]+)=(.*)$')
        if k then
          image_env[k] = v
        end
      end
      if e.kind == 'oneshot' then
        s('Type=oneshot')
        s('RemainAfterExit=yes')
      elseif e.ready and e.ready.notify then
        s('Type=notify')
        s('NotifyAccess=all')
        if e.ready.watchdog then
          s('WatchdogSec=' .. seconds_text(e.ready.watchdog))
        end
      else
        s('Type=exec')
      end
      local argv = x.argv
      if not argv and x.entrypoint and cfg then
        argv = {}
        for _, a in ipairs(cfg.entrypoint or {}) do
          argv[#argv + 1] = a
        end
        for _, a in ipairs(x.override or cfg.cmd or {}) do
          argv[#argv + 1] = a
        end
        argv = #argv > 0 and argv or nil
      end
      local rootfs = box and opts.data and datadir.open(opts.data):image_rootfs(e.image.id)
      if not argv then
        if not x.fn then
          loss:add(e.id, 'exec.command', "useEntrypoint() without the image's entrypoint: the "
            .. 'unit fails at start, saying so')
        end
        -- loud, never a silent success: the unit fails and its log says why
        argv = { '/bin/sh', '-c', ("echo 'orch export: %s has no command on the host' >&2; "
          .. 'exit 1'):format(e.id) }
      end
      if rootfs then
        s('ExecStart=' .. command_line(in_image(argv, rootfs, (image_env.PATH or
          (x.env and x.env.PATH)))))
      else
        s('ExecStart=' .. command_line(absolute(argv, lookup)))
      end
      if probe_cmd then
        -- '+': outside the unit's sandbox, where orch is
        s('ExecStartPost=' .. (box and '+' or '') .. probe_cmd)
        s('TimeoutStartSec=infinity')
      end
      for _, line in ipairs(box or {}) do
        s(line)
      end
      if e.ready and e.ready.restartAfter then
        loss:add(e.id, 'ready.restartAfter', 'systemd does not restart a unit whose check '
          .. 'fails')
      end
      local env, keys = {}, {}
      for _, src in ipairs({ image_env, e.image and e.image.env or {}, x.env or {} }) do
        for k, v in pairs(src) do
          if env[k] == nil then
            keys[#keys + 1] = k
          end
          env[k] = v
        end
      end
      table.sort(keys)
      for _, k in ipairs(keys) do
        if env[k] == false then
          s('UnsetEnvironment=' .. k)
        else
          s(env_line(k, env[k]))
        end
      end
      if x.envFile then
        s('EnvironmentFile=' .. abspath(x.envFile, cwd))
      end
      if rootfs then
        s('WorkingDirectory=' .. (x.cwd or (cfg and cfg.workdir) or '/'))
        -- the image's user, resolved in its own /etc/passwd (never the host's)
        local user = x.user or (cfg and cfg.user) or 'root'
        local pw, why = passwd.resolve(rootfs, user)
        if pw then
          s('User=' .. pw.uid)
          s('Group=' .. pw.gid)
        else
          loss:add(e.id, 'exec.user', why .. ': the unit runs as root')
        end
      else
        local wd = x.cwd or (e.image and e.image.workdir) or cwd
        s('WorkingDirectory=' .. abspath(wd, cwd))
        local user = x.user or (e.image and e.image.user)
        if user ~= nil then
          local uid, gid = tostring(user):match('^(%d+):(%d+)$')
          s('User=' .. (uid or tostring(user)))
          if gid then
            s('Group=' .. gid)
          end
        end
      end
      if x.stopCommand then
        local c = x.stopCommand
        if type(c) == 'string' then
          c = { '/bin/sh', '-c', c }
        end
        s('ExecStop=' .. command_line(absolute(c, lookup)))
        loss:add(e.id, 'exec.stopCommand', 'what ExecStop= leaves running gets SIGTERM before '
          .. 'SIGKILL')
      else
        s('KillSignal=' .. x.stopSignal)
      end
      s('KillMode=control-group')
      s('TimeoutStopSec=' .. seconds_text(x.sigtermTimeout))
      local restart = ({ always = 'always', ['on-failure'] = 'on-failure',
        never = 'no' })[x.restart]
      if e.kind == 'oneshot' and restart == 'always' then
        restart = 'on-failure'
      end
      s('Restart=' .. restart)
      local b = x.backoff
      s('RestartSec=' .. seconds_text(b and b.initial or 0))
      if x.maxRestarts then
        u('StartLimitBurst=' .. (x.maxRestarts + 1))
        u('StartLimitIntervalSec=' .. (x.restartWindow and seconds_text(x.restartWindow)
          or 'infinity'))
      else
        u('StartLimitIntervalSec=0')
      end
      if x.runAsInit then
        loss:add(e.id, 'exec.runAsInit', 'the unit runs in the host PID namespace')
      end
      local l = x.limits
      if l then
        if l.memory then
          s('MemoryMax=' .. l.memory)
          s('MemorySwapMax=0')
        end
        if l.cpu then
          s(('CPUQuota=%d%%'):format(math.ceil(l.cpu * 100)))
        end
        if l.pids then
          s('TasksMax=' .. l.pids)
        end
        if l.nofile then
          s('LimitNOFILE=' .. l.nofile)
        end
        if l.core then
          s('LimitCORE=' .. l.core)
        end
      end
    end
    local text = ('# orch export systemd: entry %s of %s\n[Unit]\n%s\n\n[Service]\n%s\n\n'
      .. '[Install]\nWantedBy=%s\n'):format(e.id, opts.script or 'main.lua',
        table.concat(unit, '\n'), table.concat(service, '\n'), target)
    files[#files + 1] = { name = unames[e.id], text = text }
  end
  local wants = {}
  for _, e in ipairs(model.entries) do
    wants[#wants + 1] = unames[e.id]
  end
  files[#files + 1] = { name = target, text = ('# orch export systemd: %s\n[Unit]\n'
    .. 'Description=%s (orch export)\nWants=%s\n\n[Install]\nWantedBy=multi-user.target\n')
    :format(opts.script or 'main.lua', opts.name or app, table.concat(wants, ' ')) }
  return files
end

M.word = word

return M
