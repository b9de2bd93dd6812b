-- What a leader leaves behind (DECISIONS "Processes", issue 14's first bug, issue 11 item 6), and
-- the spawn input orch.process refuses (issue 11 item 2 and the small ones). Real processes on
-- the real core (#integration); every wait is a condition with a deadline.
local H = require 'spec.support.helpers'

insulate('orch.process: what a leader leaves behind #integration', function()
  local orch = H.real()
  local process = require 'orch.runtime.process'
  local track = require 'orch.runtime.track'
  local core = require 'orch.core'
  local Daemons = orch.Daemons
  local fx = H.effects_per_test()

  local dir
  before_each(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute('mkdir -p ' .. dir))
  end)
  after_each(function()
    os.execute('rm -rf ' .. dir)
  end)

  local function read(path)
    local f = io.open(path)
    if not f then
      return nil
    end
    local s = f:read('a')
    f:close()
    return s
  end

  local function logs_matching(pattern)
    local out = {}
    for _, l in ipairs(fx.logs) do
      if l.message:find(pattern) then
        out[#out + 1] = l
      end
    end
    return out
  end

  it('a shell-wrapped service that traps SIGTERM and needs 500 ms finishes cleanly, 20 of 20',
    function()
      -- The outer shell is not the last command: on a stop it dies at once; the service behind
      -- it must still get the time to finish its own shutdown (it was SIGKILLed microseconds
      -- after the shell).
      local chain = Daemons.of{ effects = fx }
      for i = 1, 20 do
        local f = ('%s/svc%d'):format(dir, i)
        chain = chain:addDaemon('svc' .. i, { exec = {
          command = ([[sh -c 'trap "sleep 0.5; echo clean >%s; exit 0" TERM; echo up >%s; ]]
            .. [[while :; do sleep 0.05; done'; echo done]]):format(f, f),
          sigtermTimeout = 10000,
        }, requires = {} })
      end
      local took
      H.run(function()
        chain:build()
        H.wait_until(function()
          for i = 1, 20 do
            if read(('%s/svc%d'):format(dir, i)) ~= 'up\n' then
              return false
            end
          end
          return true
        end, 20000, 20, 'every service up')
        local t0 = orch.now()
        chain:term()
        took = orch.now() - t0
      end, 60000)
      local clean = 0
      for i = 1, 20 do
        if read(('%s/svc%d'):format(dir, i)) == 'clean\n' then
          clean = clean + 1
        end
      end
      assert.are.equal(20, clean)
      assert.is_true(took >= 500 and took < 9000, 'took ' .. took)
      -- what was left is logged, and how it ended (a service whose leftovers were gone before
      -- orch looked has nothing to report)
      local left = #logs_matching('process%(es%) left')
      assert.is_true(left >= 1)
      assert.are.equal(left, #logs_matching('what was left ended'))
    end)

  it('what a leader leaves when it exits by itself gets SIGTERM, then SIGKILL after the '
    .. 'timeout', function()
      local logs = {}
      local f = dir .. '/bye' -- the trap is set before the leader exits (f.trapped): no race
      H.run(function()
        local out = {}
        local cmd = assert(process.spawn({ 'sh', '-c', ([[
(trap "echo bye >%s; exit 0" TERM; : >%s.trapped; while :; do sleep 0.05; done) >/dev/null &
(trap "" TERM; : >%s.ignoring; exec sleep 100) >/dev/null &
while [ ! -e %s.trapped ] || [ ! -e %s.ignoring ]; do sleep 0.01; done
echo started]]):format(f, f, f, f, f) }, {
          stdout = function(c)
            out[#out + 1] = c
          end,
          sigterm_timeout = 400,
          name = 'wrapper',
          log = function(level, msg)
            logs[#logs + 1] = level .. ': ' .. msg
          end,
        }))
        local t0 = orch.now()
        cmd:wait(5000)
        assert.is_true(cmd.exited.is_set)
        local took = orch.now() - t0
        assert.is_true(took >= 400 and took < 3000, 'took ' .. took)
        assert.are.equal('started\n', table.concat(out))
        assert.is_true(cmd.killed)
      end, 10000)
      assert.are.equal('bye\n', read(f)) -- the one that traps SIGTERM finished its handler
      local all = table.concat(logs, '\n')
      assert.matches('info: wrapper: sh exited with code 0; %d process%(es%) left %(%d+ %d+.*%): '
        .. 'SIGTERM', all)
      assert.matches('warning: wrapper: 1 process%(es%) left still there after the timeout', all)
    end)

  it('a stop ends within its timeout when an escaped process holds the output pipe, and names '
    .. 'it', function()
      -- /proc tracking (the non-root case): a daemon that starts a process which leaves its
      -- group (setsid) and drops the tag (env -i) and ignores SIGTERM; it keeps stdout open.
      -- The stop never finished: orch waited for EOF for ever.
      local tracker = track.setup({ name = 'orch-spec-' .. core.getpid(), mode = 'proc' })
      assert.are.equal('proc', tracker.mode)
      local chain = Daemons.of{ effects = fx }
        :addDaemon('escaper', { exec = {
          command = [[(setsid env -i sh -c 'trap "" TERM; echo "escaped $$"; exec sleep 1000' &); ]]
            .. [[exec sleep 100]],
          sigtermTimeout = 500,
        }, requires = {} })
      local took, escaped
      finally(function()
        if escaped then
          core.kill(escaped, 'SIGKILL')
        end
      end)
      H.run(function()
        chain:build()
        -- the escaped process runs `sleep 1000` under the pid it printed, orphaned (not a
        -- descendant of the leader any more)
        H.wait_until(function()
          for _, o in ipairs(fx.outputs) do
            local pid = o.id == 'escaper' and tonumber(o.chunk:match('escaped (%d+)'))
            if pid then
              escaped = pid
            end
          end
          return escaped and read(('/proc/%d/cmdline'):format(escaped)) == 'sleep\0' .. '1000\0'
        end, 5000, 10, 'the escaped process')
        local t0 = orch.now()
        chain:term()
        took = orch.now() - t0
      end, 15000)
      local held = logs_matching('output pipe still held open')
      assert.are.equal(1, #held)
      assert.are.equal(escaped, tonumber(held[1].message:match('by pid (%d+)')), held[1].message)
      assert.is_true(took >= 500 and took < 3000, 'took ' .. took)
    end)
end)

insulate('orch.process: spawn input it refuses', function()
  H.real()
  local process = require 'orch.runtime.process'
  local wait = require 'spec.support.wait'

  local function spawn(argv, opts)
    return process.spawn(argv, opts)
  end

  it('refuses a uid or gid that would wrap to root, and (uid_t)-1', function()
    for _, user in ipairs { '4294967296', 4294967296, '65534:4294967296', '4294967296:0',
      '4294967295', 4294967295, -1, '99999999999999999999999' } do
      local cmd, msg, code = spawn({ 'id', '-u' }, { user = user })
      if cmd then
        cmd:close()
      end
      assert.is_nil(cmd, tostring(user))
      assert.matches('uid and gid must be integers from 0 to 4294967294', msg)
      assert.are.equal('EINVAL', code)
    end
  end)

  it('refuses NUL bytes in cwd and user instead of cutting them', function()
    local cmd, msg, code = spawn({ 'pwd' }, { cwd = '/tmp\0/x' })
    assert.is_nil(cmd)
    assert.matches('cwd must be a path without NUL bytes', msg)
    assert.are.equal('EINVAL', code)
    cmd, msg, code = spawn({ 'id' }, { user = 'nobody\0root' })
    assert.is_nil(cmd)
    assert.matches('holds a NUL byte', msg)
    assert.are.equal('EINVAL', code)
  end)

  it('orch.exec returns nil, msg, EINVAL on a NUL byte in argv', function()
    local r, msg, code = wait.run(function()
      return process.exec({ 'echo', 'a\0b' })
    end)
    assert.is_nil(r)
    assert.are.equal("spawn 'echo': argv[2] must be a string without NUL bytes", msg)
    assert.are.equal('EINVAL', code)
  end)

  it('names a missing interpreter instead of the script that exists', function()
    local script = os.tmpname()
    local f = assert(io.open(script, 'w'))
    f:write('#!/usr/bin/nope -x\necho hi\n')
    f:close()
    os.execute('chmod 755 ' .. script)
    local cmd, msg, code, stage = spawn({ script })
    os.remove(script)
    assert.is_nil(cmd)
    assert.are.equal(("spawn '%s': bad interpreter '/usr/bin/nope': no such file or directory")
      :format(script), msg)
    assert.are.equal('ENOENT', code)
    assert.are.equal('exec', stage)
  end)
end)
