-- orch.core spawn, kill, reaping, PDEATHSIG: real processes, each bounded by a deadline.
local core = require 'orch.core'
local sched = require 'orch.runtime.sched'
local process = require 'orch.runtime.process'
local wait = require 'spec.support.wait'

local function exec(argv, opts)
  return wait.run(function()
    return process.exec(argv, opts)
  end)
end

describe('core.spawn', function()
  before_each(function()
    core.update_time() -- a slow test before (10 MB compared in Lua) leaves the loop's clock behind
  end)

  after_each(function()
    assert.equals(0, core.active_count())
  end)

  it('passes env and cwd to the child', function()
    local r = exec({ 'sh', '-c', 'echo "$FOO:$BAR:$(pwd)"' },
      { env = { FOO = 'x y' }, cwd = '/tmp' })
    assert.equals('x y::/tmp\n', r.stdout)
  end)

  it('removes names set to false from the environment', function()
    local r = exec({ 'sh', '-c', 'echo "${HOME-unset}"' }, { env = { HOME = false } })
    assert.equals('unset\n', r.stdout)
  end)

  it('runs a child as nobody with its uid, gid and groups', function()
    if core.getuid() ~= 0 then
      return pending('needs root to change user')
    end
    local r = exec({ 'sh', '-c', 'id -u; id -g; id -G; echo $HOME' }, { user = 'nobody' })
    local pw = core.getpwnam('nobody')
    assert.equals(('%d\n%d\n%d\n%s\n'):format(pw.uid, pw.gid, pw.gid, pw.dir), r.stdout)
  end)

  it('accepts uid:gid and keeps supplementary groups of the uid', function()
    if core.getuid() ~= 0 then
      return pending('needs root to change user')
    end
    local r = exec({ 'sh', '-c', 'id -u; id -g' }, { user = '65534:100' })
    assert.equals('65534\n100\n', r.stdout)
  end)

  it('reports exit codes and signal deaths', function()
    assert.equals(3, exec({ 'sh', '-c', 'exit 3' }).exitCode)
    local r = exec({ 'sh', '-c', 'kill -KILL $$' })
    assert.is_nil(r.exitCode)
    assert.equals('SIGKILL', r.signal)
  end)

  it('delivers 10 MB of output whose chunks concatenate to exactly the bytes written', function()
    local chunks, n = {}, 0
    local code = wait.run(function()
      local done, eof = sched.event(), sched.event()
      local code
      core.spawn({ 'seq', '1', '1500000' }, {
        stdout = function(chunk)
          if chunk then
            n = n + 1
            chunks[n] = chunk
          else
            eof:set() -- the end of the pipe is its own event, in any order with the exit
          end
        end,
      }, function(c)
        code = c
        done:set()
      end)
      done:wait()
      eof:wait()
      return code
    end)
    local expected = {}
    for i = 1, 1500000 do
      expected[i] = tostring(i)
    end
    expected = table.concat(expected, '\n') .. '\n'
    assert.equals(0, code)
    assert.is_true(#expected > 9 * 1024 * 1024)
    assert.is_true(n > 1)
    assert.equals(#expected, #table.concat(chunks))
    assert.is_true(expected == table.concat(chunks))
  end)

  it('kills the whole process group, grandchildren included', function()
    wait.run(function()
      local out = {}
      local cmd = assert(process.spawn({ 'sh', '-c', 'sleep 100 & echo $!; wait' }, {
        stdout = function(c)
          out[#out + 1] = c
        end,
      }))
      local grandchild = tonumber(wait.wait_until(function()
        return table.concat(out):match('(%d+)\n')
      end, 3000, 'the grandchild pid'))
      assert.is_true(cmd:kill('SIGTERM'))
      cmd:wait(3000)
      wait.wait_until(function()
        return wait.pid_dead(grandchild)
      end, 3000, 'the grandchild to die')
    end)
  end)

  it('kills what is left of the group once the leader exits', function()
    wait.run(function()
      local out = {}
      local cmd = assert(process.spawn({ 'sh', '-c', 'sleep 100 >/dev/null & echo $!' }, {
        stdout = function(c)
          out[#out + 1] = c
        end,
      }))
      cmd:wait(3000)
      local grandchild = tonumber(table.concat(out):match('(%d+)'))
      wait.wait_until(function()
        return wait.pid_dead(grandchild)
      end, 3000, 'the leftover group member to die')
    end)
  end)

  it('returns clear errors for spawn failures', function()
    local plain, script = os.tmpname(), os.tmpname()
    assert(io.open(script, 'w')):write('echo no shebang\n'):close()
    os.execute('chmod 644 ' .. plain .. '; chmod 755 ' .. script)
    local cases = {
      { { 'no-such-binary-xyz' }, {}, "spawn 'no-such-binary-xyz': no such file or directory",
        'ENOENT' },
      { { plain }, {}, ("spawn '%s': permission denied"):format(plain), 'EACCES' },
      { { script }, {}, ("spawn '%s': exec format error"):format(script), 'ENOEXEC' },
      { { 'true' }, { cwd = '/no/such/dir' },
        "spawn 'true': cwd '/no/such/dir': no such file or directory", 'ENOENT' },
      { { 'true' }, { user = 'no-such-user-xyz' }, "spawn 'true': unknown user 'no-such-user-xyz'",
        'EINVAL' },
    }
    for _, case in ipairs(cases) do
      local proc, msg, code = process.spawn(case[1], case[2])
      assert.is_nil(proc)
      assert.equals(case[3], msg)
      assert.equals(case[4], code)
    end
    os.remove(plain)
    os.remove(script)
  end)

  it('gives the child one extra descriptor at the number asked (opts.fds), and no other',
    function()
      -- 3, the descriptor's own number, and the next free numbers (where the spawn's own
      -- report pipe goes): the child must see the pipe at n and nothing else of orch's
      local probe = assert(core.fd_pipe(function() end))
      local w = probe:write_fd()
      probe:close()
      for _, n in ipairs({ 3, w, w + 1, w + 2, w + 3, 1023 }) do
        local got, exited = {}, false
        local p = assert(core.fd_pipe(function(chunk)
          got[#got + 1] = chunk or '<end>'
        end))
        local src = p:write_fd()
        local script = ('ls /proc/self/fd | tr "\n" " " >&%d'):format(n)
        local proc = assert(core.spawn({ 'bash', '-c', script },
          { fds = { [n] = src }, stdout = 'ignore', stderr = 'inherit' }, function()
          exited = true
        end))
        p:close_write()
        wait.wait_until(function()
          return exited and got[#got] == '<end>'
        end, 5000, 'the child and the end of the pipe')
        proc:close()
        p:close()
        -- 0-2, the fd, and the one `ls` opens on /proc/self/fd
        local fds = table.concat(got):gsub('<end>$', '')
        local list = {}
        for fd in fds:gmatch('%d+') do
          list[#list + 1] = tonumber(fd)
        end
        table.sort(list)
        assert.equal(5, #list, ('n=%d: %s'):format(n, fds))
        assert.same({ 0, 1, 2 }, { list[1], list[2], list[3] })
        assert.truthy(list[4] == n or list[5] == n, fds)
      end
      assert.has_error(function()
        core.spawn({ 'true' }, { fds = { [2] = 5 } }, print)
      end)
      assert.has_error(function()
        core.spawn({ 'true' }, { fds = { [3] = 5, [4] = 6 } }, print)
      end)
    end)

  it('raises on misuse', function()
    assert.has_error(function()
      core.spawn('ls', {}, print)
    end)
    assert.has_error(function()
      core.spawn({}, {}, print)
    end)
    assert.has_error(function()
      core.spawn({ 'true' }, { stdout = 'bogus' }, print)
    end)
  end)

  it('kills the children of an orchestrator that is SIGKILLed (PDEATHSIG)', function()
    local script = os.tmpname()
    local f = assert(io.open(script, 'w'))
    f:write([[
      package.cpath = './build/lib/?.so;' .. package.cpath
      local core = require 'orch.core'
      local p = core.spawn({ 'sleep', '100' }, {}, function() end)
      io.stdout:write(p:pid(), '\n') io.stdout:flush()
      core.run()
    ]])
    f:close()
    wait.run(function()
      local out = {}
      local helper = assert(process.spawn({ 'lua5.4', script }, {
        -- make sanitize: libasan again for the core (spec/c/unpreload.c)
        env = { LD_PRELOAD = os.getenv('ORCH_ASAN_PRELOAD') },
        stdout = function(c)
          out[#out + 1] = c
        end,
      }))
      local child = tonumber(wait.wait_until(function()
        return table.concat(out):match('(%d+)\n')
      end, 3000, 'the child pid'))
      assert.is_false(wait.pid_dead(child))
      core.kill(helper:pid(), 'SIGKILL') -- the helper only, not its group
      helper:wait(3000)
      wait.wait_until(function()
        return wait.pid_dead(child)
      end, 3000, 'the child to die with its parent')
    end)
    os.remove(script)
  end)

  it('reaps orphans handed to it as a subreaper, leaving no zombie', function()
    assert.is_true(core.set_subreaper())
    local before = core.orphans_reaped()
    wait.run(function()
      local r = process.exec({ 'sh', '-c', 'setsid sleep 0.2 >/dev/null 2>&1 & echo $!' })
      local orphan = tonumber(r.stdout:match('%d+'))
      wait.wait_until(function()
        return core.orphans_reaped() > before and wait.pid_dead(orphan)
          and not io.open(('/proc/%d/stat'):format(orphan))
      end, 3000, 'the orphan to be reaped')
    end)
  end)
end)
