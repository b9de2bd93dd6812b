-- Fault: orch SIGKILLed while daemons run in a subcontainer (one of them leaves a setsid
-- grandchild). Nothing may be left: no process, no mount in /proc/mounts naming the data
-- directory, nothing under its `.mnt` (the overlay's upper and work directories live on a tmpfs
-- in the leader's private mount namespace). Contained (SIGKILL of the relay, the pid users
-- see) and not (--no-contain: PR_SET_PDEATHSIG and bwrap --die-with-parent). Real build/bin/orch.
local F = require 'spec.support.faults'
local images = require 'spec.support.images'
local R = F.R

local session = R.session()

local SCRIPT = [[
local orch = require 'orch'
local READY = { display = false, fn = function()
  return { result = 'success', message = 'ok' }
end }
return orch.setupMain(function(ctx)
  local sub = orch.SubContainer.of(ctx.effects, { imageId = 'main' },
    orch.Mounts.of():mountVolume{ volumeId = 'v', mountpoint = '/data' }, 'k')
  return orch.Daemons.of{ effects = ctx.effects }
    :addDaemon('d', { subcontainer = sub, exec = { command = 'echo inside-up; exec sleep %s' },
      ready = READY, requires = {} })
    :addDaemon('e', { subcontainer = sub, exec = { command = 'setsid sleep %s & exec sleep %s' },
      ready = READY, requires = {} })
    :addDaemon('i', { subcontainer = sub, exec = { runAsInit = true,
      command = 'echo init-pid=$$; exec sleep %s' }, ready = READY, requires = {} })
end)
]]

local function mounts_naming(dir)
  local out = {}
  for line in io.lines('/proc/mounts') do
    if line:find(dir, 1, true) then
      out[#out + 1] = line
    end
  end
  return out
end

describe('faults: SIGKILL of orch with subcontainers #integration', function()
  after_each(session.cleanup)

  if not F.is_root() or not images.available() or not os.execute('command -v bwrap >/dev/null')
  then
    it('needs root, bubblewrap and busybox-static', function()
      pending('not available')
    end)
    return
  end

  for _, case in ipairs({ { 'contained, SIGKILL of the relay' }, { 'uncontained',
    '--no-contain' } }) do
    it(case[1] .. ': no process, mount or layer is left', function()
      local dir = session.tmpdir()
      local data = dir .. '/data'
      images.busybox(data, 'main', {})
      local m1, m2, m3, m4 = F.unique(), F.unique(), F.unique(), F.unique()
      R.write_file(dir .. '/main.lua', SCRIPT:format(m1, m2, m3, m4))
      local args = { 'run', '--data', data }
      args[#args + 1] = case[2]
      args[#args + 1] = dir .. '/main.lua'
      local p = session.start(args)
      p:wait_for('inside%-up', 20000)
      p:wait_for('init%-pid=1\n', 20000) -- runAsInit: PID 1 of a namespace of its own
      local marks = { 'sleep ' .. m1, 'sleep ' .. m2, 'sleep ' .. m3, 'sleep ' .. m4 }
      R.wait_until(function()
        local procs = F.procs()
        for _, m in ipairs(marks) do
          if not F.find(m, procs)[1] then
            return false
          end
        end
        return true
      end, 10000, 'the four sleeps in the subcontainer')
      local before = F.descendants(p.pid)
      os.execute('kill -KILL ' .. p.pid) -- the relay, or orch itself when uncontained
      R.wait_until(function()
        for _, d in ipairs(before) do
          if R.alive(d.pid) then -- a zombie waiting for the host's init is gone
            return false
          end
        end
        return true
      end, 3000, 'every process orch started (bwrap, orch-init, the sleeps) to be gone')
      for _, m in ipairs(marks) do
        assert.are.same({}, F.find(m))
      end
      assert.are.same({}, mounts_naming(data))
      assert.are.equal('', R.capture('ls -A ' .. R.quote(data .. '/.mnt')))
      assert.is_nil(io.open(data .. '/images/main/rootfs/written', 'r'))
    end)
  end
end)

describe('subcontainers without root #integration', function()
  after_each(session.cleanup)
  if not F.is_root() or not images.available()
    or not os.execute('setpriv --reuid=65534 --regid=65534 --clear-groups unshare -Ur true')
  then
    it('needs root to drop to nobody, busybox-static and unprivileged user namespaces',
      function()
        pending('not available')
      end)
    return
  end

  it('run in a user namespace (uid 0 inside is the user); SIGKILL leaves nothing', function()
    local dir = session.tmpdir()
    local data = dir .. '/data'
    images.busybox(data, 'main', { config = { user = 'root' } })
    local m1, m2, m3, m4 = F.unique(), F.unique(), F.unique(), F.unique()
    R.write_file(dir .. '/main.lua', SCRIPT:format(m1, m2, m3, m4))
    -- the user's own files, as a rootless `orch image import` leaves them
    os.execute('chown -R 65534:65534 ' .. R.quote(dir))
    local p = session.start({ 'run', '--data', data, dir .. '/main.lua' }, {
      prefix = 'setpriv --reuid=65534 --regid=65534 --clear-groups' })
    p:wait_for('inside%-up', 20000)
    p:wait_for('init%-pid=1\n', 20000) -- runAsInit: PID 1 of a namespace of its own
    local marks = { 'sleep ' .. m1, 'sleep ' .. m2, 'sleep ' .. m3, 'sleep ' .. m4 }
    R.wait_until(function()
      local procs = F.procs()
      for _, m in ipairs(marks) do
        if not F.find(m, procs)[1] then
          return false
        end
      end
      return true
    end, 10000, 'the four sleeps in the subcontainer')
    local pid = F.find('sleep ' .. m1)[1]
    assert.are.equal('65534', R.capture('ps -o uid= -p ' .. pid):match('%d+'))
    local before = F.descendants(p.pid)
    os.execute('kill -KILL ' .. p.pid)
    R.wait_until(function()
      for _, d in ipairs(before) do
        if R.alive(d.pid) then
          return false
        end
      end
      return true
    end, 3000, 'every process orch started to be gone')
    for _, m in ipairs(marks) do
      assert.are.same({}, F.find(m))
    end
    assert.are.same({}, mounts_naming(data))
    assert.are.equal('', R.capture('ls -A ' .. R.quote(data .. '/.mnt')))
  end)
end)
