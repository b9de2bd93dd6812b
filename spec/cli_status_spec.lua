-- Unit specs for orch.status (the sink the Daemons layer reports to, with orch.output_ring)
-- and the SIGQUIT dump's rendering. No core needed.
local status = require 'orch.status'
local log = require 'orch.log'

local function make(opts)
  opts = opts or {}
  local out = {}
  local t, wall = 0, 1700000000.0
  local sink = status.new({
    writer = log.new({
      color = false,
      out = function(s)
        out[#out + 1] = s
      end,
      clock = function()
        return wall
      end,
    }),
    ring = opts.ring,
    now = function()
      return t
    end,
    wallclock = function()
      return wall
    end,
    max_line = opts.max_line,
  })
  local clock = {
    advance = function(ms)
      t = t + ms
      wall = wall + ms / 1000
    end,
  }
  return sink, function()
    return table.concat(out)
  end, clock
end

describe('status.Sink', function()
  describe(':onState', function()
    it('logs a line only when the result changes', function()
      local sink, text = make()
      sink:onState({ id = 'db', kind = 'daemon', result = 'starting', visible = false })
      sink:onState({ id = 'db', kind = 'daemon', result = 'starting', message = 'still' })
      sink:onState({ id = 'db', kind = 'daemon', result = 'success', message = 'ready' })
      assert.equal('orch | db: none -> starting\norch | db: starting -> success (ready)\n',
        text())
    end)

    it('records result, message, kind and since', function()
      local sink, _, clock = make()
      sink:onState({ id = 'db', kind = 'oneshot', result = 'starting' })
      clock.advance(1500)
      sink:onState({ id = 'db', kind = 'oneshot', result = 'failure', message = 'exit 2' })
      local s = sink:get('db')
      assert.same({ 'oneshot', 'failure', 'exit 2', 1700000001.5 },
        { s.kind, s.result, s.message, s.since })
    end)

    it('notifies subscribers of result and message changes', function()
      local sink = make()
      local seen = {}
      local unsub = sink:subscribe(function(ev)
        seen[#seen + 1] = ev.type .. ':' .. ev.id .. ':' .. tostring(ev.result)
      end)
      sink:onState({ id = 'a', result = 'starting' })
      sink:onState({ id = 'a', result = 'starting' })
      sink:onState({ id = 'a', result = 'starting', message = 'm' })
      unsub()
      sink:onState({ id = 'a', result = 'success' })
      assert.same({ 'state:a:starting', 'state:a:starting' }, seen)
    end)

    it('survives a failing subscriber and logs it', function()
      local sink, text = make()
      sink:subscribe(function()
        error('boom')
      end)
      assert.has_no.errors(function()
        sink:onState({ id = 'a', result = 'starting' })
      end)
      assert.matches('status subscriber failed: .*boom', text())
    end)
  end)

  describe(':setHealth', function()
    it('keeps the display name and health of visible entries', function()
      local sink = make()
      sink:onState({ id = 'web', kind = 'daemon', result = 'starting', visible = true })
      sink:setHealth({ id = 'web', name = 'Web UI', result = 'failure', message = 'refused' })
      local s = sink:get('web')
      assert.equal('Web UI', s.name)
      assert.same({ result = 'failure', message = 'refused' }, s.health)
      assert.equal('starting', s.result) -- the raw result is onState's
    end)

    it('is what the log shows for visible entries (softened within the grace period)',
      function()
        local sink, text = make()
        local function both(raw, shown, msg)
          sink.onState({ id = 'web', kind = 'daemon', result = raw, message = msg,
            visible = true })
          sink.setHealth({ id = 'web', name = 'Web', result = shown, message = msg })
        end
        both('starting', 'starting')
        both('failure', 'starting', 'refused') -- inside the grace period
        both('success', 'success', 'up')
        both('failure', 'failure', 'down')
        assert.equal(table.concat({
          'orch | web: none -> starting',
          'orch | web: starting -> success (up)',
          'orch | web: success -> failure (down)',
          '',
        }, '\n'), text())
        assert.equal('failure', sink:get('web').result)
      end)

    it('acts as the state for callers that only report health', function()
      local sink, text = make()
      sink:setHealth({ id = 'x', name = 'X', result = 'success', message = 'ok' })
      assert.equal('success', sink:get('x').result)
      assert.equal('orch | x: none -> success (ok)\n', text())
    end)
  end)

  describe(':onProcess', function()
    it('tracks pid, uptime, restarts and the last exit', function()
      local sink, text, clock = make()
      sink:onProcess({ id = 'w', event = 'spawn', pid = 42, restarts = 0 })
      clock.advance(2500)
      local s = sink:get('w')
      assert.same({ 42, 2500, 0 }, { s.pid, s.uptime, s.restarts })
      sink:onProcess({ id = 'w', event = 'exit', pid = 42, code = 1, restarts = 0 })
      s = sink:get('w')
      assert.is_nil(s.pid)
      assert.is_nil(s.uptime)
      assert.same({ code = 1, time = 1700000002.5 }, s.lastExit)
      sink:onProcess({ id = 'w', event = 'spawn', pid = 43, restarts = 1 })
      assert.equal(1, sink:get('w').restarts)
      assert.equal(table.concat({
        'orch | w: started (pid 42)',
        'orch | w: exited with code 1 (pid 42)',
        'orch | w: started (pid 43, restart #1)',
        '',
      }, '\n'), text())
    end)

    it('records spawn errors', function()
      local sink = make()
      sink:onProcess({ id = 'w', event = 'spawn-error', message = 'no such file' })
      assert.equal('no such file', sink:get('w').lastExit.error)
    end)
  end)

  describe(':output', function()
    it('logs complete lines with the entry prefix and keeps partial lines', function()
      local sink, text = make()
      sink:output('web', 'stdout', 'GET /\nGET ')
      assert.equal('web  | GET /\n', text()) -- aligned with 'orch'
      sink:output('web', 'stdout', '/x\n')
      sink:output('web', 'stderr', 'warn')
      sink:output('web', 'stderr', nil)
      assert.equal('web  | GET /\nweb  | GET /x\nweb  | warn\n', text())
    end)

    it('keeps stdout and stderr partial lines apart', function()
      local sink = make()
      sink:output('a', 'stdout', 'out-')
      sink:output('a', 'stderr', 'err\n')
      sink:output('a', 'stdout', 'end\n')
      local lines = {}
      for _, r in ipairs(sink:logs('a')) do
        lines[#lines + 1] = r.stream .. ':' .. r.line
      end
      assert.same({ 'stderr:err', 'stdout:out-end' }, lines)
    end)

    it('keeps a bounded ring buffer of recent lines per entry', function()
      local sink = make({ ring = 3 })
      for i = 1, 7 do
        sink:output('a', 'stdout', 'l' .. i .. '\n')
      end
      sink:output('b', 'stdout', 'only\n')
      local function lines(id, n)
        local out = {}
        for _, r in ipairs(sink:logs(id, n)) do
          out[#out + 1] = r.line
        end
        return out
      end
      assert.same({ 'l5', 'l6', 'l7' }, lines('a'))
      assert.same({ 'l6', 'l7' }, lines('a', 2))
      assert.same({ 'only' }, lines('b', 10))
      assert.same({}, lines('nobody'))
    end)

    it('bounds the ring buffer in bytes too, always keeping the newest line', function()
      local sink = status.new({ writer = false, ring = 100, ring_bytes = 10 })
      sink:output('a', 'stdout', 'aaaa\nbbbb\ncccc\n')
      local got = {}
      for _, r in ipairs(sink:logs('a')) do
        got[#got + 1] = r.line
      end
      assert.same({ 'bbbb', 'cccc' }, got)
      sink:output('a', 'stdout', string.rep('z', 50) .. '\n')
      assert.equal(1, #sink:logs('a'))
    end)

    it('cuts to the bounds exactly when chunks of many lines come and go', function()
      local sink = status.new({ writer = false, ring = 5, ring_bytes = 1000 })
      local n = 0
      for size = 1, 9 do -- chunks of 1, 2, ... 9 lines
        local chunk = {}
        for i = 1, size do
          chunk[i] = 'l' .. (n + i)
        end
        n = n + size
        sink:output('a', 'stdout', table.concat(chunk, '\n') .. '\n')
        local got, want = {}, {}
        for _, r in ipairs(sink:logs('a')) do
          got[#got + 1] = r.line
        end
        for i = math.max(1, n - 4), n do
          want[#want + 1] = 'l' .. i
        end
        assert.same(want, got)
        assert.equal(n, sink:logs('a')[#got].seq)
      end
      assert.equal(3, #sink:logs('a', 3))
    end)

    it('numbers lines for followers and tells subscribers', function()
      local sink = make()
      local got = {}
      sink:subscribe(function(ev)
        if ev.type == 'output' then
          for _, r in ipairs(ev.lines) do
            got[#got + 1] = r.seq .. ':' .. r.line
          end
        end
      end)
      sink:output('a', 'stdout', 'x\ny\n')
      sink:output('b', 'stdout', 'z\n')
      assert.same({ '1:x', '2:y', '3:z' }, got)
    end)

    it('splits over-long lines', function()
      local sink = make({ max_line = 4 })
      sink:output('a', 'stdout', 'abcdefghij\n')
      assert.equal(3, #sink:logs('a'))
    end)
  end)

  describe(':declare and :snapshot', function()
    it('orders entries and reports what a waiting entry waits on', function()
      local sink = make()
      sink:onState({ id = 'api', kind = 'daemon', result = 'waiting' })
      sink:declare({
        { id = 'db', kind = 'daemon', requires = {} },
        { id = 'api', kind = 'daemon', requires = { 'db' }, display = 'API' },
      })
      sink:onState({ id = 'db', kind = 'daemon', result = 'starting' })
      local snap = sink:snapshot()
      assert.same({ 'db', 'api' }, { snap[1].id, snap[2].id })
      assert.same({ 'db' }, snap[2].waitingOn)
      assert.equal('API', snap[2].name)
      sink:onState({ id = 'db', result = 'success' })
      assert.same({}, sink:snapshot()[2].waitingOn)
      assert.same({ 1, 2 }, { sink:counts() })
    end)

    it('keeps the ready count without a scan: every way a result changes counts', function()
      local sink = make()
      -- the count a scan of the snapshot gives, to compare with counts()
      local function scanned()
        local n = 0
        for _, e in ipairs(sink:snapshot()) do
          n = n + (e.result == 'success' and 1 or 0)
        end
        return n
      end
      local function check(ready, total)
        assert.same({ ready, total }, { sink:counts() })
        assert.equal(scanned(), ready)
      end
      sink:declare({ { id = 'a', kind = 'daemon' }, { id = 'b', kind = 'daemon' },
        { id = 'c', kind = 'oneshot' } })
      check(0, 3)
      sink:onState({ id = 'a', result = 'success' })
      sink:onState({ id = 'a', result = 'success', message = 'again' }) -- no double count
      check(1, 3)
      sink:setHealth({ id = 'b', result = 'success' }) -- health only: it is the state too
      check(2, 3)
      sink:onState({ id = 'a', result = 'failure' })
      check(1, 3)
      sink:declare({ { id = 'c', kind = 'oneshot' }, { id = 'a', kind = 'daemon' } }) -- b goes
      check(0, 2)
      sink:onState({ id = 'c', result = 'success' })
      check(1, 2)
      sink:declare({ { id = 'c', kind = 'oneshot' }, { id = 'a', kind = 'daemon' } },
        { reset = true })
      check(0, 2)
      assert.is_true(sink:has('c'))
      assert.is_false(sink:has('b'))
    end)

    it('forgets entries a new declaration does not have', function()
      local sink = make()
      sink:declare({ { id = 'a', kind = 'daemon' }, { id = 'b', kind = 'daemon' } })
      sink:output('b', 'stdout', 'x\n')
      sink:declare({ { id = 'c', kind = 'oneshot' }, { id = 'a', kind = 'daemon' } })
      assert.same({ 'c', 'a' }, sink:ids())
      assert.is_nil(sink:get('b'))
      assert.same({}, sink:logs('b'))
    end)

    it('returns copies that callers cannot corrupt', function()
      local sink = make()
      sink:onProcess({ id = 'a', event = 'exit', code = 1 })
      local s = sink:snapshot()[1]
      s.lastExit.code = 99
      assert.equal(1, sink:get('a').lastExit.code)
    end)
  end)

  describe('as effects', function()
    it('works with plain function calls, as the SDK calls effects', function()
      local sink, text = make()
      local fx = sink
      fx.onState({ id = 'a', kind = 'daemon', result = 'starting' })
      fx.onProcess({ id = 'a', event = 'spawn', pid = 5 })
      fx.output('a', 'stdout', 'hi\n')
      fx.setHealth({ id = 'a', name = 'A', result = 'success', message = 'ok' })
      fx.log('warn', 'careful')
      assert.equal(table.concat({
        'orch | a: none -> starting',
        'orch | a: started (pid 5)',
        'a    | hi',
        'orch | a: none -> success (ok)',
        'orch | warning: careful',
        '',
      }, '\n'), text())
      assert.same({ 5, 'A' }, { sink:get('a').pid, sink:get('a').name })
    end)

    it('flushes an unterminated last line when the process exits', function()
      local sink, text = make()
      sink.output('a', 'stdout', 'no newline')
      sink.onProcess({ id = 'a', event = 'exit', code = 0 })
      assert.equal('a    | no newline\norch | a: exited with code 0\n', text())
    end)
  end)

  describe('the SIGQUIT dump (control.render over the sink\'s snapshot)', function()
    it('renders an aligned table, durations in ms like orch status', function()
      local render = require 'orch.control.render'
      local status_json = require 'orch.status.json'
      local sink = make()
      sink:declare({ { id = 'db', kind = 'daemon' },
        { id = 'api', kind = 'daemon', requires = { 'db' } } })
      sink:onState({ id = 'db', result = 'starting', message = 'probing' })
      sink:onProcess({ id = 'db', event = 'spawn', pid = 10 })
      sink:onState({ id = 'api', result = 'waiting' })
      local text = render.status({ entries = status_json.view(sink:snapshot()) },
        { header = false })
      local lines = {}
      for l in text:gmatch('[^\n]+') do
        lines[#lines + 1] = l
      end
      assert.matches('^ID%s+KIND%s+STATE%s+PID%s+UPTIME', lines[1])
      assert.matches('^db%s+daemon%s+starting%s+10%s', lines[2])
      assert.matches('probing', lines[2])
      assert.matches('^api%s+daemon%s+waiting%s+%-', lines[3])
    end)
  end)

  describe('failed and blocked entries (issue 14)', function()
    it('the sink keeps them and orch status shows them with the restart count', function()
      local render = require 'orch.control.render'
      local sink = make()
      sink:declare({ { id = 'db', kind = 'daemon' },
        { id = 'api', kind = 'daemon', requires = { 'db' } } })
      sink:onProcess({ id = 'db', event = 'spawn', pid = 10, restarts = 3 })
      sink:onProcess({ id = 'db', event = 'exit', pid = 10, code = 1, restarts = 3 })
      sink:onState({ id = 'db', result = 'failure', failed = true,
        message = 'gave up after 3 restarts in 6000 ms: db exited with code 1' })
      sink:onState({ id = 'api', result = 'disabled', blocked = 'db',
        message = 'blocked: db failed' })
      local snap = sink:snapshot()
      assert.same({ true, 'db' }, { snap[1].failed, snap[2].blocked })
      local text = render.status({ entries = snap }, { header = false, now = 0 })
      local lines = {}
      for l in text:gmatch('[^\n]+') do
        lines[#lines + 1] = l
      end
      assert.matches('^db   daemon  failed   %-    %-       3         code 1     %-            '
        .. 'gave up after 3 restarts', lines[2])
      assert.matches('^api  daemon  blocked  %-    %-       0         %-          db %(failed%)  '
        .. 'blocked: db failed', lines[3])
      -- orch restart: the next state clears both
      sink:onState({ id = 'db', result = 'disabled', message = 'stopped' })
      assert.is_nil(sink:snapshot()[1].failed)
    end)
  end)
end)
