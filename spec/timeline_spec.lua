-- Unit specs for orch.timeline (read, model, svg, term) and orch.status.history (the JSON log's
-- records for timelines are in cli_log_spec). No core needed.
local timeline = require 'orch.timeline'
local read = require 'orch.timeline.read'
local axis = require 'orch.timeline.axis'
local history = require 'orch.status.history'
local status = require 'orch.status'
local log = require 'orch.log'
local cjson = require 'cjson'

local T0 = 1764800000 -- 2025-12-03T22:13:20Z

-- A JSON-log line at T0 + `dt` seconds.
local function rec(dt, fields)
  fields.ts = require('orch.runtime.time').iso(T0 + dt)
  return require('orch.runtime.json').encode(fields)
end

local function graph(entries)
  local json = require 'orch.runtime.json'
  for _, e in ipairs(entries) do
    e.requires = json.array(e.requires or {})
  end
  return rec(0, { id = 'orch', event = 'graph', entries = json.array(entries) })
end

-- db crashes and restarts; web waits for it; the arrow db -> web when db is back.
local function small_run()
  return {
    graph({ { id = 'db', kind = 'daemon' }, { id = 'web', kind = 'daemon', requires = { 'db' },
      name = 'Web <server> & co' } }),
    rec(0, { id = 'orch', event = 'log', level = 'info', message = 'running main.lua' }),
    rec(0, { id = 'db', event = 'state', result = 'starting', kind = 'daemon' }),
    rec(0.01, { id = 'db', event = 'spawn', pid = 10, restarts = 0 }),
    rec(0.01, { id = 'web', event = 'state', result = 'waiting', kind = 'daemon',
      message = 'db' }),
    rec(1, { id = 'db', event = 'exit', pid = 10, code = 3, restarts = 0 }),
    rec(1.2, { id = 'db', event = 'spawn', pid = 11, restarts = 1, delay = 200 }),
    rec(2, { id = 'db', event = 'state', old = 'starting', result = 'success',
      message = 'up' }),
    rec(2, { id = 'web', event = 'state', old = 'waiting', result = 'starting' }),
    rec(2.01, { id = 'web', event = 'spawn', pid = 12, restarts = 0 }),
    rec(3, { id = 'web', event = 'state', old = 'starting', result = 'success' }),
    rec(4, { id = 'web', event = 'signal', pid = 12, signal = 'SIGHUP', restarts = 0 }),
    rec(9, { id = 'orch', event = 'log', level = 'info', message = 'SIGTERM: stopping' }),
    rec(9, { id = 'web', event = 'term', pid = 12, signal = 'SIGTERM', restarts = 0 }),
    rec(9.1, { id = 'web', event = 'exit', pid = 12, signal = 'SIGTERM', restarts = 0 }),
    rec(9.1, { id = 'db', stream = 'stdout', line = 'bye' }),
    rec(10, { id = 'orch', event = 'log', level = 'info', message = 'stopped' }),
  }
end

