-- Subcontainers with real processes (#integration, as root): the image's root filesystem with
-- its own mount, PID, UTS and IPC namespaces (orch.subcontainer: bubblewrap + orch-init as the
-- leader, processes joined by spawn_ns.c). Images are busybox-static roots made offline
-- (spec/support/images.lua). Pending when not root or without bwrap or busybox-static.
local H = require 'spec.support.helpers'
local images = require 'spec.support.images'

local function can_run()
  local core = require 'orch.core'
  return core.getuid() == 0 and images.available() and os.execute('command -v bwrap >/dev/null')
end

-- A fresh data directory with the image `main` (user app, workdir /home/app, an env var and a
-- file only the image has).
local function data_dir()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute('mkdir -p ' .. dir))
  images.busybox(dir, 'main', { config = { env = { 'FROM_IMAGE=yes', 'PATH=/bin' },
    user = 'app', workdir = '/home/app', entrypoint = { 'sh', '-c' },
    cmd = { 'echo from-entrypoint; sleep 1000' } },
    files = { ['/etc/only-in-image'] = 'image-file\n' } })
  return dir
end

local function read(path)
  local f = io.open(path, 'r')
  if not f then
    return nil
  end
  local s = f:read('a')
  f:close()
  return s
end

-- The lines of /proc/mounts naming `dir`.
local function mounts_of(dir)
  local out = {}
  for line in (read('/proc/mounts') or ''):gmatch('[^\n]+') do
    if line:find(dir, 1, true) then
      out[#out + 1] = line
    end
  end
  return out
end

local READY = { display = false, fn = function()
  return { result = 'success', message = 'ok' }
end }

local function output_of(fx, id)
  local t = {}
  for _, o in ipairs(fx.outputs) do
    if o.id == id and o.chunk then
      t[#t + 1] = o.chunk
    end
  end
  return table.concat(t)
end

insulate('SubContainer #integration', function()
  if not can_run() then
    pending('needs root, bubblewrap and busybox-static')
    return
  end
  local orch = H.real()
  local Daemons, SubContainer, Mounts = orch.Daemons, orch.SubContainer, orch.Mounts
  local fx = H.effects_per_test()
  local data

  before_each(function()
    data = data_dir()
    fx.dataDir = nil
  end)
  after_each(function()
    os.execute('rm -rf ' .. data)
  end)

  local function effects()
    return setmetatable({ dataDir = data }, { __index = fx })
  end

  it('a daemon sees the image and not the host; its pid is small, 1 with runAsInit', function()
    local sub = SubContainer.of(effects(), { imageId = 'main' }, nil, 'app')
    local chain = Daemons.of{ effects = fx }
      :addDaemon('plain', { subcontainer = sub, exec = { command = { 'sh', '-c',
        'cat /etc/only-in-image; test -e /etc/debian_version && echo HOST; echo pid=$$; '
          .. 'echo env=$FROM_IMAGE; exec sleep 1000' } }, ready = READY, requires = {} })
      :addDaemon('init', { subcontainer = sub, exec = { runAsInit = true, command = { 'sh',
        '-c', 'echo pid=$$; trap "exit 0" TERM; while true; do sleep 1; done' } },
        ready = READY, requires = {} })
    H.run(function()
      chain:build()
      H.wait_until(function()
        return output_of(fx, 'plain'):find('env=') and output_of(fx, 'init'):find('pid=')
      end, 20000, 20, 'both daemons printed')
      chain:term()
    end, 40000)
    local out = output_of(fx, 'plain')
    assert.truthy(out:find('image-file', 1, true), out)
    assert.falsy(out:find('HOST', 1, true), out)
    assert.truthy(out:find('env=yes', 1, true), out)
    local pid = tonumber(out:match('pid=(%d+)'))
    assert.is_true(pid > 1 and pid < 20, out)
    assert.are.equal('1', output_of(fx, 'init'):match('pid=(%d+)'))
    assert.are.equal(1, sub.destroyCount)
  end)

  it('writes go to the upper layer and vanish on destroy; the image is never written', function()
    H.run(function()
      local sub = SubContainer.of(effects(), { imageId = 'main' })
      local r = sub:exec({ 'sh', '-c', 'echo x > /written && echo x > /etc/only-in-image' }, {
        user = 'root' })
      assert.are.equal(0, r.exitCode, r.stderr)
      assert.are.equal('x\n', read(sub:subpath('/written')))
      assert.is_nil(read(data .. '/images/main/rootfs/written'))
      assert.are.equal('image-file\n', read(data .. '/images/main/rootfs/etc/only-in-image'))
      sub:destroy()
      local again = SubContainer.of(effects(), { imageId = 'main' })
      r = again:exec({ 'sh', '-c', 'cat /written; cat /etc/only-in-image' })
      assert.are.equal('image-file\n', r.stdout)
      again:destroy()
    end, 30000)
    assert.are.same({}, mounts_of(data))
  end)

  it('a volume persists across subcontainers; a read-only mount refuses writes', function()
    local mounts = Mounts.of()
      :mountVolume{ volumeId = 'main', mountpoint = '/data' }
      :mountVolume{ volumeId = 'main', subpath = 'ro', mountpoint = '/ro', readonly = true }
      :mountVolume{ volumeId = 'cfg', subpath = 'app.conf', mountpoint = '/etc/app.conf',
        filetype = 'file' }
    H.run(function()
      local sub = SubContainer.of(effects(), { imageId = 'main' }, mounts)
      local r = sub:exec({ 'sh', '-c', 'echo kept > /data/f; echo no > /ro/f; '
        .. 'echo conf > /etc/app.conf; echo rc=$?' }, { user = 'root' })
      assert.truthy(r.stderr:find('Read%-only file system'), r.stderr)
      assert.truthy(r.stdout:find('rc=0', 1, true), r.stdout)
      sub:destroy()
      local again = SubContainer.of(effects(), { imageId = 'main' }, mounts)
      r = again:exec({ 'cat', '/data/f', '/etc/app.conf' })
      assert.are.equal('kept\nconf\n', r.stdout)
      again:destroy()
    end, 30000)
    assert.are.equal('kept\n', read(data .. '/volumes/main/f'))
    assert.is_nil(read(data .. '/volumes/main/ro/f'))
  end)

  it('exec returns output and exit code, and a timeout kills it', function()
    H.run(function()
      local sub = SubContainer.of(effects(), { imageId = 'main' })
      local r = sub:exec({ 'sh', '-c', 'echo out; echo err >&2; exit 3' })
      assert.are.same({ exitCode = 3, stdout = 'out\n', stderr = 'err\n' }, r)
      local t0 = orch.now()
      r = sub:exec({ 'sleep', '30' }, {}, 300)
      assert.are.equal('SIGKILL', r.exitSignal)
      assert.is_true(orch.now() - t0 < 5000)
      assert.has_error(function()
        sub:execFail({ 'false' })
      end)
      assert.are.same({ 'sh', '-c', 'echo from-entrypoint; sleep 1000' }, sub:useEntrypoint())
      sub:destroy()
      sub:destroy() -- idempotent
      assert.has_error(function()
        sub:exec({ 'true' })
      end, "subcontainer 'main': it was destroyed")
    end, 30000)
  end)

  it('the image user, groups, HOME and workdir apply; opts override them', function()
    H.run(function()
      local sub = SubContainer.of(effects(), { imageId = 'main' })
      local r = sub:exec({ 'sh', '-c', 'id; pwd; echo $HOME' })
      assert.are.equal('uid=1000(app) gid=1000(app) groups=1000(app),2000(extra)\n'
        .. '/home/app\n/home/app\n', r.stdout)
      r = sub:exec({ 'sh', '-c', 'id -u; pwd' }, { user = 'root', cwd = '/tmp' })
      assert.are.equal('0\n/tmp\n', r.stdout)
      r = sub:exec({ 'sh', '-c', 'grep CapBnd /proc/self/status' }, { user = 'root' })
      assert.are.equal('CapBnd:\t00000000a80425fb\n', r.stdout) -- the OCI default set
      sub:destroy()
    end, 30000)
  end)

  it('runHealthScript runs inside the subcontainer', function()
    H.run(function()
      local sub = SubContainer.of(effects(), { imageId = 'main' })
      local res = orch.healthCheck.runHealthScript({ 'cat', '/etc/only-in-image' }, sub, {})
      assert.are.equal('success', res.result)
      assert.truthy(res.message:find('image-file', 1, true))
      local ok = pcall(orch.healthCheck.runHealthScript, { 'cat', '/nope' }, sub, {})
      assert.is_false(ok)
      sub:destroy()
    end, 30000)
  end)

  it('shutdown destroys a shared subcontainer once, after its last user stopped', function()
    local sub = SubContainer.of(effects(), { imageId = 'main' })
    local seen
    local destroy = sub.destroy
    function sub.destroy(s)
      local alive = {}
      for _, e in ipairs(fx.events(nil, 'spawn')) do
        alive[#alive + 1] = H.pid_alive(e.pid) and e.id or nil
      end
      seen = alive
      return destroy(s)
    end
    local chain = Daemons.of{ effects = fx }
      :addOneshot('init', { subcontainer = sub, exec = { command = 'echo ready > /tmp/x',
        user = 'root' }, requires = {} })
      :addDaemon('a', { subcontainer = sub, exec = { command = 'cat /tmp/x; exec sleep 1000' },
        ready = READY, requires = { 'init' } })
      :addDaemon('b', { subcontainer = sub, exec = { command = 'exec sleep 1000' },
        ready = READY, requires = { 'a' } })
    H.run(function()
      chain:build()
      H.wait_until(function()
        return output_of(fx, 'a'):find('ready') and #fx.events('b', 'spawn') > 0
      end, 20000, 20, 'a and b up')
      chain:term()
    end, 40000)
    assert.are.same({}, seen)
    assert.are.equal(1, sub.destroyCount)
    assert.is_false(sub:running())
  end)

  it('Daemons.dynamic refuses an eager subcontainer and leaves the running set (69)', function()
    local logs
    H.run(function()
      local eager_sub
      local n = 0
      local dyn = Daemons.dynamic(function()
        n = n + 1
        local c = Daemons.of{ effects = fx }
        if n == 1 then
          return c:addDaemon('x', { exec = { command = 'exec sleep 1000' },
            ready = READY, requires = {} })
        end
        eager_sub = SubContainer.eager(effects(), { imageId = 'main' })
        return c:addDaemon('x', { subcontainer = eager_sub, exec = { command = 'sleep 1000' },
          ready = READY, requires = {} })
      end):build({ effects = fx })
      H.wait_until(function()
        return #fx.events('x', 'spawn') == 1
      end, 20000, 20, 'x up')
      local ev = dyn:rerun()
      ev:wait()
      assert.is_false(ev.value[1])
      assert.are.equal(1, #fx.events('x', 'spawn'))
      assert.are.equal(1, eager_sub.destroyCount)
      dyn:term()
    end, 40000)
    logs = {}
    for _, l in ipairs(fx.logs) do
      logs[#logs + 1] = l.message
    end
    assert.truthy(table.concat(logs, '\n'):find(
      "Daemons.dynamic: entry 'x' uses an eager SubContainer", 1, true))
  end)

  it('hold() starts it and keeps it past destroy() until the last release', function()
    H.run(function()
      local sub = SubContainer.of(effects(), { imageId = 'main' })
      assert.is_false(sub:running()) -- lazy
      local release = sub:hold()
      H.wait_until(function()
        return sub:running()
      end, 10000, 20, 'started by hold()')
      local release2 = sub:hold()
      sub:destroy()
      assert.is_true(sub:running())
      assert.has_error(function()
        sub:hold()
      end, "subcontainer 'main': it was destroyed")
      release()
      release() -- idempotent: one release per hold
      assert.is_true(sub:running())
      release2()
      assert.is_false(sub:running())
      assert.are.equal(1, sub.destroyCount)
    end, 30000)
  end)

  it('Daemon.of(effects, sub, exec) with useEntrypoint() runs the image entrypoint', function()
    local sub = SubContainer.of(effects(), { imageId = 'main' })
    local d = orch.Daemon.of(effects(), sub, { command = orch.useEntrypoint() })
    local chain = Daemons.of{ effects = fx }
      :addDaemon('t', { daemon = d, ready = READY, requires = {} })
    H.run(function()
      chain:build()
      H.wait_until(function()
        return output_of(fx, 't'):find('from-entrypoint', 1, true)
      end, 20000, 20, 'the entrypoint ran')
      chain:term()
    end, 40000)
    assert.are.equal(1, sub.destroyCount)
  end)

  it('a rerun that makes the same lazy subcontainer again restarts nothing (65); '
    .. 'other mounts restart the entry', function()
    H.run(function()
      local mountpoint = '/data'
      local made = {}
      local dyn = Daemons.dynamic(function()
        local sub = SubContainer.of(effects(), { imageId = 'main' },
          Mounts.of():mountVolume{ volumeId = 'v', mountpoint = mountpoint })
        made[#made + 1] = sub
        return Daemons.of{ effects = fx }:addDaemon('x', { subcontainer = sub,
          exec = { command = 'exec sleep 1000' }, ready = READY, requires = {} })
      end):build({ effects = fx })
      H.wait_until(function()
        return #fx.events('x', 'spawn') == 1
      end, 20000, 20, 'x up')
      local ev = dyn:rerun()
      ev:wait()
      assert.is_true(ev.value[1])
      assert.are.equal(1, #fx.events('x', 'spawn'))
      assert.is_false(made[2]:running()) -- never started
      mountpoint = '/elsewhere'
      ev = dyn:rerun()
      ev:wait()
      H.wait_until(function()
        return #fx.events('x', 'spawn') == 2
      end, 20000, 20, 'x restarted')
      assert.are.equal(1, made[1].destroyCount) -- the old one, once its entry stopped
      assert.is_true(made[3]:running())
      dyn:term()
    end, 40000)
  end)
end)
