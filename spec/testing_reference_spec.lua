-- The simulator against real processes: reference.md section 4 scenarios run twice, by the real
-- orch (`orch run --log-format json`, shell commands with short sleeps) and in orch.testing's
-- simulated world (the same script, each command played by a fake process that behaves as it
-- does), and both logs must give each entry the same sequence of results, spawns, exits and
-- stop signals (and, for the shutdown, the same stop order). Timings are not compared: real
-- ones jitter. Tagged #integration (real processes).
local R = require 'fixtures.cli.runner'
local cjson = require 'cjson'
local testing = require 'orch.testing'

local SCRIPT = 'spec/fixtures/testing/reference.lua'
local READY = { stdout = 'ready\n' }

local function after(ms, b)
  local out = { output_after = ms }
  for k, v in pairs(b or READY) do
    out[k] = v
  end
  return out
end

-- One token per record that says what happened to an entry.
local function token(r)
  if r.event == 'state' then
    return 'state:' .. tostring(r.result)
  elseif r.event == 'exit' then
    return 'exit:' .. tostring(r.signal or math.tointeger(r.code) or r.code)
  elseif r.event == 'spawn' or r.event == 'term' or r.event == 'kill'
    or r.event == 'spawn-error' then
    return r.event
  end
  return nil
end

-- Per entry, the tokens of `records` in order; and the ids in the order of their exits.
local function sequences(records)
  local per, exits = {}, {}
  for _, r in ipairs(records) do
    local tk = r.id ~= 'orch' and token(r)
    if tk then
      per[r.id] = per[r.id] or {}
      table.insert(per[r.id], tk)
      if r.event == 'exit' then
        exits[#exits + 1] = r.id
      end
    end
  end
  return per, exits
end

local function count(records, id, event, result)
  local n = 0
  for _, r in ipairs(records) do
    if r.id == id and r.event == event and (result == nil or r.result == result) then
      n = n + 1
    end
  end
  return n
end

-- The complete lines of the real orch's stdout, decoded.
local function real_records(p)
  local text = p:out():match('^(.*\n)') or ''
  local out = {}
  for line in text:gmatch('[^\n]+') do
    out[#out + 1] = cjson.decode(line)
  end
  return out
end

local session = R.session()

-- Run scenario `name` on real processes: start orch, then for each step wait until
-- `step.until_(records)` and call `step.real(records)`; stop with SIGTERM. The records.
local function run_real(name, steps)
  local p = session.start({ 'run', '--no-control', '--log-format', 'json', SCRIPT, name })
  for _, step in ipairs(steps) do
    local recs = R.wait_until(function()
      local recs = real_records(p)
      return step.until_(recs) and recs
    end, 20000, name .. ': ' .. step.what)
    if step.real then
      step.real(recs)
    end
  end
  p:signal('TERM')
  assert.are.equal(0, p:wait(15000), p:err())
  return real_records(p)
end

-- The same in the simulated world, with `behaviours`.
local function run_sim(name, behaviours, steps)
  local w = testing.world(SCRIPT, { args = { name }, behaviours = behaviours })
  for _, step in ipairs(steps) do
    assert.is_true(w:run_until(function()
      return step.until_(w.history.records)
    end, 60000), name .. ': ' .. step.what)
    if step.sim then
      step.sim(w)
    end
  end
  assert.are.equal(0, w:stop())
  return w.history.records
end

local function same(name, behaviours, steps, opts)
  local real = run_real(name, steps)
  local sim = run_sim(name, behaviours, steps)
  local rs, rexits = sequences(real)
  local ss, sexits = sequences(sim)
  assert.are.same(rs, ss, name .. ': the same sequence per entry')
  if opts and opts.stop_order then
    assert.are.same(rexits, sexits, name .. ': the same order of exits')
  end
  return rs
end

local function when(what, fn, real, sim)
  return { what = what, until_ = fn, real = real, sim = sim }
end

describe('the simulator and real processes give the same results #integration', function()
  after_each(session.cleanup)

  it('16: AND of dependencies', function()
    local seq = same('and_deps', { a = after(200), b = after(1000), c = {} }, {
      when('c ready', function(recs)
        return count(recs, 'c', 'state', 'success') > 0
      end),
    })
    assert.are.same({ 'state:waiting', 'state:starting', 'spawn', 'state:success', 'term',
      'exit:SIGTERM' }, seq.c)
  end)

  it('18: oneshot gating', function()
    local seq = same('oneshot_gating', { init = { exit = 500, code = 0 }, app = {} }, {
      when('app ready', function(recs)
        return count(recs, 'app', 'state', 'success') > 0
      end),
    })
    assert.are.same({ 'state:starting', 'spawn', 'exit:0', 'state:success' }, seq.init)
  end)

  it('23: custom grace period', function()
    local seq = same('grace', { main = {} }, {
      when('main failure', function(recs)
        return count(recs, 'main', 'state', 'failure') > 0
      end),
    })
    assert.are.same({ 'state:starting', 'spawn', 'state:failure', 'term', 'exit:SIGTERM' },
      seq.main)
  end)

  it('35: crash backoff', function()
    local seq = same('backoff', { crashy = { exit = 0, code = 1 } }, {
      when('4 crashes', function(recs)
        return count(recs, 'crashy', 'exit') >= 4
      end),
    })
    assert.are.same({ 'state:starting', 'spawn', 'exit:1', 'spawn', 'exit:1', 'spawn', 'exit:1',
      'spawn', 'exit:1' }, seq.crashy)
  end)

  it('39: a dependency crash stops its dependents, which come back', function()
    local function kill_a(recs)
      for i = #recs, 1, -1 do
        if recs[i].id == 'a' and recs[i].event == 'spawn' then
          os.execute(('kill -KILL %d'):format(recs[i].pid))
          return
        end
      end
    end
    local seq = same('dep_crash', { a = after(200), b = {} }, {
      when('b ready', function(recs)
        return count(recs, 'b', 'state', 'success') > 0
      end, kill_a, function(w)
        w:kill('a', 'SIGKILL')
      end),
      when('b ready again', function(recs)
        return count(recs, 'b', 'state', 'success') > 1
      end),
    })
    assert.are.same({ 'state:waiting', 'state:starting', 'spawn', 'state:success',
      'state:waiting', 'term', 'exit:SIGTERM', 'state:starting', 'spawn', 'state:success', 'term',
      'exit:SIGTERM' }, seq.b)
  end)

  it('42: oneshot failure', function()
    same('oneshot_failure', { init = { exit = 0, code = 2 }, app = {} }, {
      when('4 failures', function(recs)
        return count(recs, 'init', 'exit') >= 4
      end),
    })
  end)

  it('45: shutdown in reverse-dependency layers', function()
    local slow = after(0, { stdout = 'ready\n', on_term = 300, term_code = 0 })
    same('shutdown_layers', { a = slow, b = slow, c = slow }, {
      when('c ready', function(recs)
        return count(recs, 'c', 'state', 'success') > 0
      end),
    }, { stop_order = true })
  end)
end)
