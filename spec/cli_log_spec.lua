-- Unit specs for orch.log (orch.log_text, orch.log_json): text and JSON rendering. No core
-- needed.
local log = require 'orch.log'
local cjson = require 'cjson'

local function capture(opts)
  local out = {}
  opts = opts or {}
  opts.out = function(s)
    out[#out + 1] = s
  end
  opts.clock = opts.clock or function()
    return 1700000000.25
  end
  local w = log.new(opts)
  return w, function()
    return table.concat(out)
  end, out
end

describe('log.sanitize_utf8', function()
  it('returns valid strings unchanged', function()
    assert.equal('h\u{E9}llo', log.sanitize_utf8('h\u{E9}llo'))
  end)

  it('replaces invalid bytes by U+FFFD', function()
    assert.equal('a\u{FFFD}b\u{FFFD}', log.sanitize_utf8('a\255b\192'))
  end)
end)

describe('log.Writer text', function()
  it('prefixes output with aligned ids', function()
    local w, text = capture({ color = false, ids = { 'db', 'webserver' } })
    w:line('db', 'stdout', 'hello')
    w:line('webserver', 'stderr', 'hi')
    assert.equal('db        | hello\nwebserver | hi\n', text())
  end)

  it('renders state changes as orch | id: old -> new (message)', function()
    local w, text = capture({ color = false })
    w:event({ event = 'state', id = 'web', old = 'starting', result = 'success', message = 'up' })
    w:event({ event = 'state', id = 'web', result = 'waiting' })
    assert.equal('orch | web: starting -> success (up)\norch | web: none -> waiting\n', text())
  end)

  it('colours the id on request and never with color = false', function()
    local w, text = capture({ color = true, ids = { 'a' } })
    w:line('a', 'stdout', 'x')
    assert.matches('\27%[36ma    |\27%[0m x\n', text())
    local w2, text2 = capture({ color = false })
    w2:line('a', 'stdout', 'x')
    assert.is_nil(text2():find('\27', 1, true))
  end)

  it('honours NO_COLOR when colour is automatic', function()
    -- auto colour is only on for a TTY; captured output is never one
    local w, text = capture({})
    w:line('a', 'stdout', 'x')
    assert.is_nil(text():find('\27', 1, true))
  end)

  it('adds timestamps on request', function()
    local w, text = capture({ color = false, timestamps = true })
    w:line('a', 'stdout', 'x')
    assert.matches('^%d%d:%d%d:%d%d%.250 a    | x\n$', text())
  end)

  it('passes binary bytes through in text mode', function()
    local w, text = capture({ color = false })
    w:line('a', 'stdout', 'bin\0\255')
    assert.equal('a    | bin\0\255\n', text())
  end)

  it('writes one chunk for many lines', function()
    local w, _, out = capture({ color = false })
    w:lines('a', 'stdout', { '1', '2', '3' })
    assert.equal(1, #out)
  end)

  it('describes process events', function()
    local w, text = capture({ color = false })
    w:event({ event = 'spawn', id = 'a', pid = 12, restarts = 2 })
    w:event({ event = 'exit', id = 'a', code = 3 })
    w:event({ event = 'exit', id = 'a', signal = 'SIGKILL' })
    w:event({ event = 'spawn-error', id = 'a', message = 'ENOENT' })
    w:message('bye')
    assert.equal(table.concat({
      'orch | a: started (pid 12, restart #2)',
      'orch | a: exited with code 3',
      'orch | a: killed by SIGKILL',
      'orch | a: failed to start: ENOENT',
      'orch | bye',
      '',
    }, '\n'), text())
  end)

  it('ignores write errors on the output', function()
    local f = assert(io.open('/dev/null', 'r')) -- writing to a read-only handle fails
    local w = log.new({ out = f, color = false })
    assert.has_no.errors(function()
      w:line('a', 'stdout', 'x')
    end)
    f:close()
  end)
end)

describe('log.Writer json', function()
  it('writes one parseable object per line with ts, id, stream and line', function()
    local w, text = capture({ format = 'json' })
    w:lines('web', 'stderr', { 'one', 'two "q" \\ /' })
    local n = 0
    for line in text():gmatch('[^\n]+') do
      n = n + 1
      local o = cjson.decode(line)
      assert.equal('web', o.id)
      assert.equal('stderr', o.stream)
      assert.equal('2023-11-14T22:13:20.250Z', o.ts)
    end
    assert.equal(2, n)
  end)

  it('keeps every line parseable with binary or invalid UTF-8 output', function()
    local w, text = capture({ format = 'json' })
    w:line('a', 'stdout', 'bad \255\254 \0 ctrl\1\27[31m')
    local o = cjson.decode((text():gsub('\n$', '')))
    assert.equal('bad \u{FFFD}\u{FFFD} \0 ctrl\1\27[31m', o.line)
    assert.is_nil(text():find('\255', 1, true))
  end)

  it('writes events with event, result, message, pid and code', function()
    local w, text = capture({ format = 'json' })
    w:event({ event = 'state', id = 'db', old = 'starting', result = 'success', message = 'ok' })
    w:event({ event = 'exit', id = 'db', pid = 7, code = 1 })
    w:message('hello')
    local objs = {}
    for line in text():gmatch('[^\n]+') do
      objs[#objs + 1] = cjson.decode(line)
    end
    assert.same({ 'state', 'success', 'ok', 'starting' },
      { objs[1].event, objs[1].result, objs[1].message, objs[1].old })
    assert.same({ 'exit', 7, 1 }, { objs[2].event, objs[2].pid, objs[2].code })
    assert.same({ 'orch', 'log', 'hello' }, { objs[3].id, objs[3].event, objs[3].message })
  end)

  it('never colours json', function()
    local w, text = capture({ format = 'json', color = true })
    w:line('a', 'stdout', 'x')
    assert.is_nil(text():find('\27', 1, true))
  end)

  it('rejects an unknown format', function()
    assert.has_error(function()
      log.new({ format = 'xml' })
    end, "bad argument #1 to 'log.new' (unknown format 'xml')")
  end)
end)

describe('log.encode', function()
  it('writes keys in a stable order with ts and id first', function()
    assert.equal('{"ts":"t","id":"a","event":"x","b":1,"c":true}',
      log.encode({ c = true, b = 1, event = 'x', id = 'a', ts = 't' }))
  end)

  it('encodes sequences and marked empty tables as arrays', function()
    assert.equal('{"a":[1,2],"e":[],"o":{}}', log.encode({ a = { 1, 2 }, e = log.array(), o = {} }))
  end)

  it('makes strings valid UTF-8', function()
    assert.equal('"x\u{FFFD}"', log.encode('x\255'))
    assert.same({ 'x\u{FFFD}' }, cjson.decode(log.encode({ 'x\255' })))
  end)
end)

describe('log.encode', function()
  it("writes '/' as it is and round-trips backslashes next to it", function()
    assert.equal('"http://localhost:8000/health"', log.encode('http://localhost:8000/health'))
    for _, s in ipairs({ '/', '\\', '\\/', '\\\\/', 'a\\/b/c', 'c:\\\\/x', '' }) do
      local e = log.encode(s)
      assert.equal(s, cjson.decode(e), e)
      assert.is_nil(e:find('[^\\]\\/'), e) -- no escaped slash left
    end
  end)
end)

describe('the JSON log for timelines', function()
  local T0 = 1764800000 -- 2025-12-03T22:13:20Z
  local status = require 'orch.status'

  local function capture_at(format)
    local out = {}
    local w = log.new({ format = format, color = false, clock = function()
      return T0
    end, out = function(s)
      out[#out + 1] = s
    end })
    return w, out
  end

  it('writes a graph record when the graph is declared, in JSON only', function()
    local w, out = capture_at('json')
    w:declare({ { id = 'a', kind = 'daemon', requires = {}, display = 'A' },
      { id = 'b', kind = 'oneshot', requires = { 'a' } } })
    assert.equal('{"ts":"2025-12-03T22:13:20.000Z","id":"orch","event":"graph","entries":['
      .. '{"id":"a","kind":"daemon","name":"A","requires":[]},{"id":"b","kind":"oneshot",'
      .. '"requires":["a"]}]}\n', out[1])
    local t, tout = capture_at('text')
    t:declare({ { id = 'a', requires = {} } })
    assert.equal(0, #tout)
  end)

  it('says the restart delay and a signal sent in text', function()
    local w, out = capture_at('text')
    w:event({ event = 'spawn', id = 'a', pid = 3, restarts = 2, delay = 1000 })
    w:event({ event = 'signal', id = 'a', pid = 3, signal = 'SIGHUP' })
    assert.equal('orch | a: started (pid 3, restart #2 after 1000 ms)\n', out[1])
    assert.equal('orch | a: sent SIGHUP to pid 3\n', out[2])
  end)

  it('keeps the oom, clean and delay of process events (the sink dropped oom and clean)',
    function()
      local w, out = capture_at('text')
      local sink = status.new({ writer = w, wallclock = function()
        return T0
      end, now = function()
        return 0
      end })
      sink.onProcess({ id = 'hog', event = 'exit', pid = 9, signal = 'SIGKILL', oom = true,
        clean = false })
      assert.equal('orch | hog: killed by the OOM killer (exec.limits.memory reached) (pid 9)\n',
        out[#out])
    end)
end)
