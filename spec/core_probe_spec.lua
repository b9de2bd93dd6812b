-- orch.core probes: port_listening, tcp_connect, http_get; drives the loop directly.
-- Servers come from spec/support/pyserver.py (python3), run in the background per test.
local core = require 'orch.core'

local FIXTURES = 'spec/fixtures/proc_net/'
local SERVER = 'spec/support/pyserver.py'

local servers = {} -- pids to kill after each test

-- Run the loop until nothing is active; fail if that takes longer than `ms`. Returns the ms spent.
local function run_loop(ms)
  local fired = false
  local watchdog = core.timer()
  watchdog:start(ms, 0, function()
    fired = true
    core.stop()
  end)
  watchdog:unref()
  local t0 = core.hrtime()
  core.run()
  watchdog:close()
  assert.is_false(fired, ('the loop was still busy after %d ms'):format(ms))
  return (core.hrtime() - t0) // 1000000
end

-- Drive the loop until `pred()` is truthy, checking every 5 ms; fail after `ms` (the shared
-- wait: outside a task it drives the real core's loop between polls).
local function wait_until(pred, ms, what)
  return require('spec.support.wait').wait_until(pred, ms or 5000, 5, what)
end

-- Start a server; returns its port.
local function server(mode, opts)
  opts = opts or {}
  local portfile = os.tmpname()
  os.remove(portfile)
  local extra = ''
  if opts.family then
    extra = extra .. ' --family ' .. opts.family
  end
  if opts.certdir then
    extra = extra .. ' --certdir ' .. opts.certdir
  end
  assert(os.execute(('python3 %s %s %s --parent %d%s >/dev/null 2>&1 &'):format(
    SERVER, mode, portfile, core.getpid(), extra)))
  local text
  wait_until(function()
    local f = io.open(portfile)
    if f then
      text = f:read('a')
      f:close()
    end
    return text
  end, 20000, mode .. ' server') -- python3 alone took 2.6 s to start under load
  os.remove(portfile)
  local port, pid = text:match('^(%d+) (%d+)')
  if mode ~= 'free' then
    servers[#servers + 1] = tonumber(pid)
  end
  return tonumber(port)
end

-- A call recorder: `rec.fn` as the callback; `rec.n` calls; `rec.args` of the last one.
local function recorder()
  local rec = { n = 0 }
  function rec.fn(...)
    rec.n = rec.n + 1
    rec.args = table.pack(...)
  end
  return rec
end

local function has_ipv6_loopback()
  local f = io.open('/proc/net/if_inet6')
  if not f then
    return false
  end
  local text = f:read('a')
  f:close()
  return text:find('00000000000000000000000000000001', 1, true) ~= nil
end

after_each(function()
  for _, pid in ipairs(servers) do
    core.kill(pid, 'SIGKILL')
  end
  servers = {}
  collectgarbage()
  collectgarbage()
  assert.equals(0, core.active_count())
end)

describe('core.port_listening', function()
  it('finds TCP listeners and only them in fixture tables', function()
    local dir = { dir = FIXTURES .. 'full' }
    assert.is_true(core.port_listening(5432, dir)) -- 127.0.0.1 LISTEN
    assert.is_true(core.port_listening(22, dir)) -- 0.0.0.0 LISTEN
    assert.is_false(core.port_listening(8080, dir)) -- ESTABLISHED
    assert.is_false(core.port_listening(9000, dir)) -- TIME_WAIT
    assert.is_false(core.port_listening(51234, dir)) -- a remote port
    assert.is_false(core.port_listening(1, dir))
  end)

  it('reads IPv6 rows from tcp6', function()
    local dir = { dir = FIXTURES .. 'full' }
    assert.is_true(core.port_listening(80, dir)) -- [::]
    assert.is_true(core.port_listening(9090, dir)) -- [::1]
    assert.is_false(core.port_listening(8443, dir)) -- ESTABLISHED
  end)

  it('counts bound UDP sockets in any state', function()
    local dir = { dir = FIXTURES .. 'full' }
    assert.is_true(core.port_listening(53, dir))
    assert.is_true(core.port_listening(6000, dir)) -- connected
    assert.is_true(core.port_listening(5353, dir)) -- udp6
  end)

  it('skips missing IPv6 and UDP tables', function()
    local dir = { dir = FIXTURES .. 'v4only' }
    assert.is_true(core.port_listening(3000, dir))
    assert.is_true(core.port_listening(514, dir))
    assert.is_false(core.port_listening(80, dir))
    assert.is_false(core.port_listening(80, { dir = FIXTURES .. 'empty' }))
  end)

  it('fails without a tcp table, or with one it cannot read', function()
    local ok, msg, code = core.port_listening(80, { dir = FIXTURES .. 'no_tcp' })
    assert.is_nil(ok)
    assert.equals('ENOENT', code)
    assert.matches('port_listening spec/fixtures/proc_net/no_tcp', msg, 1, true)
    ok, msg, code = core.port_listening(80, { dir = FIXTURES .. 'malformed' })
    assert.is_nil(ok)
    assert.equals('EINVAL', code)
    assert.is_string(msg)
    ok, msg, code = core.port_listening(80, { pid = 2 ^ 30 | 0 })
    assert.is_nil(ok)
    assert.equals('ENOENT', code)
    assert.matches('port_listening /proc/1073741824/net', msg, 1, true)
  end)

  it('raises on misuse', function()
    for _, port in ipairs({ 0, 65536, -1 }) do
      assert.has_error(function()
        core.port_listening(port)
      end, "bad argument #1 to 'port_listening' (port must be 1..65535)")
    end
    assert.has_error(function()
      core.port_listening(1.5)
    end)
    assert.has_error(function()
      core.port_listening('http')
    end)
    assert.has_error(function()
      core.port_listening(80, { dri = '/tmp' })
    end, "bad argument #2 to 'port_listening' (unknown option 'dri')")
    assert.has_error(function()
      core.port_listening(80, { dir = '/tmp', pid = 1 })
    end, "bad argument #2 to 'port_listening' (give pid or dir, not both)")
    assert.has_error(function()
      core.port_listening(80, { pid = 0 })
    end)
    assert.has_error(function()
      core.port_listening(80, 'x')
    end)
  end)

  it('sees a live listener, in this and in a given process #integration', function()
    local port = server('listen')
    assert.is_true(core.port_listening(port))
    assert.is_true(core.port_listening(port, { pid = core.getpid() }))
    assert.is_true(core.port_listening(port, { pid = servers[1] }))
    assert.is_false(core.port_listening(server('free')))
  end)

  it('sees a live IPv6 listener #integration', function()
    if not has_ipv6_loopback() then
      pending('no ::1 on this host')
      return
    end
    assert.is_true(core.port_listening(server('listen', { family = 6 })))
  end)
end)

describe('core.tcp_connect', function()
  it('calls back with nil and the elapsed time once connected #integration', function()
    local port = server('listen')
    local rec = recorder()
    local probe = core.tcp_connect('127.0.0.1', port, 2000, rec.fn)
    assert.matches('^orch%.probe %(0x%x+%)$', tostring(probe))
    assert.is_true(probe:active())
    run_loop(3000)
    assert.equals(1, rec.n)
    assert.is_nil(rec.args[1])
    assert.is_true(math.type(rec.args[2]) == 'integer' and rec.args[2] >= 0)
    assert.is_false(probe:active())
    probe:close()
    probe:close()
    assert.equals('orch.probe (closed)', tostring(probe))
  end)

  it('connects to ::1 and to a host name #integration', function()
    local rec = recorder()
    core.tcp_connect('localhost', server('listen'), 2000, rec.fn)
    if has_ipv6_loopback() then
      core.tcp_connect('::1', server('listen', { family = 6 }), 2000, rec.fn)
    end
    run_loop(3000)
    assert.equals(has_ipv6_loopback() and 2 or 1, rec.n)
    assert.is_nil(rec.args[1])
  end)

  it('reports ECONNREFUSED for a closed port #integration', function()
    local port = server('free')
    local rec = recorder()
    core.tcp_connect('127.0.0.1', port, 2000, rec.fn)
    run_loop(3000)
    assert.equals(1, rec.n)
    assert.equals('ECONNREFUSED', rec.args[1])
    assert.equals(('connect 127.0.0.1:%d: connection refused'):format(port), rec.args[3])
  end)

  -- Deterministic timeout without leaving loopback: the server listens with backlog 0 and fills
  -- its accept queue itself, so Linux drops our SYN and connect() stays pending.
  it('reports ETIMEDOUT after timeout_ms #integration', function()
    local port = server('full')
    local rec = recorder()
    core.tcp_connect('127.0.0.1', port, 200, rec.fn)
    local ms = run_loop(3000)
    assert.equals(1, rec.n)
    assert.equals('ETIMEDOUT', rec.args[1])
    -- real clock: the timeout is the C probe's own timer (libuv), which no fake can stand in for
    assert.is_true(rec.args[2] >= 190 and rec.args[2] < 1500, 'elapsed ' .. rec.args[2])
    assert.is_true(ms < 1500)
    assert.matches('timed out', rec.args[3])
  end)

  it('reports a resolver error for an unknown host', function()
    local rec = recorder()
    core.tcp_connect('no-such-host.invalid', 80, 5000, rec.fn)
    run_loop(6000)
    assert.equals(1, rec.n)
    assert.matches('^EAI_', rec.args[1]) -- EAI_NONAME (EAI_AGAIN without a resolver)
  end)

  it('never calls back once closed, and lets the loop end at once #integration', function()
    local port = server('full')
    local rec = recorder()
    local a = core.tcp_connect('127.0.0.1', port, 5000, rec.fn)
    local b = core.tcp_connect('127.0.0.1', port, 5000, rec.fn)
    local c = core.tcp_connect('localhost', port, 5000, rec.fn) -- still resolving, maybe
    a:close()
    local t = core.timer()
    t:start(50, 0, function()
      b:close()
      c:close()
      t:close()
    end)
    local ms = run_loop(3000)
    assert.equals(0, rec.n)
    -- real clock: closing a probe must cancel the C request at once (no fake for C)
    assert.is_true(ms < 1000, 'took ' .. ms .. ' ms')
    assert.equals('orch.probe (closed)', tostring(a))
    assert.is_false(b:active())
  end)

  it('stays alive while in flight even when unreferenced #integration', function()
    local port = server('listen')
    local rec = recorder()
    core.tcp_connect('127.0.0.1', port, 2000, rec.fn)
    collectgarbage()
    collectgarbage()
    run_loop(3000)
    assert.equals(1, rec.n)
  end)

  it('may be closed from its own callback #integration', function()
    local port = server('listen')
    local probe, got
    probe = core.tcp_connect('127.0.0.1', port, 2000, function(err)
      got = err or 'ok'
      probe:close()
      probe = nil
      collectgarbage()
    end)
    run_loop(3000)
    assert.equals('ok', got)
  end)

  it('raises on misuse', function()
    local f = function() end
    assert.has_error(function()
      core.tcp_connect('127.0.0.1', 0, 100, f)
    end, "bad argument #2 to 'tcp_connect' (port must be 1..65535)")
    assert.has_error(function()
      core.tcp_connect('127.0.0.1', 80, -1, f)
    end, "bad argument #3 to 'tcp_connect' (must not be negative)")
    assert.has_error(function()
      core.tcp_connect('127.0.0.1', 80, 100)
    end)
    assert.has_error(function()
      core.tcp_connect('', 80, 100, f)
    end)
    assert.has_error(function()
      core.tcp_connect(nil, 80, 100, f)
    end)
  end)
end)

describe('core.http_get', function()
  local port

  local function get(path, opts, ms)
    opts = opts or {}
    opts.timeout = opts.timeout or 1000 -- required: the default is orch.health's
    local rec = recorder()
    local probe = core.http_get(('http://127.0.0.1:%d%s'):format(port, path), opts, rec.fn)
    assert.is_truthy(probe)
    local elapsed = run_loop(ms or 5000)
    assert.equals(1, rec.n)
    return rec.args, elapsed
  end

  describe('against a plain HTTP server #integration', function()
    before_each(function()
      port = server('http')
    end)

    it('returns the status of a 200 response', function()
      local args = get('/status/200', nil)
      assert.equals(200, args[1])
      assert.is_true(math.type(args[2]) == 'integer' and args[2] >= 0)
      assert.equals(2, args.n)
    end)

    it('returns 4xx and 5xx statuses as statuses, not errors', function()
      assert.equals(500, get('/status/500', {})[1])
      assert.equals(404, get('/status/404', {})[1])
    end)

    it('sends HEAD when asked', function()
      assert.equals(204, get('/status/204', { method = 'HEAD' })[1])
      assert.equals(200, get('/', { method = 'GET', timeout = 2000 })[1])
    end)

    it('follows redirects up to max_redirects', function()
      assert.equals(200, get('/redirect/3', {})[1])
      assert.equals(302, get('/redirect/3', { max_redirects = 0 })[1])
      local args = get('/redirect/3', { max_redirects = 2 })
      assert.is_nil(args[1])
      assert.equals('ECURL', args[4])
      assert.matches('redirect', args[3]:lower())
    end)

    it('runs many probes at once', function()
      local rec = recorder()
      local statuses = {}
      for i = 1, 20 do
        local url = ('http://127.0.0.1:%d/status/%d'):format(port, 200 + i)
        core.http_get(url, { timeout = 1000 }, function(s)
          statuses[#statuses + 1] = s
          rec.fn()
        end)
      end
      run_loop(10000)
      assert.equals(20, rec.n)
      table.sort(statuses)
      assert.equals(201, statuses[1])
      assert.equals(220, statuses[20])
    end)

    it('lets a callback close another probe in flight', function()
      local silent = server('silent')
      local never = recorder()
      local slow = core.http_get(('http://127.0.0.1:%d/'):format(silent), { timeout = 5000 },
        never.fn)
      local got
      core.http_get(('http://127.0.0.1:%d/'):format(port), { timeout = 1000 }, function(status)
        got = status
        slow:close()
      end)
      local ms = run_loop(3000)
      assert.equals(200, got)
      assert.equals(0, never.n)
      -- real clock: a bound on the C probe against a real server (no fake for C)
      assert.is_true(ms < 2000)
    end)
  end)

  it('reports ECONNREFUSED for a closed port #integration', function()
    port = server('free')
    local args = get('/', { timeout = 2000 })
    assert.is_nil(args[1])
    assert.equals('ECONNREFUSED', args[4])
    assert.is_string(args[3])
  end)

  it('reports ETIMEDOUT when the server never answers #integration', function()
    port = server('silent')
    local args, ms = get('/', { timeout = 300 })
    assert.is_nil(args[1])
    assert.equals('ETIMEDOUT', args[4])
    -- real clock: the timeout is libcurl's, inside the C probe; no fake can stand in for it
    assert.is_true(args[2] >= 290 and args[2] < 1500, 'elapsed ' .. args[2])
    assert.is_true(ms < 1500)
    assert.matches('[Tt]imed? ?out', args[3])
  end)

  it('reports a resolver error for an unknown host', function()
    local rec = recorder()
    core.http_get('http://no-such-host.invalid/', { timeout = 5000 }, rec.fn)
    run_loop(6000)
    assert.equals(1, rec.n)
    assert.is_nil(rec.args[1])
    assert.equals('EAI_NONAME', rec.args[4])
  end)

  it('refuses other protocols than http and https', function()
    local rec = recorder()
    core.http_get('file:///etc/passwd', { timeout = 1000 }, rec.fn)
    run_loop(2000)
    assert.equals(1, rec.n)
    assert.is_nil(rec.args[1])
    assert.equals('ECURL', rec.args[4])
  end)

  it('never calls back once closed, and lets the loop end at once #integration', function()
    port = server('silent')
    local rec = recorder()
    local url = ('http://127.0.0.1:%d/'):format(port)
    local a = core.http_get(url, { timeout = 5000 }, rec.fn)
    local b = core.http_get(url, { timeout = 5000 }, rec.fn)
    a:close()
    local t = core.timer()
    t:start(100, 0, function()
      b:close()
      b:close()
      t:close()
    end)
    local ms = run_loop(3000)
    assert.equals(0, rec.n)
    -- real clock: closing a probe must cancel the C request at once (no fake for C)
    assert.is_true(ms < 1000, 'took ' .. ms .. ' ms')
    assert.equals('orch.probe (closed)', tostring(b))
  end)

  it('raises on misuse', function()
    local f = function() end
    assert.has_error(function()
      core.http_get('http://127.0.0.1/', { timeuot = 5 }, f)
    end, "bad argument #2 to 'http_get' (unknown option 'timeuot')")
    assert.has_error(function()
      core.http_get('http://127.0.0.1/', { method = 'POST' }, f)
    end, "bad argument #2 to 'http_get' (method must be 'GET' or 'HEAD')")
    assert.has_error(function()
      core.http_get('http://127.0.0.1/', { timeout = 0 }, f)
    end)
    assert.has_error(function()
      core.http_get('http://127.0.0.1/', { insecure = 1 }, f)
    end)
    assert.has_error(function()
      core.http_get('http://127.0.0.1/', nil)
    end)
    assert.has_error(function() -- the timeout's default is policy: orch.health's, not the core's
      core.http_get('http://127.0.0.1/', {}, f)
    end, "bad argument #2 to 'http_get' (timeout (ms) expected)")
    assert.has_error(function()
      core.http_get(nil, nil, f)
    end)
  end)

  describe('over https with a self-signed certificate #integration', function()
    local certdir

    setup(function()
      certdir = os.tmpname()
      os.remove(certdir)
      assert(os.execute('mkdir ' .. certdir))
      assert(os.execute(('openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 1 '
        .. '-keyout %s/key.pem -out %s/cert.pem >/dev/null 2>&1'):format(certdir, certdir)))
    end)

    teardown(function()
      os.execute('rm -rf ' .. certdir)
    end)

    it('fails verification unless insecure', function()
      port = server('https', { certdir = certdir })
      local url = ('https://127.0.0.1:%d/status/200'):format(port)
      local rec = recorder()
      core.http_get(url, { timeout = 3000 }, rec.fn)
      run_loop(5000)
      assert.equals(1, rec.n)
      assert.is_nil(rec.args[1])
      assert.equals('ECURL', rec.args[4])
      assert.matches('certificate', rec.args[3])
      rec = recorder()
      core.http_get(url, { timeout = 3000, insecure = true }, rec.fn)
      run_loop(5000)
      assert.equals(1, rec.n)
      assert.equals(200, rec.args[1])
    end)
  end)
end)
