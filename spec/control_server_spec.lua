-- orch.control.* in process on the real core: where the socket goes, the protocol (framing,
-- errors, order, bounds), logs and follow, the operator commands against a stand-in chain,
-- a live or stale socket, and the rendering of `orch status`.
local H = require 'spec.support.helpers'

insulate('orch.control', function()
  H.real()
  local core = require 'orch.core'
  local sched = require 'orch.runtime.sched'
  local status = require 'orch.status'
  local json = require 'orch.runtime.json'
  local time = require 'orch.runtime.time'
  local paths = require 'orch.control.paths'
  local protocol = require 'orch.control.protocol'
  local server = require 'orch.control.server'
  local conn = require 'orch.control.conn'
  local render = require 'orch.control.render'
  local cjson = require 'cjson'

  local function sh(cmd)
    local f = assert(io.popen(cmd))
    local out = f:read('a')
    f:close()
    return (out:gsub('%s+$', ''))
  end

  describe('where the socket is', function()
    it('defaults to /run/orch as root, $XDG_RUNTIME_DIR/orch otherwise', function()
      local env = { XDG_RUNTIME_DIR = '/run/user/1000/' }
      local function getenv(k)
        return env[k]
      end
      assert.equal('/run/orch', paths.default_dir(0, getenv))
      assert.equal('/run/user/1000/orch', paths.default_dir(1000, getenv))
      env.XDG_RUNTIME_DIR = nil
      assert.equal('/tmp/orch-1000', paths.default_dir(1000, getenv))
      env.XDG_RUNTIME_DIR = 'relative'
      assert.equal('/tmp/orch-1000', paths.default_dir(1000, getenv))
    end)

    it("names an orch after its script's directory", function()
      assert.equal('app', paths.default_name('main.lua', '/srv/app'))
      assert.equal('app', paths.default_name('./main.lua', '/srv/app'))
      assert.equal('web', paths.default_name('../web/main.lua', '/srv/app'))
      assert.equal('x', paths.default_name('/opt/x/sub/../main.lua', '/'))
      assert.equal('my_app', paths.default_name('/opt/my app/main.lua'))
      assert.equal('root', paths.default_name('/main.lua'))
      assert.equal('srv', paths.default_name(nil, '/srv'))
    end)

    it('resolves --control, --name and the default', function()
      local r = paths.resolve({ name = 'api', uid = 0 })
      assert.same({ path = '/run/orch/api.sock', dir = '/run/orch', name = 'api',
        default = true }, r)
      r = paths.resolve({ script = 'main.lua', cwd = '/srv/shop', uid = 1000,
        getenv = function()
          return '/run/user/1000'
        end })
      assert.equal('/run/user/1000/orch/shop.sock', r.path)
      r = paths.resolve({ control = 'x/c.sock', cwd = '/tmp', name = 'n' })
      assert.same({ path = '/tmp/x/c.sock', dir = '/tmp/x', name = 'n', default = false }, r)
      local none, why = paths.resolve({ name = '../etc' })
      assert.is_nil(none)
      assert.matches("invalid name '%.%./etc'", why)
      assert.is_nil((paths.resolve({ name = '' })))
      assert.is_nil((paths.resolve({ name = ('x'):rep(65) })))
      assert.equal('a.b-c_1', paths.check_name('a.b-c_1'))
      assert.is_nil((paths.check_name('.hidden')))
    end)
  end)

  it('parses the times orch writes and names signals', function()
    for _, t in ipairs({ 0, 951782400.5, 1700000000.123, 4102444800.999 }) do
      assert.is_true(math.abs(time.parse_iso(time.iso(t)) - t) < 0.0015)
    end
    assert.is_nil(time.parse_iso('yesterday'))
    assert.equal('SIGHUP', protocol.signal_name('HUP'))
    assert.equal('SIGHUP', protocol.signal_name('sighup'))
    assert.equal('SIGTERM', protocol.signal_name(15))
    assert.equal('SIGKILL', protocol.signal_name('9'))
    assert.is_nil(protocol.signal_name('NOPE'))
    assert.is_nil(protocol.signal_name({}))
  end)

  it('renders a status reply as an aligned table', function()
    local now = 1700000100
    local reply = {
      orch = { name = 'shop', pid = 42, phase = 'running', uptime = 125000, ready = 1,
        total = 3 },
      entries = {
        { id = 'db', kind = 'daemon', result = 'success', pid = 77, uptime = 61000,
          restarts = 2, lastExit = { signal = 'SIGKILL', time = time.iso(now - 30) },
          health = { result = 'success', message = 'accepting' }, waitingOn = {} },
        { id = 'migrate', kind = 'oneshot', result = 'failure', restarts = 0,
          lastExit = { code = 3, time = time.iso(now - 4000) },
          message = 'migrate exited with code 3', waitingOn = {} },
        { id = 'web', kind = 'daemon', result = 'waiting', restarts = 0, waitingOn = { 'migrate' },
          health = { result = 'waiting', message = 'Migrate' } },
      },
    }
    local text = render.status(reply, { now = now * 1000, elapsed = 2000 })
    assert.equal(table.concat({
      'orch shop (pid 42): running, up 2m07s, 1/3 ready',
      'ID       KIND     STATE    PID  UPTIME  RESTARTS  LAST EXIT          WAITING ON  MESSAGE',
      'db       daemon   success  77   1m03s   2         SIGKILL, 30s ago   -           accepting',
      'migrate  oneshot  failure  -    -       0         code 3, 1h06m ago  -           '
        .. 'migrate exited with code 3',
      'web      daemon   waiting  -    -       0         -                  migrate     Migrate',
      '',
    }, '\n'), text)
    local colored = render.status(reply, { now = now * 1000, color = true })
    assert.truthy(colored:find('\27[31mfailure\27[0m', 1, true))
    assert.truthy(colored:find('\27[36mwaiting\27[0m', 1, true))
    reply.entries[1].health.result = 'starting'
    assert.matches('db +daemon +success %(starting%)',
      render.status(reply, { now = now * 1000, header = false }))
  end)

  describe('the server', function()
    local dir, where, sink, srv, logged, chain_ok, ops

    local chain = {
      entry = function(_, id)
        return ({ a = {}, b = {} })[id]
      end,
      entries = function()
        return { { id = 'a' }, { id = 'b' } }
      end,
      stopEntry = function(_, id)
        sched.sleep(50)
        ops[#ops + 1] = 'stop ' .. id
        return { id, 'b' }
      end,
      startEntry = function(_, id)
        ops[#ops + 1] = 'start ' .. id
        return { id }
      end,
      restartEntry = function(_, id)
        ops[#ops + 1] = 'restart ' .. id
        return { id }
      end,
      signalEntry = function(_, id, sig)
        ops[#ops + 1] = sig .. ' ' .. id
        if id == 'b' then
          return nil, 'b has no process running'
        end
        return 4242
      end,
    }

    local backend = {
      meta = function()
        return { pid = 1, phase = 'running', script = 'main.lua' }
      end,
      chain = function()
        if chain_ok then
          return chain
        end
        return nil, 'orch is stopping'
      end,
      shutdown = function()
        ops[#ops + 1] = 'shutdown'
      end,
      log = function(msg, level)
        logged[#logged + 1] = (level or 'info') .. ': ' .. msg
      end,
    }

    before_each(function()
      dir = sh('mktemp -d /tmp/orch-control-spec-XXXXXX')
      where = { path = dir .. '/run/t.sock', dir = dir .. '/run', name = 't', default = true }
      sink = status.new({ writer = false, ring = 100 })
      sink:declare({ { id = 'a', kind = 'daemon', requires = {} },
        { id = 'b', kind = 'daemon', requires = { 'a' } } })
      backend.sink = sink
      logged, ops, chain_ok = {}, {}, true
    end)

    after_each(function()
      if srv then
        srv:close()
        srv = nil
      end
      os.execute('rm -rf ' .. dir)
    end)

    -- A raw client: `send(bytes)`, `lines()` (decoded replies so far), `eof`.
    local function raw(path)
      local c = { data = {}, objs = {} }
      c.conn = assert(core.unix_connect(path, function() end))
      c.conn:read_start(function(chunk)
        if chunk then
          c.data[#c.data + 1] = chunk
        else
          c.eof = true
        end
      end)
      function c.send(s)
        assert(c.conn:write(s))
      end
      function c.lines() -- (not gmatch: it is quadratic on a long line without its newline)
        local out, all, pos = {}, table.concat(c.data), 1
        while true do
          local nl = all:find('\n', pos, true)
          if not nl then
            return out
          end
          out[#out + 1] = json.decode(all:sub(pos, nl - 1))
          pos = nl + 1
        end
      end
      function c.wait(n, what)
        return H.wait_until(function()
          return #c.lines() >= n and c.lines()
        end, 5000, 5, what or ('%d replies'):format(n))
      end
      return c
    end

    local function listen()
      local s, e = server.listen(where, backend)
      assert(s, e)
      srv = s
      return s
    end

    local function codes(objs)
      local out = {}
      for i, o in ipairs(objs) do
        assert.equal(1, o.v)
        out[i] = o.ok == false and o.error.code or o.type
      end
      return out
    end

    it('creates its directory 0700 and the socket 0600, and removes the socket', function()
      H.run(function()
        listen()
        assert.equal('700', sh('stat -c %a ' .. where.dir))
        assert.equal('600', sh('stat -c %a ' .. where.path))
        srv:close()
        srv = nil
        assert.is_nil(core.lstat(where.path))
        -- a default directory is made private again; someone else's file is left alone
        os.execute('chmod 0755 ' .. where.dir)
        listen()
        assert.equal('700', sh('stat -c %a ' .. where.dir))
        os.remove(where.path)
        os.execute('touch ' .. where.path)
        srv:close()
        srv = nil
        assert.equal('file', core.lstat(where.path).type)
        local none, e = server.listen(where, backend)
        assert.is_nil(none)
        assert.equal(("'%s' exists and is not a socket"):format(where.path), e)
        os.remove(where.path)
        local file = { path = dir .. '/f/x.sock', dir = dir .. '/f', default = false }
        os.execute('touch ' .. file.dir)
        none, e = server.listen(file, backend)
        assert.is_nil(none)
        assert.equal(("'%s' is not a directory"):format(file.dir), e)
      end)
    end)

    it('refuses a live socket and replaces a stale one', function()
      H.run(function()
        listen()
        local none, e = server.listen(where, backend)
        assert.is_nil(none)
        assert.equal(('another orch (pid 1, main.lua) is already running with the control '
          .. 'socket %s; stop it, or give this one another --name or --control'):format(
          where.path), e)
        -- a socket nobody listens on any more
        srv.listener:close()
        srv = nil
        local again, _, note = server.listen(where, backend)
        assert(again)
        srv = again
        assert.equal('replaced the stale control socket ' .. where.path, note)
        local c = raw(where.path)
        c.send('{"cmd":"ping"}\n')
        assert.same({ 'pong' }, codes(c.wait(1)))
        c.conn:close()
      end)
    end)

    it('answers pipelined and fragmented requests in order', function()
      H.run(function()
        listen()
        local c = raw(where.path)
        local all = {}
        for i = 1, 200 do
          all[i] = i % 2 == 0 and '{"v":1,"cmd":"ping"}' or '{"cmd":"status","id":"a"}'
        end
        c.send(table.concat(all, '\n') .. '\n')
        local got = c.wait(200)
        for i = 1, 200 do
          assert.equal(i % 2 == 0 and 'pong' or 'status', got[i].type)
        end
        assert.equal('a', got[1].entries[1].id)
        -- byte by byte, then an oversized line in pieces, then a request without its newline
        local c2 = raw(where.path)
        for ch in ('{"cmd":"ping"}\n'):gmatch('.') do
          c2.send(ch)
          sched.sleep(1)
        end
        for _ = 1, 20 do
          c2.send(('y'):rep(8192))
        end
        c2.send('\n  \n{"cmd":"ping"}')
        assert(c2.conn:shutdown())
        assert.same({ 'pong', 'too-large', 'pong' }, codes(c2.wait(3)))
        H.wait_until(function()
          return c2.eof
        end, 5000, 5, 'the server to close after answering')
        c.conn:close()
        c2.conn:close()
      end)
    end)

    it('sends the last lines ordered across entries, then follows', function()
      H.run(function()
        listen()
        sink:output('a', 'stdout', 'a1\na2\n')
        sink:output('b', 'stderr', 'b1\n')
        sink:output('a', 'stdout', 'a3\n')
        local c = raw(where.path)
        c.send('{"cmd":"logs","n":2}\n{"cmd":"logs","ids":["b"],"n":0,"follow":true}\n')
        local got = c.wait(6)
        assert.same({ 'logs', 'line', 'line', 'line', 'end', 'logs' }, codes(got))
        assert.same({ 'a', 'b' }, got[1].ids)
        assert.same({ 'a2', 'b1', 'a3' }, { got[2].line, got[3].line, got[4].line })
        assert.same({ 'b', 'stderr' }, { got[3].id, got[3].stream })
        assert.is_true(got[2].seq < got[3].seq and got[3].seq < got[4].seq)
        assert.is_true(got[6].follow)
        sink:output('a', 'stdout', 'not followed\n')
        sink:output('b', 'stdout', 'b2\n')
        got = c.wait(7)
        assert.same({ 'b', 'b2' }, { got[7].id, got[7].line })
        c.send('{"cmd":"logs","ids":["zz"]}\n')
        got = c.wait(8)
        assert.same({ 'unknown-entry', "no entry 'zz' (entries: a, b)" },
          { got[8].error.code, got[8].error.message })
        c.conn:close()
      end)
    end)

    it('acts on entries through the chain, in order, and says when it cannot', function()
      H.run(function()
        listen()
        local c = raw(where.path)
        c.send(table.concat({
          '{"cmd":"stop","id":"a"}', '{"cmd":"start","id":"a"}', '{"cmd":"restart","id":"b"}',
          '{"cmd":"signal","id":"a","signal":"hup"}', '{"cmd":"signal","id":"b","signal":1}',
          '{"cmd":"stop","id":"zz"}', '{"cmd":"stop","id":null}',
        }, '\n') .. '\n')
        local got = c.wait(7)
        assert.same({ 'stopped', 'started', 'restarted', 'signalled', 'no-process',
          'unknown-entry', 'bad-request' }, codes(got))
        assert.same({ 'a', 'b' }, got[1].ids)
        assert.same({ 'SIGHUP', 4242 }, { got[4].signal, got[4].pid })
        assert.same({ 'stop a', 'start a', 'restart b', 'SIGHUP a', 'SIGHUP b' }, ops)
        chain_ok = false
        c.send('{"cmd":"restart","id":"a"}\n{"cmd":"shutdown"}\n')
        got = c.wait(9)
        assert.same({ 'unavailable', 'orch is stopping' }, { got[8].error.code,
          got[8].error.message })
        assert.equal('stopping', got[9].type)
        assert.equal('shutdown', ops[#ops])
        assert.truthy(logged[1]:find('info: control: stop a (from uid', 1, true))
        c.conn:close()
      end)
    end)

    it('drops a client that does not read, and keeps serving the others', function()
      H.run(function()
        listen()
        -- the handshake: the reply says the server follows; from then on the client never reads
        local idle = raw(where.path)
        idle.send('{"cmd":"logs","follow":true,"n":0}\n')
        assert.is_true(idle.wait(1, 'the follow reply')[1].follow)
        idle.conn:read_stop()
        local line = ('z'):rep(1000) .. '\n'
        for _ = 1, 4000 do
          sink:output('a', 'stdout', line)
          if next(srv.conns) == nil then
            break
          end
        end
        assert.is_nil(next(srv.conns), 'the client was not dropped')
        assert.matches('^warning: control: dropped a client that does not read %(1%d%d%d KiB '
          .. 'waiting%)', logged[#logged])
        local c = raw(where.path)
        c.send('{"cmd":"status"}\n')
        assert.same({ 'status' }, codes(c.wait(1)))
        idle.conn:close()
        c.conn:close()
      end)
    end)

    it('watches the status: one update per burst of changes', function()
      H.run(function()
        local s = listen()
        local c = raw(where.path)
        c.send('{"cmd":"status","watch":true}\n')
        c.wait(1)
        for i = 1, 20 do
          sink:onState({ id = 'a', kind = 'daemon', result = i % 2 == 0 and 'success'
            or 'starting' })
        end
        sink:output('a', 'stdout', 'output is not a change\n')
        local got = c.wait(2)
        assert.equal('status', got[2].type)
        assert.is_nil(got[2].ok)
        assert.equal('success', got[2].entries[1].result)
        s:changed() -- the orch phase changed
        c.wait(3)
        -- the handshake that nothing more is pending: a second watcher's update follows every
        -- update of the first one already scheduled (same delay, timer started later), and the
        -- pong to a ping sent after it closes the first one's count: one more update, no other
        local c2 = raw(where.path)
        c2.send('{"cmd":"status","watch":true}\n')
        c2.wait(1)
        sink:onState({ id = 'b', kind = 'daemon', result = 'failure' })
        c2.wait(2, "the second watcher's update")
        c.send('{"cmd":"ping"}\n')
        got = c.wait(5, 'the pong')
        assert.same({ 'status', 'status', 'status', 'status', 'pong' }, codes(got))
        assert.equal('failure', got[4].entries[2].result)
        c2.conn:close()
        c.conn:close()
      end)
    end)

    it('says that a version given as a string is not a number', function()
      H.run(function()
        listen()
        local c = raw(where.path)
        c.send('{"v":"1","cmd":"ping"}\n{"v":2,"cmd":"ping"}\n{"v":1.5,"cmd":"ping"}\n')
        local got = c.wait(3)
        assert.same({ 'bad-version', 'bad-version', 'bad-version' }, codes(got))
        assert.equal('the protocol version must be an integer, got the string "1" (this orch '
          .. 'speaks 1)', got[1].error.message)
        assert.equal('unsupported protocol version 2 (this orch speaks 1)', got[2].error.message)
        assert.equal('the protocol version must be an integer, got a float 1.5 (this orch '
          .. 'speaks 1)', got[3].error.message)
        c.conn:close()
      end)
    end)

    describe('bounds on connections', function()
      local saved = {}
      before_each(function()
        saved = { server.MAX_PER_UID, conn.IDLE, conn.STALL }
      end)
      after_each(function()
        server.MAX_PER_UID, conn.IDLE, conn.STALL = table.unpack(saved)
      end)

      local function count_conns(s)
        local n = 0
        for _ in pairs(s.conns) do
          n = n + 1
        end
        return n
      end

      it('refuses connections beyond the cap per uid, and takes them again below it', function()
        server.MAX_PER_UID = 3
        H.run(function()
          local s = listen()
          local open = {}
          for i = 1, 3 do
            open[i] = raw(where.path)
            open[i].send('{"cmd":"ping"}\n')
            open[i].wait(1)
          end
          local extra = raw(where.path)
          local got = extra.wait(1)
          assert.same({ 'busy' }, codes(got))
          assert.equal('too many control connections (at most 64, 3 per uid)',
            got[1].error.message)
          extra.conn:close()
          H.wait_until(function()
            return count_conns(s) == 3
          end, 5000, 5, 'the refused connection to go')
          assert.matches('^warning: control: refusing connections: 3 open, 3 from uid %d+',
            logged[#logged])
          open[1].conn:close()
          H.wait_until(function()
            return count_conns(s) == 2
          end, 5000, 5, 'a connection to go')
          local again = raw(where.path)
          again.send('{"cmd":"ping"}\n')
          assert.same({ 'pong' }, codes(again.wait(1)))
          for i = 2, 3 do
            open[i].conn:close()
          end
          again.conn:close()
        end)
      end)

      it('closes a connection idle for IDLE ms, but not one that watches', function()
        conn.IDLE = 200
        H.run(function()
          listen()
          local idle = raw(where.path)
          idle.send('{"cmd":"ping"}\n{"cmd":"pi') -- half a request does not count
          local watcher = raw(where.path)
          watcher.send('{"cmd":"status","watch":true}\n')
          watcher.wait(1)
          H.wait_until(function()
            return idle.eof
          end, 5000, 5, 'the idle connection to be closed')
          assert.same({ 'pong' }, codes(idle.lines()))
          assert.matches('^warning: control: closed a connection idle for 0 s %(from uid',
            logged[#logged])
          sched.sleep(400)
          assert.is_nil(watcher.eof)
          watcher.conn:close()
        end)
      end)

      it('writes a big status in pieces as it is read, and drops a client that stalls', function()
        local many = {}
        for i = 1, 6000 do
          many[i] = { id = ('entry-%05d'):format(i), kind = 'daemon', requires = {} }
        end
        sink:declare(many, { reset = true })
        H.run(function()
          local s = listen()
          local c = raw(where.path)
          c.send('{"cmd":"status"}\n{"cmd":"ping"}\n')
          local got = c.wait(2)
          assert.equal(6000, #got[1].entries)
          assert.equal('entry-06000', got[1].entries[6000].id)
          assert.equal('pong', got[2].type)
          assert.is_true(#table.concat(c.data) > 600 * 1024)
          c.conn:close()
          -- a client that asks and never reads
          conn.STALL = 300
          local idle = assert(core.unix_connect(where.path, function() end))
          idle:write(('{"cmd":"status"}\n'):rep(4))
          H.wait_until(function()
            return logged[#logged] and logged[#logged]:find('dropped a client', 1, true)
          end, 5000, 5, 'the client that does not read to be dropped')
          assert.is_nil(next(s.conns))
          idle:close()
        end)
      end)
    end)

    it('encodes every reply as valid JSON, output bytes included', function()
      H.run(function()
        listen()
        sink:output('a', 'stdout', 'bad \255\254 bytes\n')
        local c = raw(where.path)
        c.send('{"cmd":"logs","ids":"a"}\n')
        local got = c.wait(3)
        assert.equal('bad \u{FFFD}\u{FFFD} bytes', got[2].line)
        assert.is_truthy(cjson.decode(table.concat(c.data):match('^[^\n]*')))
        c.conn:close()
      end)
    end)
  end)
end)
