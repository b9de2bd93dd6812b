-- The control socket end to end (#integration): a real build/bin/orch running
-- spec/fixtures/control/main.lua, the control commands run as separate processes, raw clients
-- in Python for malformed input, clients that never read and another uid.
local R = require 'fixtures.cli.runner'
local cjson = require 'cjson'

local MAIN = R.ROOT .. '/spec/fixtures/control/main.lua'
local BIG = R.ROOT .. '/spec/fixtures/control/big.lua'
local CLIENT = R.ROOT .. '/spec/fixtures/control/client.py'
local PYTHON = '/usr/bin/python3'
local IDS = { 'db', 'migrate', 'web', 'probe', 'chatty' }

local session = R.session() -- what the specs start and make, cleaned up after each
local start, tmpdir = session.start, session.tmpdir


-- Run a control command against the socket `sock`.
local function ctl(sock, ...)
  local args = { ... }
  args[#args + 1] = '--control'
  args[#args + 1] = sock
  return R.run(args, { timeout = 15 })
end

local function status(sock, id)
  local r = id and ctl(sock, 'status', id, '--json') or ctl(sock, 'status', '--json')
  assert(r.code == 0, 'orch status failed: ' .. r.err)
  return cjson.decode(r.out)
end

local function by_id(st)
  local out = {}
  for _, e in ipairs(st.entries) do
    out[e.id] = e
  end
  return out
end

local function all_ready(sock)
  return R.wait_until(function()
    local r = ctl(sock, 'status', '--json')
    if r.code == 0 then
      local st = cjson.decode(r.out)
      return st.orch.ready == st.orch.total and st
    end
  end, 15000, 'every entry ready')
end

local function python(mode, path, arg, prefix)
  return R.capture(('%stimeout 30 %s %s %s %s %s 2>&1'):format(prefix or '', PYTHON, CLIENT,
    mode, R.quote(path), arg and R.quote(arg) or ''))
end

-- Start orch on the fixture with its control socket at `sock`.
local function run_orch(sock, extra)
  local args = { 'run', '--control', sock }
  for _, a in ipairs(extra or {}) do
    args[#args + 1] = a
  end
  args[#args + 1] = MAIN
  local p = start(args)
  p:wait_for('chatty: starting %-> success', 15000)
  return p
end

local function is_root()
  return (R.capture('id -u'):gsub('%s', '')) == '0'
end

-- A command prefix that runs as `uid` (no passwd entry needed).
local function as_uid(uid)
  return ('setpriv --reuid=%d --regid=%d --clear-groups '):format(uid, uid)
end

local NOBODY, OTHER = 65534, 12345

local function count(text, plain)
  local n, pos = 0, 1
  while true do
    local i, j = text:find(plain, pos, true)
    if not i then
      return n
    end
    n, pos = n + 1, j + 1
  end
end

describe('orch control #integration', function()
  teardown(session.cleanup)

  describe('a running orch', function()
    local p, sock, dir

    setup(function()
      dir = tmpdir()
      sock = dir .. '/ctl.sock'
      p = run_orch(sock)
      all_ready(sock)
    end)

    teardown(function()
      if p then
        p:signal('TERM')
        p:wait()
      end
    end)

    it('listens on a 0600 socket and prints the status table', function()
      assert.equal('600', R.capture('stat -c %a ' .. R.quote(sock)):gsub('%s', ''))
      local r = ctl(sock, 'status')
      assert.equal(0, r.code, r.err)
      assert.equal('', r.err)
      local lines = {}
      for l in r.out:gmatch('[^\n]+') do
        lines[#lines + 1] = l
      end
      assert.matches('^orch control %(pid %d+%): running, up %d+s, 5/5 ready$', lines[1])
      assert.matches('^ID       KIND     STATE    PID  +UPTIME  RESTARTS  LAST EXIT  +WAITING ON  '
        .. 'MESSAGE$', lines[2])
      assert.is_nil(r.out:find('\27', 1, true), 'no colour when stdout is not a terminal')
      local web_pid = assert(p:out():match('web: started %(pid (%d+)'))
      assert.matches('^web +daemon +success +' .. web_pid .. ' +%d+s +0 +%- +%- +serving$',
        lines[5])
      assert.matches('^migrate +oneshot +success +%- +%- +0 +code 0, %d+s ago +%- *$', lines[4])
      assert.matches('^probe +health +success +%- +%- +0 +%- +%- +ok$', lines[6])
      assert.equal(7, #lines)
      local colored = ctl(sock, 'status', '--color')
      assert.matches('\27%[32msuccess\27%[0m', colored.out)
    end)

    it('gives the raw objects with --json', function()
      local st = status(sock)
      assert.equal(1, st.v)
      assert.is_true(st.ok)
      assert.equal('status', st.type)
      assert.equal('control', st.orch.name) -- the script's directory
      assert.equal(MAIN, st.orch.script)
      assert.equal(sock, st.orch.control)
      assert.equal('running', st.orch.phase)
      local ids = {}
      for i, e in ipairs(st.entries) do
        ids[i] = e.id
      end
      assert.same(IDS, ids)
      local e = by_id(st)
      assert.equal('daemon', e.web.kind)
      assert.same({ 'migrate' }, e.web.requires)
      assert.same({}, e.web.waitingOn)
      assert.same({ result = 'success', message = 'serving' }, e.web.health)
      assert.is_number(e.web.pid)
      assert.is_number(e.web.uptime)
      assert.equal(0, e.migrate.lastExit.code)
      assert.matches('^%d%d%d%d%-%d%d%-%d%dT', e.migrate.lastExit.time)
      local one = status(sock, 'web')
      assert.equal(1, #one.entries)
      assert.equal('web', one.entries[1].id)
      local bad = ctl(sock, 'status', 'nope')
      assert.equal(1, bad.code)
      assert.equal("orch: no entry 'nope' (entries: db, migrate, web, probe, chatty)\n", bad.err)
    end)

    it('prints the last lines of each entry with the run log prefixes', function()
      local r = ctl(sock, 'logs', '--no-color')
      assert.equal(0, r.code, r.err)
      local run_log = p:out()
      for line in r.out:gmatch('[^\n]+') do
        assert.truthy(run_log:find(line, 1, true), ('%q is not in the run log'):format(line))
      end
      assert.matches('^db      | db up\n', r.out)
      assert.truthy(r.out:find('migrate | migrated\n', 1, true))
      assert.truthy(r.out:find('web     | web up\nweb     | web warn\n', 1, true))
      local last = ctl(sock, 'logs', 'web', '-n', '1')
      assert.equal('web     | web warn\n', last.out)
      local two = ctl(sock, 'logs', '-n1', 'web', 'db')
      assert.equal('db      | db up\nweb     | web warn\n', two.out)
      local js = ctl(sock, 'logs', 'web', '--json')
      local objs = R.json_lines(js.out)
      assert.equal(2, #objs)
      assert.same({ 'web', 'stdout', 'web up' }, { objs[1].id, objs[1].stream, objs[1].line })
      assert.same({ 'web', 'stderr', 'web warn' }, { objs[2].id, objs[2].stream, objs[2].line })
      assert.matches('^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$', objs[1].ts)
      local ts = ctl(sock, 'logs', 'db', '--timestamps')
      assert.matches('^%d%d:%d%d:%d%d%.%d%d%d db      | db up\n$', ts.out)
      local bad = ctl(sock, 'logs', 'web', 'nope')
      assert.equal(1, bad.code)
      assert.matches("no entry 'nope'", bad.err)
    end)

    it('follows new lines and sends signals to the process group', function()
      local f = start({ 'logs', '-f', 'db', '--control', sock })
      f:wait_for('db      | db up\n', 5000, 'out', true)
      local r = ctl(sock, 'signal', 'db', 'HUP')
      assert.equal(0, r.code, r.err)
      local db_pid = status(sock, 'db').entries[1].pid
      assert.equal(('sent SIGHUP to db (pid %d)\n'):format(db_pid), r.out)
      f:wait_for('db      | db got HUP\n', 5000, 'out', true)
      assert.equal(0, ctl(sock, 'signal', 'db', 'SIGHUP').code)
      f:wait_for('db got HUP\n.*db got HUP\n', 5000)
      assert.is_nil(f:out():find('web', 1, true), 'only the entries asked for')
      assert.equal(db_pid, status(sock, 'db').entries[1].pid, 'db handled the signal')
      local none = ctl(sock, 'signal', 'probe', 'HUP')
      assert.equal(1, none.code)
      assert.equal('orch: probe is a health check: it has no process\n', none.err)
      local unknown = ctl(sock, 'signal', 'db', 'NOPE')
      assert.equal(2, unknown.code)
      assert.matches("unknown signal 'NOPE'", unknown.err)
      assert.is_false(f:exited())
    end)

    it('refreshes --watch on every change', function()
      local w = start({ 'status', '--watch', '--json', '--control', sock })
      w:wait_for('"type":"status"', 5000, 'out', true)
      local function last_probe()
        local objs = R.json_lines(w:out())
        local e = by_id(objs[#objs]).probe
        return e.result .. ' ' .. tostring(e.message), #objs
      end
      local _, first = last_probe()
      assert.equal(0, ctl(sock, 'stop', 'probe').code)
      R.wait_until(function()
        return last_probe() == 'disabled stopped'
      end, 5000, 'an update showing probe stopped')
      assert.equal(0, ctl(sock, 'start', 'probe').code)
      R.wait_until(function()
        return last_probe() == 'success ok'
      end, 5000, 'an update showing probe back')
      assert.is_true(select(2, last_probe()) > first + 1)
      local t = start({ 'status', '-w', 'web', '--control', sock })
      t:wait_for('^orch control %(pid %d+%)')
      assert.is_false(t:exited())
    end)

    it('answers malformed, oversized and unknown requests with error objects', function()
      local replies = R.json_lines(python('bad', sock))
      local codes = {}
      for i, o in ipairs(replies) do
        assert.equal(1, o.v)
        codes[i] = o.ok == false and o.error.code or o.type
      end
      assert.same({ 'bad-json', 'bad-request', 'unknown-command', 'bad-version', 'bad-request',
        'too-large', 'bad-request', 'bad-request', 'bad-request', 'bad-signal', 'bad-json',
        'bad-json', 'pong' }, codes)
      assert.equal('request line over 65536 bytes', replies[6].error.message)
      assert.matches("^unknown command 'frobnicate' %(one of: history, logs, ping, ",
        replies[3].error.message)
      assert.equal(5, status(sock).orch.ready)
    end)

    it('drops clients that never read while the graph keeps running', function()
      local web_pid = status(sock, 'web').entries[1].pid
      assert.equal('dropped\n', python('flood', sock, '4000'))
      p:wait_for('control: dropped a client that does not read', 5000, 'out', true)
      -- a log follower that never reads, then 20000 lines at once
      local out = tmpdir()
      os.execute(('%s %s follow %s >%s/follow 2>&1 &'):format(PYTHON, CLIENT, R.quote(sock), out))
      R.wait_until(function()
        return (R.read_file(out .. '/follow') or ''):find('following')
      end, 5000, 'the follower')
      assert.equal(0, ctl(sock, 'signal', 'chatty', 'USR1').code)
      R.wait_until(function()
        return (R.read_file(out .. '/follow') or ''):find('dropped')
      end, 20000, 'the follower to be dropped')
      assert.equal(2, count(p:out(), 'control: dropped a client that does not read'))
      p:wait_for('chatty  | chatty line 19999', 10000, 'out', true)
      local st = status(sock)
      assert.equal(5, st.orch.ready)
      assert.equal(web_pid, by_id(st).web.pid)
      assert.equal('chatty  | chatty line 19999 ' .. string.rep('.', 56) .. '\n',
        ctl(sock, 'logs', 'chatty', '-n', '1').out)
    end)

    it('refuses another uid, even when the socket is opened up', function()
      if R.capture('id -u'):gsub('%s', '') ~= '0' then
        pending('needs root to run a client as nobody')
        return
      end
      local nobody = 'setpriv --reuid=65534 --regid=65534 --clear-groups '
      -- the 0700 directory keeps nobody out
      assert.equal('EACCES\n', python('hello', sock, nil, nobody))
      -- reachable for this test only: then SO_PEERCRED does it
      assert(os.execute(('chmod 0711 %s && chmod 0666 %s'):format(R.quote(dir), R.quote(sock))))
      local out = python('hello', sock, nil, nobody)
      os.execute(('chmod 0700 %s && chmod 0600 %s'):format(R.quote(dir), R.quote(sock)))
      local line, rest = out:match('^([^\n]*)\n(.*)$')
      local reply = cjson.decode(line)
      assert.same({ v = 1, ok = false, error = { code = 'forbidden',
        message = 'uid 65534 may not control this orch (only uid 0 and root)' } }, reply)
      assert.equal('eof\n', rest)
      p:wait_for('control: refused a connection from uid 65534', 5000, 'out', true)
      assert.equal(5, status(sock).orch.ready)
    end)
  end)

  it('stop, start and restart act on an entry and what requires it', function()
    local sock = tmpdir() .. '/ctl.sock'
    local p = run_orch(sock)
    local st = by_id(all_ready(sock))
    local db1, web1, chatty = st.db.pid, st.web.pid, st.chatty.pid
    local r = ctl(sock, 'stop', 'db')
    assert.equal(0, r.code, r.err)
    assert.equal('stopped: db, migrate, web, probe\n', r.out)
    -- done when the command returns: dependents first
    st = by_id(status(sock))
    for _, id in ipairs({ 'db', 'migrate', 'web', 'probe' }) do
      assert.same({ 'disabled', 'stopped' }, { st[id].result, st[id].message })
      assert.is_nil(st[id].pid)
    end
    assert.same({ 'success', chatty }, { st.chatty.result, st.chatty.pid })
    assert.is_false(R.alive(db1))
    assert.is_false(R.alive(web1))
    local out = p:out()
    local web_gone = out:find(('web: exited with code 0 (pid %d)'):format(web1), 1, true)
    local db_term = out:find(('db: stopping (SIGTERM to pid %d)'):format(db1), 1, true)
    assert.truthy(web_gone and db_term and web_gone < db_term, 'web stopped before db')
    assert.matches('control: stop db %(from uid %d+', out)
    local text = ctl(sock, 'status').out
    assert.matches('\nweb +daemon +disabled +%- +%- +0 +code 0, %d+s ago +%- +stopped\n', text)

    r = ctl(sock, 'start', 'db')
    assert.equal('starting: db, migrate, web, probe\n', r.out)
    st = by_id(all_ready(sock))
    assert.are_not.equal(db1, st.db.pid)
    assert.are_not.equal(web1, st.web.pid)
    assert.equal(2, count(p:out(), 'migrate | migrated\n'))
    assert.equal('nothing to start: db and what requires it are not stopped\n',
      ctl(sock, 'start', 'db').out)

    local db2, web2 = st.db.pid, st.web.pid
    r = ctl(sock, 'restart', 'db')
    assert.equal('restarting: db, migrate, web, probe\n', r.out)
    st = by_id(all_ready(sock))
    assert.are_not.equal(db2, st.db.pid)
    assert.are_not.equal(web2, st.web.pid)
    assert.equal(chatty, st.chatty.pid)

    -- a dependent stopped on its own stays stopped through a restart of its requirement
    assert.equal('stopped: web, probe\n', ctl(sock, 'stop', 'web').out)
    local js = R.json_lines(ctl(sock, 'restart', 'db', '--json').out)[1]
    assert.same({ true, 'restarted', 'db', { 'db', 'migrate' } }, { js.ok, js.type, js.id,
      js.ids })
    R.wait_until(function()
      return by_id(status(sock)).migrate.result == 'success'
    end, 10000, 'migrate again')
    st = by_id(status(sock))
    assert.equal('disabled', st.web.result)
    assert.equal('disabled', st.probe.result)

    local bad = ctl(sock, 'restart', 'nope')
    assert.equal(1, bad.code)
    assert.matches("no entry 'nope'", bad.err)

    r = ctl(sock, 'shutdown')
    assert.same({ 0, 'stopped\n' }, { r.code, r.out })
    assert.equal(0, p:wait())
    assert.matches('control: shutdown requested', p:out())
    assert.matches('orch    | stopped\n$', p:out())
    assert.is_nil(R.read_file(sock), 'the socket is removed at exit')
    assert.is_nil(io.open(sock), 'the socket is removed at exit')
  end)

  it('uses the default socket, refuses a second orch with the same name', function()
    local cwd = R.ROOT .. '/spec/fixtures/control'
    local env = { ORCH_CONTROL = false }
    local path = '/run/orch/control.sock'
    if R.capture('id -u'):gsub('%s', '') ~= '0' then
      local xdg = tmpdir()
      env.XDG_RUNTIME_DIR = xdg
      path = xdg .. '/orch/control.sock'
    end
    local a = start({ 'run', MAIN }, { env = env })
    a:wait_for('chatty: starting %-> success', 15000)
    assert.equal('700', R.capture('stat -c %a ' .. R.quote(path:match('^(.*)/'))):gsub('%s', ''))
    -- a client in the script's directory finds it by default; elsewhere with --name
    local r = R.run({ 'status', '--json' }, { cwd = cwd, env = env })
    assert.equal(0, r.code, r.err)
    assert.equal(path, cjson.decode(r.out).orch.control)
    r = R.run({ 'status', '--name', 'control' }, { env = env })
    assert.equal(0, r.code, r.err)
    -- a socket nobody answers on is not a running orch
    local ghost = path:match('^(.*)/') .. ('/ghost-%d.sock'):format(a.pid)
    python('stale', ghost)
    finally(function()
      os.remove(ghost)
    end)
    r = R.run({ 'status', '--name', 'nope-not-running' }, { env = env })
    assert.equal(1, r.code)
    assert.matches("^orch: no orch named 'nope%-not%-running' is running %(no control socket at "
      .. '.-%); running: .*control', r.err)
    assert.is_nil(r.err:find('ghost-', 1, true), r.err)
    -- the same name again: refused, and the first one is untouched
    local b = R.run({ 'run', MAIN }, { env = env })
    assert.equal(1, b.code)
    assert.equal(('orch: another orch (pid %d, %s) is already running with the control socket '
      .. '%s; stop it, or give this one another --name or --control\n'):format(a.pid, MAIN, path),
      b.err)
    assert.equal('', b.out)
    r = R.run({ 'shutdown', '--name', 'control' }, { env = env })
    assert.equal(0, r.code, r.err)
    assert.equal(0, a:wait())
    assert.is_nil(io.open(path))
  end)

  it('replaces a stale socket and refuses a path that is not a socket', function()
    local dir = tmpdir()
    local sock = dir .. '/ctl.sock'
    python('stale', sock)
    assert.equal('socket', R.capture('stat -c %F ' .. R.quote(sock)):gsub('\n', ''))
    local p = run_orch(sock)
    assert.matches('replaced the stale control socket ' .. dir:gsub('%p', '%%%0'), p:out())
    all_ready(sock)
    -- and after a SIGKILL of orch, the next one takes over its socket
    p:kill()
    R.wait_until(function()
      return p:exited()
    end, 5000, 'orch to die')
    p = run_orch(sock)
    all_ready(sock)
    p:signal('TERM')
    assert.equal(0, p:wait())
    R.write_file(dir .. '/file', 'x')
    local r = R.run({ 'run', '--control', dir .. '/file', MAIN })
    assert.equal(1, r.code)
    assert.equal(("orch: '%s/file' exists and is not a socket\n"):format(dir), r.err)
  end)

  it('answers status and --watch on a graph of 6000 entries', function()
    local sock = tmpdir() .. '/ctl.sock'
    local p = start({ 'run', '--control', sock, BIG })
    p:wait_for('%(6000 daemons, 1 health check%)', 30000)
    local r = ctl(sock, 'status', '--json')
    assert.equal(0, r.code, r.err)
    local st = cjson.decode(r.out)
    assert.equal(6001, #st.entries)
    assert.equal('worker-06000', st.entries[6001].id)
    assert.is_true(#r.out > 1024 * 1024, 'a reply over the old 1 MiB limit')
    local text = ctl(sock, 'status')
    assert.equal(0, text.code, text.err)
    assert.equal(6003, count(text.out, '\n'))
    local w = start({ 'status', '--watch', '--json', '--control', sock })
    w:wait_for('"type":"status"', 10000, 'out', true)
    assert.equal(0, ctl(sock, 'stop', 'worker-00001').code)
    R.wait_until(function()
      local objs = R.json_lines(w:out())
      local last = objs[#objs]
      return #objs >= 2 and #last.entries == 6001 and last.entries[2].result == 'disabled'
    end, 10000, 'a watch update of 6001 entries showing worker-00001 stopped')
    assert.is_false(w:exited(), w:err())
    assert.is_nil(p:out():find('dropped a client', 1, true))
    p:signal('TERM')
    assert.equal(0, p:wait())
  end)

  describe('trust', function()
    -- Someone else (uid OTHER) answers at `sock` as if it were orch, for 20 s.
    local function fake_orch(sock)
      local out = tmpdir()
      os.execute(('chmod 0755 %s; %s%s %s fake %s 20 >%s/fake 2>&1 &'):format(R.quote(out),
        as_uid(OTHER), PYTHON, CLIENT, R.quote(sock), out))
      R.wait_until(function()
        return (R.read_file(out .. '/fake') or ''):find('listening')
      end, 5000, 'the fake orch')
    end

    it('a control command refuses a socket served by another uid', function()
      if not is_root() then
        pending('needs root to run two other uids')
        return
      end
      -- the victim's own directory, but open to everyone: the peer's uid gives it away
      local dir = tmpdir()
      os.execute(('chown %d %s && chmod 0777 %s'):format(NOBODY, R.quote(dir), R.quote(dir)))
      fake_orch(dir .. '/ctl.sock')
      local r = R.run({ 'stop', 'x', '--control', dir .. '/ctl.sock' },
        { prefix = as_uid(NOBODY) })
      assert.equal(1, r.code, r.out)
      assert.equal('', r.out)
      assert.equal(('orch: the control socket %s/ctl.sock is served by uid %d, not by uid %d or '
        .. 'root: refusing to talk to it\n'):format(dir, OTHER, NOBODY), r.err)
      -- a directory of someone else's is not trusted in the first place
      local theirs = tmpdir()
      os.execute(('chown %d %s && chmod 0777 %s'):format(OTHER, R.quote(theirs), R.quote(theirs)))
      fake_orch(theirs .. '/ctl.sock')
      r = R.run({ 'stop', 'x', '--control', theirs .. '/ctl.sock' }, { prefix = as_uid(NOBODY) })
      assert.equal(1, r.code, r.out)
      assert.equal(("orch: the control directory '%s' belongs to uid %d, not %d\n"):format(theirs,
        OTHER, NOBODY), r.err)
    end)

    it('orch run and the commands refuse a default directory someone else made', function()
      if not is_root() then
        pending('needs root to run two other uids')
        return
      end
      local dir = ('/tmp/orch-%d'):format(NOBODY)
      if R.capture('ls -d ' .. dir .. ' 2>/dev/null') ~= '' then
        pending(dir .. ' exists already')
        return
      end
      finally(function()
        os.execute('rm -rf ' .. dir)
      end)
      assert(os.execute(('mkdir -m 0777 %s && chown %d %s'):format(dir, OTHER, dir)))
      fake_orch(dir .. '/control.sock')
      local env = { ORCH_CONTROL = false, XDG_RUNTIME_DIR = false }
      local r = R.run({ 'stop', 'x', '--name', 'control' }, { prefix = as_uid(NOBODY), env = env })
      assert.equal(1, r.code, r.out)
      assert.equal(("orch: the control directory '%s' belongs to uid %d, not %d\n"):format(dir,
        OTHER, NOBODY), r.err)
      r = R.run({ 'run', MAIN }, { prefix = as_uid(NOBODY), env = env, timeout = 10 })
      assert.equal(1, r.code, r.err)
      local last = r.err:match('([^\n]*)\n$')
      assert.equal(("orch: cannot create the control socket: the control directory '%s' belongs "
        .. 'to uid %d, not %d (run with --no-control to go without it)'):format(dir, OTHER,
        NOBODY), last)
    end)
  end)

  it('reports usage errors and missing orchs', function()
    local cases = {
      { { 'stop' }, 2, "missing the entry id: orch stop ID (try 'orch stop --help')" },
      { { 'restart', 'a', 'b' }, 2, 'too many arguments' },
      { { 'logs', '-n', 'x' }, 2, "-n takes a count of lines, got 'x'" },
      { { 'status', '--bogus' }, 2, "unknown option '--bogus' for 'status'" },
      { { 'signal', 'db' }, 2, 'expected an entry id and a signal' },
      { { 'status', '--name', '../etc' }, 2, "invalid name '../etc'" },
      { { 'run', '--name', 'a/b', MAIN }, 2, "invalid name 'a/b'" },
      { { 'status', '--control', '/nonexistent/ctl.sock' }, 1,
        'no orch is running there (no control socket at /nonexistent/ctl.sock)' },
    }
    for _, c in ipairs(cases) do
      local r = R.run(c[1])
      assert.equal(c[2], r.code, table.concat(c[1], ' ') .. ': ' .. r.err)
      assert.truthy(r.err:find(c[3], 1, true), r.err)
    end
    for _, cmd in ipairs({ 'status', 'logs', 'stop', 'start', 'restart', 'signal', 'shutdown' }) do
      local r = R.run({ cmd, '--help' })
      assert.equal(0, r.code)
      assert.matches('^Usage: orch ' .. cmd, r.out)
    end
    local help = R.run({ '--help' })
    assert.matches('status %[id%]', help.out)
  end)
end)
