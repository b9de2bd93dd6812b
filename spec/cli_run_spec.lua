-- `orch run` end to end: signals, reload, state dump, --until-ready, logs, status file,
-- sd_notify and PID 1 mode. Runs the real build/bin/orch (tagged #integration).
local R = require 'fixtures.cli.runner'
local cjson = require 'cjson'

local F = R.FIXTURES

local function pid_of(text, id)
  local pid
  for p in text:gmatch(id .. ': started %(pid (%d+)') do
    pid = tonumber(p)
  end
  return pid
end

local function read_json(path)
  local s = R.read_file(path)
  if not s or s == '' then
    return nil
  end
  return cjson.decode(s)
end

local session = R.session() -- what the specs start and make, cleaned up after each
local start, tmpdir = session.start, session.tmpdir

local function all_ready(p)
  return p:wait_for('probe: starting %-> success', 10000)
end

describe('orch run #integration', function()
  after_each(session.cleanup)

  describe('signals', function()
    for _, sig in ipairs({ 'INT', 'TERM' }) do
      it('stops the graph in order on SIG' .. sig .. ' and exits 0', function()
        local p = start({ 'run', F .. '/ok.lua' })
        local text = all_ready(p)
        local web = assert(pid_of(text, 'web'))
        assert.is_true(R.alive(web))
        p:signal(sig)
        assert.equal(0, p:wait())
        local out = p:out()
        assert.matches('SIG' .. sig .. ': stopping', out)
        assert.matches('web: stopping', out)
        assert.matches('orch  | stopped\n$', out)
        assert.is_false(R.alive(web))
      end)
    end

    it('SIGKILLs every group and exits 1 on a second SIGINT', function()
      local p = start({ 'run', F .. '/trap_term.lua' })
      local text = p:wait_for('stubborn | trapped')
      local pid = assert(pid_of(text, 'stubborn'))
      p:signal('INT')
      p:wait_for('stubborn: stopping')
      p:wait_for('ignoring TERM') -- the SIGTERM arrived and was ignored
      assert.is_false(p:exited())
      local t0 = R.now()
      p:signal('INT')
      assert.equal(1, p:wait(5000))
      -- real clock: the second SIGINT's kill in the real binary, which no virtual clock reaches
      assert.is_true(R.now() - t0 < 3)
      assert.matches('SIGINT again: killing every process group', p:out())
      assert.matches('stubborn: killed by SIGKILL', p:out())
      assert.is_false(R.alive(pid))
    end)

    it('still exits 0 when the orderly shutdown had to SIGKILL after sigtermTimeout',
      function()
        local p = start({ 'run', F .. '/trap_term.lua', '300' })
        local pid = assert(pid_of(p:wait_for('stubborn | trapped'), 'stubborn'))
        p:signal('TERM')
        assert.equal(0, p:wait(5000))
        assert.matches('stubborn: did not stop in time, sent SIGKILL', p:out())
        assert.matches('stubborn: killed by SIGKILL', p:out())
        assert.is_false(R.alive(pid))
      end)

    it('dumps the state of every entry to stderr on SIGQUIT and SIGUSR1, and keeps running',
      function()
        local p = start({ 'run', F .. '/ok.lua' })
        all_ready(p)
        p:signal('QUIT')
        local err = p:wait_for('SIGQUIT: state of', 5000, 'err')
        R.wait_until(function()
          err = p:err()
          return err:find('probe  health', 1, true)
        end, 5000, 'the dump table')
        assert.matches('ID%s+KIND%s+STATE%s+PID%s+UPTIME%s+RESTARTS%s+LAST EXIT%s+WAITING ON%s+'
          .. 'MESSAGE', err)
        assert.matches('\nprep%s+oneshot%s+success%s+%-%s+%-%s+0%s+code 0', err)
        assert.matches('\nweb%s+daemon%s+success%s+%d+%s+%d+s%s+0%s+%-%s+%-%s+up', err)
        assert.matches('3/3 ready', err)
        p:signal('USR1')
        p:wait_for('SIGUSR1: state of', 5000, 'err')
        assert.is_false(p:exited())
        p:signal('TERM')
        assert.equal(0, p:wait())
      end)
  end)

  describe('SIGHUP', function()
    it('reloads a changed script: the old graph stops in order, the new one starts',
      function()
        local dir = tmpdir()
        local main = dir .. '/main.lua'
        local status_path = dir .. '/status.json'
        R.write_file(main, R.read_file(F .. '/ok.lua'))
        local p = start({ 'run', '--status-file', status_path, main })
        local web = assert(pid_of(all_ready(p), 'web'))
        R.write_file(main, R.read_file(F .. '/setup.lua'))
        p:signal('HUP')
        p:wait_for('reloaded: 1 entry %(1 daemon%)')
        p:wait_for('echo +| arg=none reload=1')
        assert.is_false(R.alive(web))
        local out = p:out()
        assert.truthy(out:find('web: stopping', 1, true) < out:find('echo: started', 1, true))
        local doc = R.wait_until(function()
          local d = read_json(status_path)
          return d and #d.entries == 1 and d.entries[1].result == 'success' and d
        end, 5000, 'the new graph in the status file')
        assert.equal('echo', doc.entries[1].id)
        assert.equal(1, doc.orch.reloads)
        p:signal('INT')
        assert.equal(0, p:wait())
      end)

    it('keeps the old graph running when the new script fails', function()
      local dir = tmpdir()
      local main = dir .. '/main.lua'
      R.write_file(main, R.read_file(F .. '/ok.lua'))
      local p = start({ 'run', main })
      local web = assert(pid_of(all_ready(p), 'web'))
      R.write_file(main, 'return 1 +\n')
      p:signal('HUP')
      p:wait_for('reload failed, the current graph keeps running')
      p:wait_for('main%.lua:2: unexpected symbol')
      R.write_file(main, R.read_file(F .. '/invalid.lua'))
      p:signal('HUP')
      p:wait_for('sigtermTimout')
      assert.is_true(R.alive(web))
      assert.is_nil(p:out():find('web: stopping', 1, true))
      p:signal('INT')
      assert.equal(0, p:wait())
    end)
  end)

  describe('--until-ready', function()
    it('exits 0 once every entry is ready, after a clean shutdown', function()
      local p = start({ 'run', '--until-ready', F .. '/ok.lua' })
      assert.equal(0, p:wait(15000))
      local out = p:out()
      assert.matches('every entry was ready; stopped cleanly', out)
      local web = assert(pid_of(out, 'web'))
      assert.is_false(R.alive(web))
    end)

    it('exits 1 with per-entry diagnostics on timeout', function()
      local t0 = R.now()
      local p = start({ 'run', '--until-ready=1500', F .. '/never_ready.lua' })
      assert.equal(1, p:wait(15000))
      -- real clock: --until-ready's timer in the real binary (1.5 s), far from the 15 s wait
      assert.is_true(R.now() - t0 < 8)
      local err = p:err()
      assert.matches('^orch: Timed out waiting for never', err)
      assert.matches('not today', err)
      local fine = assert(pid_of(p:out(), 'fine'))
      assert.is_false(R.alive(fine))
    end)
  end)

  describe('logs', function()
    it('prefixes every output line with its aligned id and passes bytes through', function()
      local p = start({ 'run', F .. '/output.lua' })
      p:wait_for('bad \255\254 bytes', 10000, 'out', true)
      p:signal('TERM')
      assert.equal(0, p:wait())
      local out = p:out()
      assert.truthy(out:find('talker | line one\ntalker | line two\n', 1, true))
      assert.truthy(out:find('talker | to stderr\n', 1, true))
      assert.truthy(out:find('orch   | talker: none -> ', 1, true))
      -- the 100 KiB line is split at 64 KiB, nothing dropped
      local pieces = {}
      for xs in out:gmatch('talker | (x+)\n') do
        pieces[#pieces + 1] = #xs
      end
      assert.same({ 65536, 102400 - 65536 }, pieces)
      -- the unterminated last line is written once the process is gone
      assert.truthy(out:find('talker | no newline at the end\n', 1, true))
      assert.is_nil(out:find('\27[', 1, true)) -- no colour: not a TTY
    end)

    it('writes one JSON object per line, every line parses', function()
      local p = start({ 'run', '--log-format', 'json', F .. '/output.lua' })
      p:wait_for('"line":"bad \u{FFFD}\u{FFFD} bytes"', 10000, 'out', true)
      p:wait_for('"result":"success"', 10000, 'out', true)
      p:signal('TERM')
      assert.equal(0, p:wait())
      local objs = R.json_lines(p:out())
      local streams, events, long = {}, {}, 0
      for _, o in ipairs(objs) do
        assert.is_string(o.ts)
        assert.matches('^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$', o.ts)
        assert.is_string(o.id)
        assert.truthy(o.stream or o.event, 'stream or event')
        if o.stream then
          assert.equal('talker', o.id)
          streams[o.stream .. ':' .. (o.line:match('^x+$') and 'x' or o.line)] = true
          if o.line:match('^x+$') then
            long = long + #o.line
          end
        else
          events[o.event] = (events[o.event] or 0) + 1
        end
      end
      assert.is_true(streams['stdout:line one'])
      assert.is_true(streams['stderr:to stderr'])
      assert.is_true(streams['stdout:no newline at the end'])
      assert.equal(102400, long)
      assert.truthy(events.state and events.spawn and events.exit and events.log)
      local spawn
      for _, o in ipairs(objs) do
        if o.event == 'spawn' then
          spawn = o
        end
      end
      assert.is_number(spawn.pid)
      local state
      for _, o in ipairs(objs) do
        if o.event == 'state' and o.result == 'success' then
          state = o
        end
      end
      assert.same({ 'talker', 'talking' }, { state.id, state.message })
    end)

    it('logs the warnings of add* calls in the log format, not as text on stderr', function()
      local r = R.run({ 'run', '--no-control', '--log-format', 'json', '--until-ready=10000',
        F .. '/add_warning.lua' })
      assert.equal(0, r.code, r.err)
      assert.equal('', (r.err:gsub('orch: [^\n]*contain[^\n]*\n', '')))
      local warned
      for _, o in ipairs(R.json_lines(r.out)) do
        if o.event == 'log' and o.level == 'warning' and o.message:find('ready.display is ""', 1,
          true) then
          warned = o
        end
      end
      assert.truthy(warned, r.out)
    end)

    it('adds timestamps with --timestamps and colours with --color', function()
      local p = start({ 'run', '--timestamps', '--color', F .. '/ok.lua' })
      all_ready(p)
      p:signal('INT')
      assert.equal(0, p:wait())
      local out = p:out()
      assert.matches('^%d%d:%d%d:%d%d%.%d%d%d \27%[1morch  |\27%[0m running', out)
      assert.matches('\n%d%d:%d%d:%d%d%.%d%d%d \27%[%d+mweb   |\27%[0m web up\n', out)
      local q = start({ 'run', '--no-color', '--timestamps', F .. '/ok.lua' },
        { env = { NO_COLOR = '1' } })
      all_ready(q)
      q:signal('INT')
      assert.equal(0, q:wait())
      assert.is_nil(q:out():find('\27', 1, true))
    end)
  end)

  describe('--status-file', function()
    it('holds the state of every entry, rewritten on every change', function()
      local dir = tmpdir()
      local path = dir .. '/status.json'
      local p = start({ 'run', '--status-file', path, F .. '/ok.lua' })
      all_ready(p)
      local doc = R.wait_until(function()
        local d = read_json(path)
        return d and d.ready == 3 and d
      end, 5000, 'every entry ready in the status file')
      assert.same({ 1, 3, 'running' }, { doc.v, doc.total, doc.orch.phase })
      assert.equal(p.pid, doc.orch.pid)
      local byid = {}
      for i, e in ipairs(doc.entries) do
        byid[e.id] = e
        e.index = i
      end
      assert.same({ 1, 2, 3 }, { byid.prep.index, byid.web.index, byid.probe.index })
      assert.same({ 'oneshot', 'success', 0 },
        { byid.prep.kind, byid.prep.result, byid.prep.lastExit.code })
      assert.same({ 'daemon', 'success', 'up', 0 },
        { byid.web.kind, byid.web.result, byid.web.message, byid.web.restarts })
      assert.is_number(byid.web.pid)
      assert.same({ 'prep' }, byid.web.requires)
      assert.same({}, byid.prep.requires)
      assert.is_string(byid.web.since)
      -- no temporary file left beside it
      assert.equal('status.json\n', R.capture('ls ' .. R.quote(dir)))
      p:signal('INT')
      assert.equal(0, p:wait())
      doc = read_json(path)
      assert.equal('stopped', doc.orch.phase)
    end)

    it('fails with exit 1 when the file cannot be written', function()
      local r = R.run({ 'run', '--status-file', '/nonexistent/dir/s.json', F .. '/ok.lua' })
      assert.equal(1, r.code)
      assert.matches('cannot write the status file', r.err)
    end)
  end)

  describe('sd_notify', function()
    it('sends STATUS counts, READY=1 once everything is ready, and STOPPING=1', function()
      local dir = tmpdir()
      local sock, msgs = dir .. '/notify.sock', dir .. '/msgs'
      os.execute(('python3 %s/notify_recv.py %s %s >/dev/null 2>&1 &'):format(F, sock, msgs))
      local rpid = R.wait_until(function()
        return tonumber(R.read_file(msgs .. '.pid') or '')
      end, 20000, 'the notify receiver') -- python3 alone took 2.6 s to start under load
      local p = start({ 'run', F .. '/ok.lua' }, { env = { NOTIFY_SOCKET = sock } })
      R.wait_until(function()
        return (R.read_file(msgs) or ''):find('READY=1', 1, true)
      end, 10000, 'READY=1')
      p:signal('TERM')
      assert.equal(0, p:wait())
      local got = R.wait_until(function()
        local s = R.read_file(msgs) or ''
        return s:find('STOPPING=1', 1, true) and s
      end, 5000, 'STOPPING=1')
      R.write_file(msgs .. '.stop', '')
      os.execute('kill ' .. rpid .. ' 2>/dev/null')
      local list = {}
      for m in got:gmatch('(.-)\n%-%-\n') do
        list[#list + 1] = m
      end
      assert.equal('STATUS=0/3 ready (waiting for prep, web, probe)', list[1])
      local ready_at
      for i, m in ipairs(list) do
        if m:find('READY=1', 1, true) then
          assert.is_nil(ready_at, 'READY=1 sent once')
          ready_at = i
        end
      end
      assert.equal('READY=1\nSTATUS=3/3 ready', list[ready_at])
      assert.equal('STOPPING=1\nSTATUS=stopping', list[#list])
    end)
  end)

  describe('as PID 1', function()
    it('reaps every orphan and stops cleanly on SIGTERM', function()
      if R.capture('unshare --pid --fork --mount-proc true 2>&1; echo $?'):match('(%d+)%s*$')
        ~= '0' then
        pending('unshare --pid is not permitted here')
        return
      end
      local p = start({ 'run', F .. '/orphans.lua' },
        { prefix = 'unshare --pid --fork --mount-proc --kill-child' })
      p:wait_for('running .* %(pid 1%)')
      p:wait_for('parent | orphans made')
      -- orch is the child of unshare; the orphans are re-parented to it and must be reaped
      local orch = R.wait_until(function()
        return tonumber((R.capture('pgrep -P ' .. p.pid):match('%d+')))
      end, 5000, 'orch inside the namespace')
      local function children()
        local out = {}
        for line in R.capture(('ps -o pid=,stat=,comm= --ppid %d'):format(orch)):gmatch(
          '[^\n]+') do
          out[#out + 1] = line
        end
        return out
      end
      R.wait_until(function()
        local c = children()
        return #c == 1 and c[1]:match('sleep') and not c[1]:match(' Z')
      end, 5000, 'the orphans to be reaped (no zombie left)')
      os.execute('kill -TERM ' .. orch)
      assert.equal(0, p:wait())
      assert.matches('parent: stopping', p:out())
      assert.matches('stopped\n$', p:out())
    end)
  end)
end)
