-- Issue 14 (readiness and stopping) end to end with real processes under the real
-- build/bin/orch: effects overlay, environment leaks, sd_notify readiness, stop signals,
-- limits and env files (tagged #integration).
local R = require 'fixtures.cli.runner'

local F = R.ROOT .. '/spec/fixtures/ready'

local session = R.session()
local start, tmpdir = session.start, session.tmpdir

describe('issue 14 readiness and stopping #integration', function()
  after_each(session.cleanup)

  it('logs the output of a chain whose effects define only setHealth, with the id prefix',
    function()
      local p = start({ 'run', F .. '/partial_effects.lua' })
      p:wait_for('talker | hello from talker', 10000, nil, true)
    end)

  it("keeps orch's NOTIFY_SOCKET and LISTEN_* from children unless exec.env sets them",
    function()
      local dir = tmpdir()
      local p = start({ 'run', F .. '/env_leak.lua' }, { env = {
        NOTIFY_SOCKET = dir .. '/nobody-listens', LISTEN_FDS = '3', LISTEN_PID = '1' } })
      p:wait_for('plain | ns=unset lf=unset lp=unset', 10000, nil, true)
      p:wait_for('own   | ns=/own/sock lf=unset lp=unset', 10000, nil, true)
    end)
end)

describe('ready.notify #integration', function()
  after_each(session.cleanup)

  it('READY=1 from a real child makes it ready and gates its dependent', function()
    local p = start({ 'run', F .. '/notify.lua' })
    local text = p:wait_for('web +| web up', 20000)
    -- the dependent started only after READY=1 made db ready, and STATUS= is the message
    local ready_at = assert(text:find('db: starting -> success (accepting connections)', 1, true))
    assert.is_true(ready_at < assert(text:find('web: waiting -> starting', 1, true)))
    assert.is_nil(text:find('db: success', 1, true)) -- nothing else changed it
  end)

  it('a watchdog miss fails the check and stops the dependent', function()
    local p = start({ 'run', F .. '/notify.lua', 'watchdog' })
    p:wait_for('web +| web up', 20000)
    local text = p:wait_for('db: success -> failure (watchdog: no WATCHDOG=1 within 300 ms)',
      10000, nil, true)
    assert.truthy(text:find('db +| pings stopped'))
    p:wait_for('web: stopping', 10000, nil, true)
  end)

  it('with ready.restartAfter a watchdog miss restarts the real process at once', function()
    local p = start({ 'run', F .. '/notify.lua', 'restart' })
    local text = p:wait_for('db: restarting: watchdog: no WATCHDOG=1 within 300 ms', 20000,
      nil, true)
    local first = assert(tonumber(text:match('db: started %(pid (%d+)%)')))
    text = p:wait_for('db: started %(pid %d+, restart #1[%) ]', 10000)
    assert.truthy(text:find(('db: stopped by SIGTERM (pid %d)'):format(first), 1, true))
    -- the new process is ready again with its own READY=1, and gates web again
    p:wait_for('db: started %(pid %d+, restart #1[^)]*%).*db: %w+ %-> success', 10000)
  end)
end)

describe('ready.logLine and ready.onLine #integration', function()
  after_each(session.cleanup)

  it('a matching output line makes the entry ready, and the line is still logged', function()
    local p = start({ 'run', F .. '/logline.lua' })
    local text = p:wait_for('web +| web up', 20000)
    assert.truthy(text:find('api +| listening on port 8080'))
    assert.truthy(text:find('worker +| worker idle'))
    local api_ready = assert(text:find('api: starting -> success (listening on port 8080)', 1,
      true))
    local worker_ready = assert(text:find('worker: starting -> success (idle)', 1, true))
    local web_start = assert(text:find('web: waiting -> starting', 1, true))
    assert.is_true(api_ready < web_start and worker_ready < web_start)
    assert.truthy(text:find('api +| booting'))
  end)
end)

describe('stopping and env files #integration', function()
  after_each(session.cleanup)

  it('stops with exec.stopSignal and exec.stopCommand, and merges exec.envFile under exec.env',
    function()
      local dir = tmpdir()
      R.write_file(dir .. '/app.env', '# a comment\n\nFROM_FILE=yes\nOVER=from file\n'
        .. 'QUOTED="a b"\n')
      local p = start({ 'run', F .. '/stop.lua', dir .. '/app.env' })
      p:wait_for('envf +| file=yes over=from exec.env q=a b', 20000)
      p:wait_for('int +| trapped', 10000)
      p:wait_for('cmd +| trapped', 10000)
      p:signal('TERM')
      assert.equal(0, p:wait(10000))
      local text = p:out()
      assert.truthy(text:find('int +| got INT'))
      assert.truthy(text:find('cmd +| got USR1'))
      assert.truthy(text:find('cmd +| stop command for %d+ %(entry env%)'))
      assert.truthy(text:find('int: stopping (SIGINT to pid', 1, true))
      assert.is_nil(text:find('got TERM', 1, true))
      assert.is_nil(text:find('SIGKILL', 1, true))
    end)

  it('a missing exec.envFile is a spawn error naming the file', function()
    local p = start({ 'run', F .. '/stop.lua', '/nonexistent/orch-app.env' })
    p:wait_for("cannot read exec.envFile '/nonexistent/orch-app.env': No such file", 20000, nil,
      true)
  end)
end)

describe('exec.limits #integration', function()
  after_each(session.cleanup)

  it('sets rlimits in the child (nofile, core)', function()
    local p = start({ 'run', F .. '/limits.lua', 'rlimits' })
    p:wait_for('fds +| nofile=123 core=0', 20000)
  end)

  -- Where the tracker has cgroup v2 per incarnation, a 16M limit OOM-kills the hog and the log
  -- says so; elsewhere the limit is an error at start naming the key, never a silent no-op.
  it('reports an OOM kill as such, or refuses a memory limit it cannot apply', function()
    local p = start({ 'run', F .. '/limits.lua', 'memory' })
    local text = R.wait_until(function()
      local t = p:out()
      return (t:find('OOM killer', 1, true) or t:find('hog: failed to start', 1, true)) and t
    end, 30000, 'an OOM kill or a refused limit')
    if text:find('needs a cgroup v2', 1, true) then
      assert.truthy(text:find('exec.limits.memory needs a cgroup v2', 1, true))
    elseif text:find('controller is not available', 1, true) then
      assert.truthy(text:find('exec.limits.memory: the memory controller', 1, true))
    else
      assert.truthy(text:find('hog: killed by the OOM killer (exec.limits.memory reached)', 1,
        true))
    end
  end)
end)

describe('exec.reloadSignal #integration', function()
  after_each(session.cleanup)

  it('orch signal <id> reload sends it; an entry without one is an error', function()
    local sock = tmpdir() .. '/orch.sock'
    local p = start({ 'run', '--control', sock, F .. '/reload.lua' })
    p:wait_for('app +| waiting', 20000)
    p:wait_for('plain +| plain up', 20000)
    local r = R.run({ 'signal', 'app', 'reload', '--control', sock })
    assert.equal(0, r.code, r.err)
    assert.matches('^sent reload to app %(pid %d+%)', r.out)
    p:wait_for('app +| reloaded', 10000)
    local none = R.run({ 'signal', 'plain', 'reload', '--control', sock })
    assert.equal(1, none.code)
    assert.equal('orch: plain has no exec.reloadSignal\n', none.err)
  end)
end)

describe('ready.notifyFd #integration', function()
  after_each(session.cleanup)

  it('a newline on the fd from a real child makes it ready and gates its dependent', function()
    local p = start({ 'run', F .. '/notify_fd.lua' })
    local text = p:wait_for('web +| web up', 20000)
    local notified = assert(text:find('db +| notified'))
    local ready_at = assert(text:find('db: starting -> success', 1, true))
    assert.is_true(assert(text:find('web: waiting -> starting', 1, true)) > ready_at)
    assert.is_true(notified < assert(text:find('web +| web up')))
  end)

  it('each incarnation gets its own fd and must notify again after a restart', function()
    local p = start({ 'run', F .. '/notify_fd.lua', 'restart' })
    p:wait_for('db +| bye', 20000)
    -- after the exit: not ready until the next incarnation wrote its own newline
    R.wait_until(function()
      local text = p:out()
      local bye = text:find('db +| bye')
      local after = text:sub(bye)
      return after:find('db +| notified') and after:find('db: [%w]+ %-> success')
    end, 20000, 'db ready again after its restart')
  end)

  it('an fd closed without a newline is logged and the entry never becomes ready', function()
    local p = start({ 'run', F .. '/notify_fd.lua', 'silent' })
    local text = p:wait_for('ready.notifyFd: fd 3 was closed without a newline', 20000, nil,
      true)
    assert.truthy(text:find('db +| closed'))
    assert.is_nil(text:find('db: starting -> success', 1, true))
    assert.is_nil(text:find('web: waiting -> starting', 1, true))
  end)

  it('another fd number works, and with ready.fn the probe still sets the result', function()
    local p = start({ 'run', F .. '/notify_fd.lua', 'fd9' })
    p:wait_for('web +| web up', 20000)
    p = start({ 'run', F .. '/notify_fd.lua', 'fn' })
    local text = p:wait_for('db: success -> failure (probe says no)', 20000, nil, true)
    assert.truthy(text:find('db: starting -> success', 1, true))
  end)
end)
