-- orch ui, orch run --ui and the start-up progress line, driven as a person would inside
-- tmux (#integration): keys with send-keys, the screen with capture-pane, every wait a screen
-- condition with a deadline.
local R = require 'fixtures.cli.runner'
local tmux = require 'fixtures.ui.tmux'
local cjson = require 'cjson'

local GATE_LUA = R.ROOT .. '/spec/fixtures/ui/gate.lua'
local IDS = { 'fast', 'slow', 'after', 'quiet' }

local session = R.session()

local has_tmux = os.execute('command -v tmux >/dev/null 2>&1')

-- The pid on the screen in the row of entry `id` (nil when it shows none).
local function pid_on_screen(screen, id)
  for _, l in ipairs(tmux.lines(screen)) do
    local pid = l:match('^' .. id .. '%s+%a+%s+%S+%s+(%d+)%s')
    if pid then
      return tonumber(pid)
    end
  end
  return nil
end

-- Whether the table on `screen` has a row for entry `id` (not a log line: id, kind, state).
local function row(screen, id)
  return screen:match('\n' .. id .. ' +%a+ +%a') ~= nil
end

local function status(sock)
  local r = R.run({ 'status', '--json', '--control', sock }, { timeout = 15 })
  assert(r.code == 0, 'orch status failed: ' .. r.err)
  local by_id = {}
  for _, e in ipairs(cjson.decode(r.out).entries) do
    by_id[e.id] = e
  end
  return by_id
end

-- The terminal is back to normal: the main screen, and a line discipline that echoes and
-- edits lines (stty asked at the shell prompt).
local function assert_restored(t)
  assert.equal('0', t:format('#{alternate_on}'))
  t:run('clear; stty -a | tr " " "\\n" | grep -x -e icanon -e echo -e -icanon -e -echo '
    .. '| tr "\\n" " "; echo STTY-DONE')
  local screen = t:wait_screen('STTY-DONE\n', 5000, 'the stty output')
  assert.matches('icanon echo STTY%-DONE', screen)
end

local function wait_ready(sock, n)
  return R.wait_until(function()
    local r = R.run({ 'status', '--json', '--control', sock }, { timeout = 15 })
    if r.code == 0 then
      local o = cjson.decode(r.out).orch
      return o.ready == n and o.total == n
    end
  end, 20000, 'every entry ready')
end

describe('orch ui #integration', function()
  teardown(session.cleanup)
  if not has_tmux then
    pending('tmux is not installed (make deps installs it)')
    return
  end

  describe('attached to a running orch', function()
    local p, sock, dir, t

    setup(function()
      dir = session.tmpdir()
      sock = dir .. '/ctl.sock'
      R.write_file(dir .. '/gate', '')
      p = session.start({ 'run', '--no-contain', '--control', sock, GATE_LUA },
        { env = { ORCH_UI_GATE = dir .. '/gate' } })
      wait_ready(sock, 4)
    end)

    teardown(function()
      if t then
        t:kill()
      end
      if p then
        p:signal('TERM')
        p:wait()
      end
    end)

    before_each(function()
      t = tmux.new(100, 30)
      t:run(('%s ui --control %s'):format(R.quote(R.ORCH), R.quote(sock)))
      t:wait_screen('4/4 ready', 10000)
    end)

    after_each(function()
      t:kill()
      t = nil
    end)

    it('shows every entry, with its pid, and the log pane', function()
      local screen = t:wait_screen(function(s)
        return s:find('\nfast +| fast up') and s:find('\nslow +| slow up')
      end, 10000, 'the log lines of fast and slow')
      local st = status(sock)
      for _, id in ipairs(IDS) do
        assert.is_true(row(screen, id), id)
      end
      assert.equal(st.fast.pid, pid_on_screen(screen, 'fast'))
      assert.equal(st.slow.pid, pid_on_screen(screen, 'slow'))
      assert.equal('1', t:format('#{alternate_on}'))
      assert.matches('logs: all', screen)
      assert.matches('q quit  %? help', screen)
    end)

    it('restarts the selected entry on r: its pid on screen changes', function()
      local before = pid_on_screen(t:screen(), 'fast')
      assert.is_number(before)
      t:keys('r') -- fast is the first row, selected
      local screen = t:wait_screen(function(s)
        local now = pid_on_screen(s, 'fast')
        return now and now ~= before
      end, 15000, 'a new pid for fast')
      assert.matches('restarting: fast', screen)
      assert.equal(status(sock).fast.pid, pid_on_screen(screen, 'fast'))
    end)

    it('redraws at the new size when the window is resized', function()
      t:resize(80, 24)
      local screen = t:wait_screen(function(s)
        for _, id in ipairs(IDS) do
          if not row(s, id) then
            return false -- every row drawn (a redraw may still be under way)
          end
        end
        local lines = tmux.lines(s)
        for _, l in ipairs(lines) do
          if l:match('^%-%-  logs: all') then
            return #l == 80 and lines[24]:match('^q quit')
          end
        end
      end, 10000, 'every row, the log rule 80 wide and the key line on row 24')
      for _, id in ipairs(IDS) do
        assert.is_true(row(screen, id), id)
      end
      t:resize(120, 40)
      t:wait_screen(function(s)
        local lines = tmux.lines(s)
        for _, l in ipairs(lines) do
          if l:match('^%-%-  logs: all') then
            return #l == 120 and lines[40] and lines[40]:match('^q quit')
          end
        end
      end, 10000, 'the log rule 120 wide and the key line on row 40')
    end)

    it('filters by text, hides hidden entries, shows the tree and the help', function()
      t:keys('/')
      t:type('slo')
      t:keys('Enter')
      t:wait_screen(function(s)
        return row(s, 'slow') and not row(s, 'fast') and s:find('filter: slo', 1, true)
      end, 5000, 'only slow')
      t:keys('Escape')
      t:wait_screen(function(s)
        return row(s, 'fast')
      end, 5000, 'the filter cleared')
      t:keys('h')
      t:wait_screen(function(s)
        return row(s, 'fast') and not row(s, 'quiet')
      end, 5000, 'quiet (hidden) gone')
      t:keys('h', 't')
      t:wait_screen('`-- after  success', 5000, 'after under slow in the tree')
      t:keys('?')
      t:wait_screen('orch ui: keys', 5000, 'the help')
      t:keys('x', 't')
      t:wait_screen('\nID ', 5000, 'the table again')
    end)

    it('stops, starts and signals the selected entry', function()
      t:keys('s')
      t:wait_screen('stopped: fast', 15000)
      t:wait_screen(function(s)
        return s:match('\nfast%s+daemon%s+disabled%s+%-')
      end, 10000, 'fast disabled, no pid')
      t:keys('S')
      t:wait_screen(function(s)
        return s:match('\nfast%s+daemon%s+success%s+%d+')
      end, 15000, 'fast running again')
      t:keys('k')
      t:wait_screen('signal for fast', 5000)
      t:type('BOGUS', true)
      t:wait_screen("unknown signal 'BOGUS'", 5000)
      local pid = pid_on_screen(t:screen(), 'fast')
      t:keys('k')
      t:type('CONT', true) -- harmless: the entry stays as it is for the next spec
      t:wait_screen(('sent SIGCONT to fast (pid %d)'):format(pid), 10000)
    end)

    it('restores the terminal when q quits', function()
      t:keys('q')
      t:wait_screen(tmux.SHOWN, 5000, 'the prompt back')
      assert_restored(t)
    end)

    it('restores the terminal on SIGTERM, SIGINT and SIGHUP', function()
      t:keys('q')
      t:wait_screen(tmux.SHOWN, 5000)
      local shell = tonumber(t:format('#{pane_pid}'))
      for _, sig in ipairs({ 'TERM', 'INT', 'HUP' }) do
        t:run(('clear; %s ui --control %s; echo "UI-EXIT $?"'):format(R.quote(R.ORCH),
          R.quote(sock)))
        t:wait_screen('4/4 ready', 10000)
        local ui_pid = tonumber((R.capture(('pgrep -P %d -x orch'):format(shell))))
        assert.is_number(ui_pid, 'the orch ui process')
        os.execute(('kill -%s %d'):format(sig, ui_pid))
        t:wait_screen('UI-EXIT 0', 5000, 'orch ui gone after SIG' .. sig)
        assert_restored(t)
      end
    end)

    it('follows the selected entry in the log pane on enter', function()
      t:keys('Down') -- slow
      t:keys('Enter')
      local screen = t:wait_screen('--  logs: slow', 5000, 'the log pane on slow')
      assert.matches('\nslow +| slow up', screen)
      assert.is_nil(screen:match('\nfast +| fast up'), 'only slow in the pane')
      t:keys('l')
      t:wait_screen('--  logs: all', 5000, 'the log pane on all entries')
    end)

    it('suspends on SIGTSTP with the terminal restored, and comes back on fg', function()
      local shell = tonumber(t:format('#{pane_pid}'))
      local ui_pid = tonumber((R.capture(('pgrep -P %d -x orch'):format(shell))))
      assert.is_number(ui_pid, 'the orch ui process')
      os.execute(('kill -TSTP %d'):format(ui_pid))
      t:wait_screen(function(s)
        return s:lower():find('stopped') and s:find(tmux.SHOWN, 1, true)
      end, 5000, 'the job stopped')
      assert_restored(t)
      t:run('fg')
      t:wait_screen('4/4 ready', 5000, 'the UI back')
      assert.equal('1', t:format('#{alternate_on}'))
    end)

    it('suspends on ctrl-z and comes back on fg', function()
      t:keys('C-z')
      t:wait_screen(function(s)
        return s:lower():find('stopped') and s:find(tmux.SHOWN, 1, true)
      end, 5000, 'the job stopped')
      assert.equal('0', t:format('#{alternate_on}'))
      t:run('fg')
      t:wait_screen('4/4 ready', 5000, 'the UI back')
      assert.equal('1', t:format('#{alternate_on}'))
    end)
  end)

  it('exits with the terminal restored when orch stops', function()
    local dir = session.tmpdir()
    local sock = dir .. '/ctl.sock'
    R.write_file(dir .. '/gate', '')
    local p = session.start({ 'run', '--no-contain', '--control', sock, GATE_LUA },
      { env = { ORCH_UI_GATE = dir .. '/gate' } })
    wait_ready(sock, 4)
    local t = tmux.new(100, 30)
    finally(function()
      t:kill()
    end)
    t:run(('%s ui --control %s; echo "UI-EXIT $?"'):format(R.quote(R.ORCH), R.quote(sock)))
    t:wait_screen('4/4 ready', 10000)
    p:signal('TERM')
    assert.equal(0, p:wait())
    local screen = t:wait_screen('UI-EXIT 0', 10000)
    assert.matches('orch: the orch has stopped', screen, 1, true)
    assert_restored(t)
  end)

  it('refuses to run without a terminal (exit 2)', function()
    local r = R.run({ 'ui', '--control', '/nonexistent/ctl.sock' })
    assert.equal(2, r.code)
    assert.matches('stdout is not a terminal: orch ui needs a terminal', r.err, 1, true)
    r = R.run({ 'run', '--ui', GATE_LUA }, { env = { ORCH_UI_GATE = '/nonexistent' } })
    assert.equal(2, r.code)
    assert.matches('--ui: stdout is not a terminal', r.err, 1, true)
    assert.equal('', r.out)
  end)

  it('finds the orch by its NAME', function()
    local dir = session.tmpdir()
    local name = ('ui-spec-%d'):format(math.random(1e9))
    R.write_file(dir .. '/gate', '')
    local p = session.start({ 'run', '--no-contain', '--name', name, GATE_LUA },
      { env = { ORCH_UI_GATE = dir .. '/gate', ORCH_CONTROL = false } })
    local t = tmux.new(100, 30)
    finally(function()
      t:kill()
      p:signal('TERM')
      p:wait()
    end)
    t:run(('%s ui %s; echo "UI-EXIT $?"'):format(R.quote(R.ORCH), name))
    t:wait_screen(('orch %s (pid %d): running'):format(name, p.pid), 15000)
    t:keys('q')
    t:wait_screen('UI-EXIT 0', 5000)
    local r = R.run({ 'ui', 'a', 'b' })
    assert.equal(2, r.code)
    assert.matches('too many arguments', r.err, 1, true)
  end)

  it('says why when no orch runs there (exit 1)', function()
    local t = tmux.new(100, 30)
    finally(function()
      t:kill()
    end)
    t:run(('%s ui --control /tmp/no-such-orch-ui.sock; echo "UI-EXIT $?"'):format(
      R.quote(R.ORCH)))
    local screen = t:wait_screen('UI-EXIT 1', 10000)
    assert.matches('no orch is running there', screen, 1, true)
    assert.equal('0', t:format('#{alternate_on}'))
  end)

  describe('orch run --ui', function()
    it('runs the graph in the UI; q stops orch and shows its shutdown', function()
      local dir = session.tmpdir()
      R.write_file(dir .. '/gate', '')
      local sock = dir .. '/ctl.sock'
      local t = tmux.new(100, 30)
      finally(function()
        R.run({ 'shutdown', '--control', sock }) -- if the spec failed with orch still up
        t:kill()
      end)
      t:run(('ORCH_UI_GATE=%s %s run --ui --no-contain --control %s %s; echo "RUN-EXIT $?"')
        :format(R.quote(dir .. '/gate'), R.quote(R.ORCH), R.quote(sock), R.quote(GATE_LUA)))
      local screen = t:wait_screen(function(s)
        if not s:find('4/4 ready', 1, true) then
          return false
        end
        for _, id in ipairs(IDS) do
          if not row(s, id) then
            return false
          end
        end
        return true
      end, 15000, '4/4 ready and every row')
      for _, id in ipairs(IDS) do
        assert.is_true(row(screen, id), id)
      end
      assert.equal('1', t:format('#{alternate_on}'))
      local before = pid_on_screen(screen, 'fast')
      t:keys('r')
      t:wait_screen(function(s)
        local now = pid_on_screen(s, 'fast')
        return now and now ~= before
      end, 15000, 'a new pid for fast')
      t:keys('q')
      screen = t:wait_screen('RUN-EXIT 0', 15000)
      assert.matches('ui: quit: stopping', screen, 1, true)
      assert.matches('orch  | stopped', screen, 1, true)
      assert_restored(t)
    end)
  end)

  describe('the start-up progress line of orch run', function()
    local function start_in(t, dir, extra)
      t:run(('ORCH_UI_GATE=%s %s run --no-contain --no-control %s %s; echo "RUN-EXIT $?"')
        :format(R.quote(dir .. '/gate'), R.quote(R.ORCH), extra or '', R.quote(GATE_LUA)))
    end

    it('shows what is waited on, on a terminal, and clears once everything is ready',
      function()
        local dir = session.tmpdir()
        local t = tmux.new(100, 30)
        finally(function()
          t:keys('C-c')
          t:kill()
        end)
        start_in(t, dir)
        local screen = t:wait_screen('orch: starting, 2/4 ready; waiting on slow (starting), '
          .. 'after (waiting: slow)', 15000)
        -- on the last line written, below the log
        local lines = tmux.lines((screen:gsub('%s+$', '')))
        assert.matches('^orch: starting, 2/4 ready', lines[#lines])
        R.write_file(dir .. '/gate', '')
        t:wait_screen('after: starting -> success', 15000)
        t:wait_screen(function(s)
          return not s:find('orch: starting,', 1, true)
        end, 5000, 'the progress line cleared')
        t:keys('C-c')
        t:wait_screen('RUN-EXIT 0', 15000)
      end)

    it('never appears with --log-format json', function()
      local dir = session.tmpdir()
      local t = tmux.new(100, 30)
      finally(function()
        t:keys('C-c')
        t:kill()
      end)
      start_in(t, dir, '--log-format json')
      t:wait_screen('"id":"after","event":"state"', 15000)
      assert.is_nil(t:screen():find('orch: starting', 1, true))
      t:keys('C-c')
      t:wait_screen('RUN-EXIT 0', 15000)
    end)

    it('never appears on a pipe', function()
      local dir = session.tmpdir()
      local p = session.start({ 'run', '--no-contain', GATE_LUA },
        { env = { ORCH_UI_GATE = dir .. '/gate' } })
      p:wait_for('after: none -> waiting', 15000, nil, true)
      R.write_file(dir .. '/gate', '')
      p:wait_for('after: starting -> success', 15000, nil, true)
      p:signal('TERM')
      assert.equal(0, p:wait())
      assert.is_nil(p:out():find('orch: starting', 1, true))
      assert.is_nil(p:out():find('\27[K', 1, true))
    end)
  end)
end)
