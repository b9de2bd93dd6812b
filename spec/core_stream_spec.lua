-- orch.core Unix-domain streams: unix_listen, unix_connect and the orch.stream connection,
-- driving the loop directly against real sockets in a fresh directory per test.
local core = require 'orch.core'
local H = require 'spec.support.helpers'

local PYTHON = '/usr/bin/python3' -- the system one: a user's pyenv is not readable by nobody

-- Run the loop until nothing is active; fail if that takes longer than `ms`.
local function run_loop(ms)
  H.drive_loop(core, ms)
end

-- Drive the loop until `pred()` is truthy, checking every 5 ms; fail after `ms` (the shared
-- wait: outside a task it drives the real core's loop between polls).
local function wait_until(pred, ms, what)
  return require('spec.support.wait').wait_until(pred, ms or 5000, 5, what)
end

local function sh(cmd)
  local f = assert(io.popen(cmd))
  local out = f:read('a')
  f:close()
  return (out:gsub('%s+$', ''))
end

-- A line-echo server: every complete line comes back upper-cased. Returns the server and a
-- table of its live connections.
local function line_server(path)
  local conns = {}
  local srv = assert(core.unix_listen(path, function(conn)
    conns[conn] = true
    local buf = ''
    conn:read_start(function(chunk)
      if not chunk then
        conns[conn] = nil
        conn:close()
        return
      end
      buf = buf .. chunk
      for line in buf:gmatch('([^\n]*)\n') do
        conn:write(line:upper() .. '\n')
      end
      buf = buf:match('[^\n]*$')
    end)
  end))
  return srv, conns
end

-- A client that collects what it reads into `rec.data`; `rec.done` once EOF arrived.
local function collecting_client(path)
  local rec = { data = {}, chunks = 0 }
  rec.conn = assert(core.unix_connect(path, function(err)
    rec.connect_err = err
  end))
  assert(rec.conn:read_start(function(chunk, err)
    if chunk then
      rec.data[#rec.data + 1] = chunk
      rec.chunks = rec.chunks + 1
    else
      rec.done, rec.err = true, err
    end
  end))
  function rec.text()
    return table.concat(rec.data)
  end
  return rec
end

-- Every handle a test creates, closed after it (close is idempotent) so that a failing test
-- leaves nothing behind for the next one.
local created = {}
local function track(h, ...)
  if h then
    created[#created + 1] = h
  end
  return h, ...
end

describe('core unix streams', function()
  local dir, path
  local listen, connect = core.unix_listen, core.unix_connect

  before_each(function()
    dir = sh('mktemp -d /tmp/orch-stream-spec-XXXXXX')
    path = dir .. '/ctl.sock'
    core.unix_listen = function(...)
      return track(listen(...))
    end
    core.unix_connect = function(...)
      return track(connect(...))
    end
  end)

  after_each(function()
    core.unix_listen, core.unix_connect = listen, connect
    collectgarbage()
    collectgarbage()
    local left = core.active_count() -- measured before the safety net below
    for _, h in ipairs(created) do
      h:close()
    end
    created = {}
    run_loop()
    os.execute('rm -rf ' .. dir)
    assert.equals(0, left, 'a test left active handles')
  end)

  it('creates the socket with mode 0600 and refuses a second listener', function()
    local srv = assert(core.unix_listen(path, function() end))
    assert.equals('600', sh('stat -c %a ' .. path))
    assert.equals('socket', sh('stat -c %F ' .. path))
    local again, msg, code = core.unix_listen(path, function() end)
    assert.is_nil(again)
    assert.equals('EADDRINUSE', code)
    assert.equals(("bind '%s': address already in use"):format(path), msg)
    assert.matches('^orch%.stream %(0x%x+%)$', tostring(srv))
    srv:close()
    assert.equals('orch.stream (closed)', tostring(srv))
    assert.truthy(os.remove(path), 'the socket file is the caller to remove')
  end)

  it('round-trips many lines in order', function()
    local srv = line_server(path)
    local rec = collecting_client(path)
    local expected = {}
    local batch = {}
    for i = 1, 2000 do
      batch[#batch + 1] = ('line %d of the test'):format(i)
      expected[#expected + 1] = ('LINE %d OF THE TEST'):format(i)
      if #batch == 37 then -- uneven writes: lines straddle chunk boundaries
        assert(rec.conn:write(table.concat(batch, '\n') .. '\n'))
        batch = {}
      end
    end
    assert(rec.conn:write(table.concat(batch, '\n') .. '\n'))
    local want = table.concat(expected, '\n') .. '\n'
    wait_until(function()
      return #rec.text() >= #want
    end, 5000, 'all the echoed lines')
    assert.is_nil(rec.connect_err)
    assert.equals(want, rec.text())
    rec.conn:close()
    srv:close()
    run_loop()
  end)

  it('delivers a 1 MB message whole, in several chunks, both ways', function()
    local parts = {}
    for i = 1, 1024 * 1024 // 16 do
      parts[i] = ('%015d\n'):format(i)
    end
    local big = table.concat(parts)
    assert.equals(1024 * 1024, #big)
    local received, chunks = {}, 0
    local srv = assert(core.unix_listen(path, function(conn)
      conn:read_start(function(chunk)
        if chunk then
          received[#received + 1] = chunk
          chunks = chunks + 1
        else -- the whole request is in: answer with it and half-close
          assert(conn:write(table.concat(received)))
          assert(conn:shutdown(function()
            conn:close()
          end))
        end
      end)
    end))
    local rec = collecting_client(path)
    assert(rec.conn:write(big))
    assert(rec.conn:shutdown())
    wait_until(function()
      return rec.done
    end, 5000, 'the echoed message')
    assert.equals(#big, #table.concat(received))
    assert.is_true(table.concat(received) == big)
    assert.is_true(chunks > 1, 'one chunk only')
    assert.is_true(rec.text() == big)
    assert.is_true(rec.chunks > 1)
    assert.is_nil(rec.err)
    rec.conn:close()
    srv:close()
    run_loop()
  end)

  it('lets the queue of a client that never reads grow past a bound while the loop runs', function()
    local BOUND = 4 * 1024 * 1024
    local block = string.rep('x', 64 * 1024)
    local ticks, max_gap, last = 0, 0, core.hrtime()
    local ticker = core.timer()
    ticker:start(5, 5, function()
      local now = core.hrtime()
      max_gap = math.max(max_gap, (now - last) // 1000000)
      last = now
      ticks = ticks + 1
    end)
    local dropped_at
    local srv = assert(core.unix_listen(path, function(conn)
      local pump = core.timer()
      pump:start(0, 1, function()
        assert(conn:write(block))
        if conn:write_queue_size() > BOUND then -- the policy a Lua layer applies
          dropped_at = conn:write_queue_size()
          pump:close()
          conn:close()
        end
      end)
    end))
    local idle = assert(core.unix_connect(path, function() end)) -- never reads
    wait_until(function()
      return dropped_at
    end, 10000, 'the queue to pass the bound')
    assert.is_true(dropped_at > BOUND)
    assert.is_true(ticks >= 5, ('the timer fired %d times only'):format(ticks))
    -- real clock: a stall of the real loop under a flood is what is measured
    assert.is_true(max_gap < 500, ('the loop stalled for %d ms'):format(max_gap))
    ticker:close()
    idle:close()
    srv:close()
    run_loop()
  end)

  it('passes peer EOF to the read callback, after a shutdown and after a close', function()
    local events = {}
    local srv = assert(core.unix_listen(path, function(conn)
      conn:read_start(function(chunk, err)
        if chunk then
          events[#events + 1] = chunk
        else
          events[#events + 1] = 'EOF ' .. tostring(err)
          conn:close()
        end
      end)
    end))
    local a = assert(core.unix_connect(path, function() end))
    assert(a:write('a'))
    assert(a:shutdown())
    wait_until(function()
      return #events == 2
    end, 5000, 'EOF after shutdown')
    assert.same({ 'a', 'EOF nil' }, events)
    a:close()
    local b
    b = assert(core.unix_connect(path, function()
      b:close()
    end))
    wait_until(function()
      return #events == 3
    end, 5000, 'EOF after close')
    assert.equals('EOF nil', events[3])
    srv:close()
    run_loop()
  end)

  it('keeps serving other clients after one misbehaves', function()
    local srv, conns = line_server(path)
    -- 1: half a line, then gone; 2: connects and closes at once; 3: floods and never reads
    local c1 = assert(core.unix_connect(path, function() end))
    c1:write('no newline and then a vanishing act')
    local c2
    c2 = assert(core.unix_connect(path, function()
      c2:close()
    end))
    local flood = assert(core.unix_connect(path, function() end))
    flood:write(string.rep('shout\n', 200000))
    wait_until(function()
      return next(conns) ~= nil
    end, 5000, 'the server to accept')
    c1:close()
    -- the server drops whoever it cannot write to fast enough
    local dropped = 0
    local reaper = core.timer()
    reaper:start(1, 5, function()
      for conn in pairs(conns) do
        if conn:write_queue_size() > 256 * 1024 then
          conns[conn] = nil
          conn:close()
          dropped = dropped + 1
        end
      end
    end)
    wait_until(function()
      return dropped == 1
    end, 5000, 'the flooding client to be dropped')
    local good = collecting_client(path)
    good.conn:write('hello\n')
    wait_until(function()
      return good.text() == 'HELLO\n'
    end, 5000, 'the well-behaved client')
    local peer = select(1, good.conn:peercred())
    assert.equals(core.getpid(), peer)
    good.conn:write('again\n')
    wait_until(function()
      return good.text() == 'HELLO\nAGAIN\n'
    end, 5000, 'a second answer')
    reaper:close()
    good.conn:close()
    flood:close()
    srv:close()
    for conn in pairs(conns) do
      conn:close()
    end
    run_loop()
  end)

  it('reports a write to a vanished peer as EPIPE and never raises', function()
    local results = {}
    local srv = assert(core.unix_listen(path, function(conn)
      conn:read_start(function(chunk)
        if chunk then
          return
        end
        for i = 1, 2 do
          results[i] = { conn:write('too late\n') }
        end
        conn:close()
      end)
    end))
    local c
    c = assert(core.unix_connect(path, function()
      c:close()
    end))
    wait_until(function()
      return #results == 2
    end, 5000, 'the writes')
    assert.same({ nil, 'write: broken pipe', 'EPIPE' }, results[1])
    assert.same(results[1], results[2])
    srv:close()
    run_loop()
  end)

  it('calls back ENOENT for a missing socket, and never after close', function()
    local got
    local c = assert(core.unix_connect(dir .. '/missing.sock', function(code, msg)
      got = { code, msg }
    end))
    run_loop()
    assert.same({ 'ENOENT', ("connect '%s': no such file or directory"):format(dir ..
      '/missing.sock') }, got)
    c:close()
    local called = false
    local d = assert(core.unix_connect(dir .. '/missing.sock', function()
      called = true
    end))
    d:close()
    run_loop()
    assert.is_false(called)
  end)

  describe('with a client running as nobody', function()
    local procs = {}

    -- Run python3 as uid/gid 65534 with `script` and the socket path as argv[1]; its stdout
    -- goes to `out`.
    local function as_nobody(script, out)
      local proc = assert(core.spawn({ 'setpriv', '--reuid=65534', '--regid=65534',
        '--clear-groups', PYTHON, '-c', script, path }, {
        stdout = function(chunk)
          if chunk then
            out[#out + 1] = chunk
          end
        end,
      }, function(code)
        out.exit = code
      end))
      procs[#procs + 1] = proc
      return proc:pid()
    end

    after_each(function()
      for _, proc in ipairs(procs) do
        proc:close()
      end
      procs = {}
      run_loop()
    end)

    it('peercred reports uid 65534', function()
      if core.getuid() ~= 0 then
        pending('needs root to run a client as nobody (setpriv)')
        return
      end
      local creds
      local srv = assert(core.unix_listen(path, function(conn)
        creds = { conn:peercred() }
        conn:read_start(function(chunk)
          if not chunk then
            conn:close()
          end
        end)
        conn:write('bye\n')
        conn:shutdown()
      end))
      -- the 0700 test directory and the 0600 socket would keep nobody out: open them up
      assert(os.execute(('chmod 0711 %s && chmod 0666 %s'):format(dir, path)))
      local out = {}
      local pid = as_nobody([[
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
print(s.makefile().readline().strip(), flush=True)
]], out)
      wait_until(function()
        return out.exit ~= nil
      end, 10000, 'the nobody client')
      assert.equals(0, out.exit)
      assert.equals('bye\n', table.concat(out))
      assert.equals(pid, creds[1])
      assert.equals(65534, creds[2])
      assert.equals(65534, creds[3])
      srv:close()
      run_loop()
    end)

    it('cannot even connect while the socket keeps mode 0600', function()
      if core.getuid() ~= 0 then
        pending('needs root to run a client as nobody (setpriv)')
        return
      end
      local accepted = false
      local srv = assert(core.unix_listen(path, function(conn)
        accepted = true
        conn:close()
      end))
      assert(os.execute(('chmod 0711 %s'):format(dir)))
      local out = {}
      as_nobody([[
import errno, socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
    print('connected')
except OSError as e:
    print(errno.errorcode[e.errno])
]], out)
      wait_until(function()
        return out.exit ~= nil
      end, 10000, 'the nobody client')
      assert.equals('EACCES\n', table.concat(out))
      assert.is_false(accepted)
      srv:close()
      run_loop()
    end)
  end)
end)
