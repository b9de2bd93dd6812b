-- orch timeline end to end (#integration): a real run of spec/fixtures/timeline/crash.lua (db
-- crashes once and is restarted) recorded with --log-format json and drawn from the file, from
-- stdin and from the running orch's control socket; bad input and usage errors.
local R = require 'fixtures.cli.runner'
local timeline = require 'orch.timeline'

local MAIN = R.ROOT .. '/spec/fixtures/timeline/crash.lua'

local session = R.session()

-- Lines of a text, without their newlines.
local function lines_of(text)
  local out = {}
  for l in text:gmatch('([^\n]*)\n') do
    out[#out + 1] = l
  end
  return out
end

-- A JSON log of a real run: everything started, db crashed once and came back.
local function record(dir)
  local r = R.run({ 'run', '--until-ready=20000', '--log-format', 'json', MAIN,
    dir .. '/marker' })
  assert(r.code == 0, 'orch run failed: ' .. r.err .. r.out)
  R.write_file(dir .. '/run.jsonl', r.out)
  return r.out, dir .. '/run.jsonl'
end

local function ticks(row, kind)
  local out = {}
  for _, t in ipairs(row.ticks) do
    if t.kind == kind then
      out[#out + 1] = t
    end
  end
  return out
end

describe('orch timeline #integration', function()
  local dir, log_text, log_file

  setup(function()
    dir = session.tmpdir()
    log_text, log_file = record(dir)
  end)

  teardown(session.cleanup)

  it('models a recorded real run: rows, the crash, the restart and its delay, the arrows',
    function()
      local m = assert(timeline.model_from_log_lines(lines_of(log_text)))
      local ids = {}
      for i, row in ipairs(m.rows) do
        ids[i] = row.id
      end
      assert.same({ 'db', 'migrate', 'api' }, ids)
      local db, migrate, api = m.rows[1], m.rows[2], m.rows[3]
      local crash = ticks(db, 'crash')
      assert.equal(1, #crash)
      assert.matches('^exited with code 3 %(pid %d+%)$', crash[1].text)
      local spawns = ticks(db, 'spawn')
      assert.equal(2, #spawns)
      assert.matches('restart #1 after 200 ms$', spawns[2].text)
      assert.truthy(spawns[2].t - crash[1].t >= 0.19, 'the backoff is in the gap')
      assert.equal(1, m.restarts)
      assert.equal('success', db.spans[#db.spans].result)
      assert.equal('Database', db.name)
      -- ready requirements, in order: db -> migrate, then migrate -> api
      assert.equal(2, #m.arrows)
      assert.same({ 'db', 'migrate' }, { m.arrows[1].from, m.arrows[1].to })
      assert.same({ 'migrate', 'api' }, { m.arrows[2].from, m.arrows[2].to })
      assert.truthy(m.arrows[1].t > crash[1].t)
      assert.equal(1, #ticks(migrate, 'exit'))
      -- --until-ready stopped api with SIGTERM: a stop, not a failure
      assert.equal(1, #ticks(api, 'signal'))
      assert.equal(1, #ticks(api, 'exit'))
      assert.equal(0, #ticks(api, 'crash'))
    end)

  it('draws the file as SVG, to stdout or to -o', function()
    local r = R.run({ 'timeline', log_file })
    assert.equal(0, r.code, r.err)
    assert.matches('^<svg ', r.out)
    local _, rows = r.out:gsub('data%-id=', '')
    assert.equal(3, rows)
    r = R.run({ 'timeline', log_file, '-o', dir .. '/run.svg', '--width', '900' })
    assert.equal(0, r.code, r.err)
    assert.equal('', r.out)
    assert.matches('^<svg xmlns="http://www.w3.org/2000/svg" width="900"',
      R.read_file(dir .. '/run.svg'))
  end)

  it('draws stdin for a terminal, within the width', function()
    local out = R.capture(('cat %s | %s timeline - --format term --width 72 --no-color 2>&1')
      :format(R.quote(log_file), R.quote(R.ORCH)))
    local ls = lines_of(out)
    assert.matches(' UTC, .*, 3 entries, 1 restart$', ls[1])
    for _, l in ipairs(ls) do
      assert.truthy(utf8.len(l) <= 72, ('%q is wider than 72 columns'):format(l))
    end
    assert.truthy(out:find('\ndb +', 1, false))
    assert.truthy(out:find('\nmigrate +', 1, false))
    assert.truthy(out:find('\napi +', 1, false))
    assert.truthy(out:find('✗', 1, true), 'the crash is marked')
    assert.is_nil(out:find('\27', 1, true))
  end)

  it('colours the terminal rendering on a TTY, and fits its width', function()
    local out = R.capture(('script -qec %s /dev/null'):format(R.quote(('stty cols 66; %s '
      .. 'timeline --format term %s'):format(R.quote(R.ORCH), R.quote(log_file)))))
    assert.truthy(out:find('\27[32m█', 1, true), 'green success blocks: ' .. out)
    for _, l in ipairs(lines_of((out:gsub('\r', '')))) do
      local plain = l:gsub('\27%[[%d;]*m', '')
      assert.truthy(utf8.len(plain) <= 66, ('%q is wider than 66 columns'):format(plain))
    end
  end)

  it('names the line of bad input, and exits 1', function()
    local bad = dir .. '/bad.jsonl'
    local first = log_text:match('^[^\n]*\n')
    R.write_file(bad, first .. first .. first:sub(1, 40) .. '\n')
    local r = R.run({ 'timeline', bad })
    assert.equal(1, r.code)
    assert.equal('', r.out)
    assert.matches('^orch: timeline: ' .. bad:gsub('%p', '%%%0') .. ':3: truncated JSON', r.err)
    R.write_file(bad, 'hello\n')
    r = R.run({ 'timeline', bad, '--format', 'term' })
    assert.equal(1, r.code)
    assert.matches(':1: not JSON', r.err)
    R.write_file(bad, '')
    r = R.run({ 'timeline', bad })
    assert.equal(1, r.code)
    assert.matches('no record %(an empty log', r.err)
  end)

  it('refuses wrong usage with exit 2', function()
    for _, args in ipairs({
      { { 'timeline', log_file, '--format', 'png' }, "unknown format 'png'" },
      { { 'timeline', log_file, '--width', '0' }, "'%-%-width' needs a positive integer" },
      { { 'timeline', log_file, '--name', 'x' }, 'not both' },
      { { 'timeline', log_file, log_file }, 'too many arguments' },
      { { 'timeline', dir .. '/nothing.jsonl' }, 'cannot read .*No such file' },
    }) do
      local r = R.run(args[1])
      assert.equal(2, r.code, table.concat(args[1], ' '))
      assert.matches(args[2], r.err)
    end
  end)

  it('draws the recent events of a running orch through its control socket', function()
    local name = ('tl-spec-%d'):format(math.random(1, 1e9))
    local marker = session.tmpdir() .. '/marker'
    local p = session.start({ 'run', '--name', name, MAIN, marker })
    local function term()
      return R.run({ 'timeline', '--control', name, '--format', 'term', '--width', '80',
        '--no-color' })
    end
    -- every row, api spawned
    local r = R.wait_until(function()
      local t = term()
      return t.code == 0 and t.out:find('\napi +[^\n]*█') and t
    end, 20000, 'api drawn as running through the control socket')
    assert.truthy(r.out:find('\ndb +', 1, false))
    assert.truthy(r.out:find('1 restart', 1, true))
    assert.equal(0, R.run({ 'signal', 'db', 'HUP', '--name', name }).code)
    local svg = R.wait_until(function()
      local s = R.run({ 'timeline', '--name', name })
      return s.code == 0 and s.out:find('sent SIGHUP to pid', 1, true) and s.out
    end, 10000, 'the signal in the history')
    local _, rows = svg:gsub('data%-id=', '')
    assert.equal(3, rows)
    assert.truthy(svg:find('restart #1 after 200 ms', 1, true))
    p:signal('TERM')
    assert.equal(0, p:wait(15000))
    r = R.run({ 'timeline', '--name', name })
    assert.equal(1, r.code)
    assert.matches("no orch named '" .. name:gsub('%p', '%%%0') .. "' is running", r.err)
  end)
end)
