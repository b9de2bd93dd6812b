-- core.contain(): orch in a PID namespace of its own, so a SIGKILL of orch takes everything.
local core = require 'orch.core'
local process = require 'orch.runtime.process'
local wait = require 'spec.support.wait'

-- procps deadlocks with libasan preloaded (`make sanitize`): run pgrep without it.
local NO_PRELOAD = { env = { LD_PRELOAD = false } }

local function count_marker()
  local r = process.exec({ 'pgrep', '-f', '^sleep 4243' }, NO_PRELOAD)
  local n = 0
  for _ in r.stdout:gmatch('%d+') do
    n = n + 1
  end
  return n
end

local function start()
  local out = {}
  local relay = assert(process.spawn({ 'lua5.4', 'spec/fixtures/contain/contained.lua' }, {
    -- make sanitize: libasan again for the core (spec/c/unpreload.c)
    env = { LD_PRELOAD = os.getenv('ORCH_ASAN_PRELOAD') },
    stdout = function(c)
      out[#out + 1] = c
    end,
  }))
  local ok, err = pcall(wait.wait_until, function()
    return table.concat(out):match('ready') and count_marker() == 1
  end, 5000, 'the contained orchestrator and its grandchild')
  if not ok then
    relay:kill('SIGKILL') -- its contained child dies with it (PDEATHSIG)
    error(err .. '; output: ' .. table.concat(out), 0)
  end
  return relay, out
end

describe('core.contain', function()
  if core.getuid() ~= 0 then
    it('needs root for a PID namespace', function()
      pending('not root: core.contain() returns EPERM here')
    end)
    return
  end

  it('takes every descendant with it when the relay is SIGKILLed', function()
    wait.run(function()
      local relay = start()
      core.kill(relay:pid(), 'SIGKILL')
      relay:wait(2000)
      wait.wait_until(function()
        return count_marker() == 0
      end, 1000, 'the setsid grandchild to be gone within 1 s')
    end)
  end)

  it('takes every descendant with it when the contained orchestrator is SIGKILLed', function()
    wait.run(function()
      local relay = start()
      local children = process.exec({ 'pgrep', '-P', tostring(relay:pid()) }, NO_PRELOAD).stdout
      local inner = tonumber(children:match('%d+'))
      core.kill(inner, 'SIGKILL')
      local code, sig = relay:wait(2000)
      assert.is_true(code == 137 or sig == 'SIGKILL')
      wait.wait_until(function()
        return count_marker() == 0
      end, 1000, 'the setsid grandchild to be gone within 1 s')
    end)
  end)

  it('forwards SIGTERM to the contained orchestrator, which runs as PID 1', function()
    wait.run(function()
      local relay, out = start()
      core.kill(relay:pid(), 'SIGTERM')
      assert.equals(0, (relay:wait(3000)))
      assert.matches('got SIGTERM as pid 1\n', table.concat(out))
      wait.wait_until(function()
        return count_marker() == 0
      end, 1000, 'the namespace to be gone')
    end)
  end)

  it('reports the pid the host sees for children of a contained orchestrator', function()
    local r = wait.run(function()
      local out = {}
      local helper = assert(process.spawn({ 'lua5.4', 'spec/fixtures/contain/host_pid.lua' }, {
        -- make sanitize: libasan again for the core (spec/c/unpreload.c)
        env = { LD_PRELOAD = os.getenv('ORCH_ASAN_PRELOAD') },
        stdout = function(c)
          out[#out + 1] = c
        end,
      }))
      local ns, host = table.unpack(wait.wait_until(function()
        local a, b = table.concat(out):match('ns pid\t(%d+)\thost pid\t(%d+)')
        return a and { tonumber(a), tonumber(b) }
      end, 3000, 'the pids'))
      local seen = tonumber(process.exec({ 'pgrep', '-f', '^sleep 4244' }, NO_PRELOAD).stdout:match(
        '%d+'))
      if seen then
        process.exec({ 'kill', tostring(seen) }, NO_PRELOAD) -- the helper ends with its child
      end
      helper:wait(3000)
      return { ns = ns, host = host, seen = seen }
    end)
    assert.equals(2, r.ns)
    assert.equals(r.seen, r.host)
  end)
  -- `stty tostop`: the contained orch is in a background process group of the terminal (the
  -- relay's group is the foreground one); its writes used to raise a SIGTTOU the kernel drops
  -- for a namespace's init, and restart for ever (no output, 100 % CPU, SIGTERM unheard).
  -- Run under a real pseudo-terminal (spec/fixtures/contain/tty_run.py).
  for _, stop in ipairs({ 'term', 'intr' }) do
    it(('writes to a terminal with tostop and stops on %s'):format(
      stop == 'term' and 'SIGTERM' or 'Ctrl-C (exactly one SIGINT)'), function()
      local out, left = table.unpack(wait.run(function()
        local r = process.exec({ 'python3', 'spec/fixtures/contain/tty_run.py', 'tty-hello', '5',
          stop, 'env', 'ORCH_CONTROL=0', 'build/bin/orch', 'run', 'spec/fixtures/contain/tty.lua' },
          { timeout = 20000 })
        return { r.stdout, process.exec({ 'pgrep', '-f', '^sleep 100011' }, NO_PRELOAD).stdout }
      end))
      assert.matches('marker=yes\nexit=0\n', out)
      assert.matches('talker: stopped by SIGTERM', out)
      if stop == 'intr' then
        assert.matches('SIGINT: stopping', out)
        assert.falsy(out:find('killing every process group', 1, true), out)
      end
      assert.equals('', left)
    end)
  end
end)
