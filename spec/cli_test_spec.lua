-- `orch test`: busted inside the orch binary on the specs next to a main.lua, its output formats
-- and exit status passed through, --timeline, usage errors. Runs the real build/bin/orch.
local R = require 'fixtures.cli.runner'
local cjson = require 'cjson'

local session = R.session()

local MAIN = [[
local orch = require 'orch'
return orch.Daemons.of{}
  :addDaemon('db', { exec = { command = { 'postgres' } }, requires = {},
    ready = { display = 'Database', fn = function()
      return orch.healthCheck.checkPortListening(5432, {}) end } })
  :addDaemon('app', { exec = { command = { 'app' } }, requires = { 'db' },
    ready = { display = 'App', fn = function() return { result = 'success' } end } })
]]

local PASS = [[
local testing = require 'orch.testing'
describe('graph', function()
  it('app waits for a crash-looping db', function()
    local w = testing.world('main.lua', { behaviours = { db = { exit = 100, code = 1 } } })
    w:advance(60000)
    w:never_started('app')
    w:stop()
  end)
end)
]]

local FAIL = [[
local testing = require 'orch.testing'
describe('graph', function()
  it('db is ready (it is not)', function()
    local w = testing.world('main.lua', { behaviours = { db = { exit = 100, code = 1 } } })
    w:advance(5000)
    w:ready_within('db', 5000)
  end)
  it('passes', function() end)
end)
]]

-- The world made in before_each, the failure in the test.
local FAIL_BEFORE = [[
local testing = require 'orch.testing'
describe('setup', function()
  local w
  before_each(function()
    w = testing.world('main.lua', { behaviours = { db = { exit = 100, code = 1 } } })
  end)
  it('app starts (it does not)', function()
    w:advance(5000)
    assert.is_truthy(w:ready_at('app'))
  end)
end)
]]

-- A project directory with main.lua and the given spec files.
local function project(specs)
  local dir = session.tmpdir()
  R.write_file(dir .. '/main.lua', MAIN)
  for name, text in pairs(specs) do
    R.write_file(dir .. '/' .. name, text)
  end
  return dir
end

describe('orch test', function()
  after_each(session.cleanup)

  it('runs the specs next to main.lua and exits 0 when they pass', function()
    local dir = project({ ['graph_spec.lua'] = PASS })
    local r = R.run({ 'test' }, { cwd = dir })
    assert.are.equal(0, r.code, r.out .. r.err)
    assert.matches('1 success / 0 failures', r.out)
    -- the same through the path of main.lua, from elsewhere
    r = R.run({ 'test', dir .. '/main.lua' })
    assert.are.equal(0, r.code, r.out .. r.err)
  end)

  it('a failing test: exit 1, the failure with the timeline, in each output format', function()
    local dir = project({ ['graph_spec.lua'] = FAIL })
    local r = R.run({ 'test' }, { cwd = dir })
    assert.are.equal(1, r.code)
    assert.matches('db was not ready within 5000 ms %(never ready%)', r.out)
    assert.matches('exit pid %d+, code 1', r.out)
    r = R.run({ 'test', '-o', 'TAP' }, { cwd = dir })
    assert.are.equal(1, r.code)
    assert.matches('not ok 1 %- graph db is ready', r.out)
    assert.matches('\nok 2 %- graph passes', r.out)
    r = R.run({ 'test', '-o', 'json' }, { cwd = dir })
    assert.are.equal(1, r.code)
    local doc = cjson.decode(r.out)
    assert.are.equal(1, #doc.failures)
    assert.are.equal(1, #doc.successes)
    r = R.run({ 'test', '-o', 'junit' }, { cwd = dir })
    assert.are.equal(1, r.code)
    local suites = r.out:match('<testsuites [^>]*>') -- attributes in any order
    assert.matches("tests='2'", suites)
    assert.matches("failures='1'", suites)
    assert.matches("<failure>graph_spec.lua:6: db was not ready", r.out)
  end)

  it('--timeline DIR writes each failing test\'s run as orch run --log-format json does, and '
    .. 'its picture through orch.timeline', function()
    local dir = project({ ['graph_spec.lua'] = FAIL })
    -- an orch.timeline of the test's own, found first on the path: it shows what it was given
    os.execute(('mkdir -p %s/lib/orch'):format(R.quote(dir)))
    R.write_file(dir .. '/lib/orch/timeline.lua', [[
return { svg_from_log_lines = function(lines)
  return ('<svg data-lines="%d"/>'):format(#lines)
end }]])
    local r = R.run({ 'test', '--timeline', 'out', '--lpath=' .. dir .. '/lib/?.lua' },
      { cwd = dir })
    assert.are.equal(1, r.code, r.out .. r.err)
    local jsonl = R.read_file(dir .. '/out/graph_db_is_ready_it_is_not.jsonl')
    assert.is_string(jsonl)
    local n, events = 0, {}
    for line in jsonl:gmatch('[^\n]+') do
      local rec = cjson.decode(line)
      n = n + 1
      assert.matches('^2026%-01%-01T00:00:0%d%.%d%d%dZ$', rec.ts)
      assert.is_string(rec.id)
      events[(rec.id or '') .. ':' .. tostring(rec.event or rec.stream)] = true
    end
    assert.is_true(events['db:spawn'] and events['db:exit'] and events['app:state'])
    assert.are.equal(('<svg data-lines="%d"/>'):format(n),
      R.read_file(dir .. '/out/graph_db_is_ready_it_is_not.svg'))
    assert.is_nil(R.read_file(dir .. '/out/graph_passes.jsonl')) -- passing tests: none
    -- a world made in before_each belongs to the test
    dir = project({ ['setup_spec.lua'] = FAIL_BEFORE })
    r = R.run({ 'test', '--timeline', 'out' }, { cwd = dir })
    assert.are.equal(1, r.code, r.out .. r.err)
    assert.matches('"id":"db","event":"spawn"',
      R.read_file(dir .. '/out/setup_app_starts_it_does_not.jsonl') or '')
  end)

  it('keeps busted inside orch when a .busted file names an interpreter, with options too',
    function()
      local dir = project({ ['graph_spec.lua'] = PASS })
      R.write_file(dir .. '/.busted', "return { _all = { lua = 'lua5.4' } }\n")
      for _, args in ipairs({ { 'test' }, { 'test', '-o', 'TAP', '--filter', 'waits' } }) do
        local r = R.run(args, { cwd = dir })
        assert.are.equal(0, r.code, table.concat(args, ' ') .. ': ' .. r.out .. r.err)
        assert.matches('1 success', r.out:gsub('ok 1', '1 success'))
      end
    end)

  it('says what is wrong with its arguments (exit 2)', function()
    local dir = project({})
    local r = R.run({ 'test' }, { cwd = dir })
    assert.are.equal(2, r.code)
    assert.matches("no %*_spec.lua file next to '%.'", r.err)
    r = R.run({ 'test', 'nowhere/main.lua' }, { cwd = dir })
    assert.are.equal(2, r.code)
    assert.matches("no such file or directory 'nowhere/main.lua'", r.err)
    r = R.run({ 'test', '--lua', 'lua5.4' }, { cwd = dir })
    assert.are.equal(2, r.code)
    assert.matches('orch test runs busted inside orch', r.err)
    r = R.run({ 'test', '--timeline' }, { cwd = dir })
    assert.are.equal(2, r.code)
    r = R.run({ 'test', '--help' })
    assert.are.equal(0, r.code)
    assert.matches('Usage: orch test', r.out)
  end)
end)