local function kinds(row)
  local out = {}
  for _, t in ipairs(row.ticks) do
    out[#out + 1] = t.kind
  end
  return out
end

describe('orch.timeline.read', function()
  it('names the line of something that is not JSON', function()
    local r, err = read.lines({ rec(0, { id = 'a', event = 'log', message = 'x' }), 'oops' })
    assert.is_nil(r)
    assert.matches('^line 2: not JSON %(', err)
    assert.matches('oops$', err)
  end)

  it('says when the log looks like a text log', function()
    assert.matches('^line 1: not JSON .*orch | web: started %(pid 3%) %(a text log%? use orch '
      .. 'run %-%-log%-format json%)$', select(2, read.lines({ 'orch | web: started (pid 3)' })))
  end)

  it('says a cut line is truncated, with its number and file', function()
    local full = rec(0, { id = 'a', event = 'state', result = 'success' })
    local _, err = read.lines({ full, full:sub(1, 30) }, { name = 'run.jsonl' })
    assert.matches('^run%.jsonl:2: truncated JSON', err)
  end)

  it('refuses an empty log, and one of blank lines', function()
    assert.matches('no record', select(2, read.lines({})))
    assert.matches('^input: no record', select(2, read.lines({ '', '  ' })))
  end)

  it('names the field of a record without a time or with a wrong type', function()
    assert.equal('line 1: field "ts" must be an ISO 8601 UTC time (as orch writes it), got '
      .. 'nothing', select(2, read.lines({ '{"id":"a"}' })))
    assert.matches('^line 1: field "ts" must be .* got "yesterday"',
      select(2, read.lines({ '{"ts":"yesterday"}' })))
    assert.matches('^line 1: field "result" must be a string, got 3',
      select(2, read.lines({ rec(0, { id = 'a', event = 'state', result = 3 }) })))
    assert.matches('^line 1: not a JSON object', select(2, read.lines({ '[1,2]' })))
  end)

  it('skips blank lines and keeps the rest in order, with their times', function()
    local r = assert(read.lines({ '', rec(1.5, { id = 'a', event = 'log', message = 'x' }), '' }))
    assert.equal(1, #r)
    assert.near(T0 + 1.5, r[1].t, 1e-6)
  end)

  it('counts process output only for the time the run lasts', function()
    local m = assert(timeline.model_from_log_lines({
      rec(0, { id = 'a', event = 'state', result = 'success' }),
      rec(100, { id = 'a', stream = 'stdout', line = 'a "quoted" }{ line' }),
    }))
    assert.near(T0 + 100, m.t1, 1e-6)
    assert.equal(1, #m.rows)
    assert.equal(1, #m.rows[1].spans)
  end)

  it('svg_from_log_lines raises the message, without a position', function()
    local ok, err = pcall(timeline.svg_from_log_lines, { '{"ts":' })
    assert.is_false(ok)
    assert.matches('^line 1: truncated JSON', err)
  end)
end)

describe('orch.timeline.model', function()
  local m = assert(timeline.model_from_log_lines(small_run()))
  local db, web = m.rows[1], m.rows[2]

  it('has one row per entry of the graph, in its order, with kinds and requirements', function()
    assert.equal(2, #m.rows)
    assert.same({ 'db', 'web' }, { db.id, web.id })
    assert.same({ 'db' }, web.requires)
    assert.equal('Web <server> & co', web.name)
    assert.near(T0, m.t0, 1e-6)
    assert.near(T0 + 10, m.t1, 1e-6)
  end)

  it('cuts the results into spans that end where the next begins, the last at the end', function()
    assert.same({ 'starting', 'success' }, { db.spans[1].result, db.spans[2].result })
    assert.near(T0 + 2, db.spans[1].t1, 1e-6)
    assert.near(T0 + 10, db.spans[2].t1, 1e-6)
    assert.same({ 'waiting', 'starting', 'success' }, { web.spans[1].result,
      web.spans[2].result, web.spans[3].result })
    assert.equal('db', web.spans[1].message)
  end)

  it('ticks spawns, a failed exit, the restart with its delay, signals and a stop', function()
    assert.same({ 'spawn', 'crash', 'spawn' }, kinds(db))
    assert.equal('exited with code 3 (pid 10)', db.ticks[2].text)
    assert.equal('started (pid 11), restart #1 after 200 ms', db.ticks[3].text)
    -- SIGHUP sent, SIGTERM at the stop, then an exit by SIGTERM after it: not a failure
    assert.same({ 'spawn', 'signal', 'signal', 'exit' }, kinds(web))
    assert.equal('sent SIGHUP to pid 12', web.ticks[2].text)
    assert.equal(1, m.restarts)
  end)

  it('spans the processes from spawn to exit', function()
    assert.equal(2, #db.procs)
    assert.near(T0 + 1, db.procs[1].t1, 1e-6)
    assert.is_true(db.procs[2].open)
    assert.is_nil(web.procs[1].open)
  end)

  it('draws an arrow when a requirement becomes ready while its dependent is not', function()
    assert.equal(1, #m.arrows)
    assert.same({ 'db', 'web' }, { m.arrows[1].from, m.arrows[1].to })
    assert.near(T0 + 2, m.arrows[1].t, 1e-6)
  end)

  it("keeps orch's messages as marks", function()
    assert.equal(3, #m.marks)
    assert.equal('SIGTERM: stopping', m.marks[2].text)
  end)

  it('ends the rows of entries a reload removed', function()
    local lines = small_run()
    table.insert(lines, 12, graph({ { id = 'db', kind = 'daemon' } }))
    lines[12] = lines[12]:gsub('"ts":"[^"]*"', '"ts":"2025-12-03T22:13:25.000Z"')
    local m2 = assert(timeline.model_from_log_lines(lines))
    local w = m2.rows[2]
    assert.near(T0 + 5, w.spans[#w.spans].t1, 1e-6)
  end)

  it('keeps only the rows asked for, and the arrows between them', function()
    local only = assert(timeline.model_from_log_lines(small_run(), { ids = { 'web' } }))
    assert.equal(1, #only.rows)
    assert.equal('web', only.rows[1].id)
    assert.equal(0, #only.arrows)
    assert.equal(0, only.restarts) -- db's restart is not web's
    local text = timeline.term_from_log_lines(small_run(), { ids = { 'db' }, width = 60 })
    assert.is_nil(text:find('\nweb', 1, true))
    assert.truthy(text:find('\ndb', 1, true))
  end)

  it('works without a graph record (an older log): rows in order of appearance, no arrows',
    function()
      local lines = small_run()
      table.remove(lines, 1)
      local m2 = assert(timeline.model_from_log_lines(lines))
      assert.same({ 'db', 'web' }, { m2.rows[1].id, m2.rows[2].id })
      assert.equal(0, #m2.arrows)
    end)
end)

describe('orch.timeline.axis', function()
  it('steps by 1, 2, 5 units and readable times', function()
    assert.equal(0.5, axis.step(3, 8))
    assert.equal(600, axis.step(3600, 8))
    assert.equal(0.25, axis.step(2, 8))
    assert.same({ '0', '250ms', '500ms', '750ms', '1s', '1.25s' }, (function()
      local out = {}
      for _, t in ipairs(axis.ticks(1.3, 0.25)) do
        out[#out + 1] = t.label
      end
      return out
    end)())
    assert.equal('1h05m', axis.label(3900, 300))
    assert.equal('1m30s', axis.label(90, 30))
  end)
end)

-- 50 entries over an hour, 10 of them crash-looping with a growing backoff.
local function big_run()
  local json = require 'orch.runtime.json'
  local entries, lines = {}, {}
  for i = 1, 50 do
    entries[i] = { id = ('svc-%02d'):format(i), kind = 'daemon', requires = json.array(i > 1
      and { ('svc-%02d'):format(i - 1) } or {}) }
  end
  lines[1] = rec(0, { id = 'orch', event = 'graph', entries = json.array(entries) })
  local events = {}
  for i = 1, 50 do
    local id = entries[i].id
    events[#events + 1] = { i * 0.05, { id = id, event = 'spawn', pid = i, restarts = 0 } }
    events[#events + 1] = { i * 0.05, { id = id, event = 'state', result = 'success' } }
    if i % 5 == 0 then
      local t, delay, n = 60, 0, 0
      while t < 3600 do
        events[#events + 1] = { t, { id = id, event = 'exit', pid = i, code = 1 } }
        events[#events + 1] = { t, { id = id, event = 'state', result = 'failure' } }
        t, n = t + delay / 1000, n + 1
        events[#events + 1] = { t, { id = id, event = 'spawn', pid = i, restarts = n,
          delay = delay } }
        events[#events + 1] = { t, { id = id, event = 'state', result = 'starting' } }
        t, delay = t + 0.5, math.min(delay + 1000, 30000)
      end
    end
  end
  table.sort(events, function(a, b)
    return a[1] < b[1]
  end)
  for _, e in ipairs(events) do
    lines[#lines + 1] = rec(e[1], e[2])
  end
  lines[#lines + 1] = rec(3600, { id = 'orch', event = 'log', message = 'stopped' })
  return lines
end

describe('orch.timeline.svg', function()
  it('is one SVG document with a labelled row per entry, its text escaped', function()
    local svg = timeline.svg_from_log_lines(small_run())
    assert.matches('^<svg xmlns="http://www.w3.org/2000/svg"', svg)
    assert.matches('</svg>\n$', svg)
    local ids = {}
    for id in svg:gmatch('data%-id="([^"]*)"') do
      ids[#ids + 1] = id
    end
    assert.same({ 'db', 'web' }, ids)
    assert.truthy(svg:find('Web &lt;server&gt; &amp; co', 1, true))
    assert.is_nil(svg:find('<server>', 1, true))
    assert.truthy(svg:find('restart #1 after 200 ms', 1, true))
    assert.truthy(svg:find('marker-end="url(#arrow)"><title>db ready at', 1, true))
  end)

  it('draws 50 entries over an hour as a picture of bounded size, in well under a second',
    function()
      local lines = big_run()
      assert.truthy(#lines > 3000)
      local t = os.clock()
      local svg = timeline.svg_from_log_lines(lines)
      local spent = os.clock() - t
      assert.truthy(spent < 1, ('took %.2f s'):format(spent))
      -- merged pixel runs and ticks: far fewer elements than events
      local _, rects = svg:gsub('<rect class="s"', '')
      assert.truthy(rects < 400, rects .. ' span rectangles')
      assert.truthy(#svg < 1024 * 1024, #svg .. ' bytes')
      local _, rows = svg:gsub('data%-id=', '')
      assert.equal(50, rows)
      assert.truthy(svg:find('>10m<', 1, true), 'a 10 min axis step')
    end)
end)

describe('orch.timeline.term', function()
  -- blocks and marks as ASCII letters, for patterns (Lua's repeat a byte, not a character)
  local LETTERS = { ['█'] = 'S', ['▓'] = 'T', ['░'] = 'W', ['╳'] = 'F', ['▲'] = '^',
    ['✗'] = 'x', ['↯'] = 'z', ['◆'] = 'r', ['▽'] = 'v' }
  local function ascii(s)
    return (s:gsub(utf8.charpattern, function(c)
      return LETTERS[c] or c
    end))
  end

  local function visible(s)
    return (s:gsub('\27%[[%d;]*m', ''))
  end

  it('fits the width, a line per entry and one of marks under it, no colour unless asked',
    function()
      local text = timeline.term_from_log_lines(small_run(), { width = 60 })
      assert.is_nil(text:find('\27', 1, true))
      local lines = {}
      for l in text:gmatch('([^\n]*)\n') do
        lines[#lines + 1] = l
        assert.truthy(utf8.len(l) <= 60, ('%q is wider than 60'):format(l))
      end
      -- the heading loses its start ('orch timeline: 2025-12-03 ') where it does not fit
      assert.equal('22:13:20.000 to 22:13:30.000 UTC, 10 s, 2 entries, 1 restart', lines[1])
      assert.matches('^orch timeline: 2025%-12%-03 22:13:20.000 to',
        timeline.term_from_log_lines(small_run(), { width = 100 }))
      assert.matches('^db +T+S+$', ascii(lines[4]))
      assert.matches('^ +%^ +x *%^$', ascii(lines[5]))
      assert.matches('^web +W+T+S+$', ascii(lines[6]))
      -- spawned (db became ready in the same cell), SIGHUP, SIGTERM and the exit
      assert.matches('^ +%^ +z +zv$', ascii(lines[7]))
    end)

  it('colours the blocks on request', function()
    local text = timeline.term_from_log_lines(small_run(), { width = 60, color = true })
    assert.truthy(text:find('\27[32m█\27[0m', 1, true))
    for l in text:gmatch('([^\n]*)\n') do
      assert.truthy(utf8.len(visible(l)) <= 60)
    end
  end)

  it('shows a failure that is shorter than a cell', function()
    local lines = {
      rec(0, { id = 'a', event = 'state', result = 'success' }),
      rec(50, { id = 'a', event = 'state', result = 'failure' }),
      rec(50.01, { id = 'a', event = 'state', result = 'success' }),
      rec(100, { id = 'orch', event = 'log', message = 'end' }),
    }
    local text = timeline.term_from_log_lines(lines, { width = 40 })
    assert.matches('\na +S+FS+\n', ascii(text))
  end)
end)

describe('orch.status.history', function()
  local clock = function()
    return T0
  end

  it('keeps the last N records as JSON-log lines, oldest first, and counts the dropped',
    function()
      local h = history.new(3, clock)
      h:push({ event = 'graph', entries = {} })
      for i = 1, 5 do
        h:push({ event = 'spawn', id = 'a', pid = i })
      end
      local lines, dropped = h:lines()
      assert.equal(3, dropped)
      -- the graph record survives its turn in the ring
      assert.equal(4, #lines)
      assert.equal('graph', cjson.decode(lines[1]).event)
      assert.same({ 3, 4, 5 }, { cjson.decode(lines[2]).pid, cjson.decode(lines[3]).pid,
        cjson.decode(lines[4]).pid })
      assert.equal('2025-12-03T22:13:20.000Z', cjson.decode(lines[2]).ts)
      assert.truthy(timeline.model_from_log_lines(lines))
    end)

  it('keeps nothing with size 0', function()
    local h = history.new(0, clock)
    h:push({ event = 'log', message = 'x' })
    assert.same({}, (h:lines()))
  end)

  it('is fed by the status sink: the same records as the JSON log, without output', function()
    local out = {}
    local writer = log.new({ format = 'json', clock = clock, out = function(s)
      out[#out + 1] = s:sub(1, -2)
    end })
    local sink = status.new({ writer = writer, wallclock = clock, now = function()
      return 0
    end })
    sink:declare({ { id = 'a', kind = 'daemon', requires = {} } })
    sink.onState({ id = 'a', kind = 'daemon', result = 'starting' })
    sink.onProcess({ id = 'a', event = 'spawn', pid = 7, restarts = 1, delay = 1000 })
    sink.output('a', 'stdout', 'hello\n')
    sink.onProcess({ id = 'a', event = 'exit', pid = 7, code = 0, clean = true })
    sink:message('stopped')
    local lines = sink:history()
    local logged = {}
    for _, l in ipairs(out) do
      if not l:find('"stream"', 1, true) then
        logged[#logged + 1] = l
      end
    end
    assert.same(logged, lines)
    assert.equal(#out - 1, #lines)
    assert.equal(1000, cjson.decode(lines[3]).delay)
    assert.is_true(cjson.decode(lines[4]).clean)
  end)
end)
