-- orch.testing: a main.lua in a simulated world (orch run's own Run on the fake core), its
-- behaviours, driving, injected events, history and assertion helpers.
local testing = require 'orch.testing'

local STACK = 'spec/fixtures/testing/stack.lua'

-- The stack of the fixture, every entry scripted to come up.
local function stack(extra, opts)
  local b = {
    migrate = { exit = 500, code = 0, stdout = 'migrated 3 tables\n' },
    db = { listen = 5432, listen_after = 1000 },
    api = { listen = 9001, listen_after = 200, http = 200 },
    web = { listen = 8081 },
    notifier = { notify = 300 },
  }
  for k, v in pairs(extra or {}) do
    b[k] = v
  end
  opts = opts or {}
  return testing.world(STACK, { args = { '8081' }, env = { API_PORT = '9001' }, behaviours = b,
    commands = opts.commands or { ['^check%-disk'] = { exit = 10, code = 0 } } })
end

describe('orch.testing', function()
  it('starts the graph in dependency order on virtual time, with args and env', function()
    local w = stack()
    w:advance(10000)
    assert.are.equal(0, w:now() - 10000)
    assert.are.same({ 'starting', 'success' }, w:results('migrate'))
    assert.are.equal(500, w:ready_at('migrate'))
    local db = w:ready_within('db', 2000)
    assert.is_true(db >= 1500) -- spawned at 500 when migrate succeeded, listens 1000 ms later
    assert.is_true(w:ready_within('api', 3000) > db)
    assert.is_true(w:ready_at('web') > w:ready_at('api'))
    assert.are.equal('Port 8081 is listening', w.history:results('web')[3].message)
    assert.are.equal(300, w:ready_at('notifier')) -- sd_notify READY=1 after 300 ms
    assert.are.equal('success', w:result('disk')) -- runHealthScript, scripted by command
    local out = w.history:of('migrate')
    local line
    for _, r in ipairs(out) do
      line = line or (r.stream == 'stdout' and r.line)
    end
    assert.are.equal('migrated 3 tables', line)
    assert.are.equal(0, w:stop())
    w:stopped_before('web', 'api')
    w:stopped_before('api', 'db')
  end)

  it('HTTP answers follow the process: a 503 keeps api starting, then failing', function()
    local w = stack({ api = { listen = 9001, http = 503 } })
    w:advance(60000)
    assert.is_nil(w:ready_at('api'))
    assert.are.equal('failure', w:result('api'))
    w:never_started('web')
    w:stop()
  end)

  it('crashes on the nth start: restarts with the backoff, dependents wait', function()
    local w = stack({ db = { listen = 5432, listen_after = 1000, crash_on = { 1, 2 },
      crash_after = 300 } })
    w:advance(20000)
    w:restarted('db', 2)
    local r = w:restarts('db')
    assert.are.same({ 0, 1000 }, { r[1].delay, r[2].delay })
    local exits = w.history:exits('db')
    assert.are.same({ 1, 1 }, { exits[1].code, exits[2].code })
    assert.is_true(w.history:spawns('api')[1].t > r[2].t) -- api waited for the third db
    w:stop()
  end)

  it('a process that ignores SIGTERM is killed after sigtermTimeout; one that needs 700 ms '
    .. 'to stop gets them', function()
    local w = stack({ db = { listen = 5432, on_term = 'ignore' },
      api = { listen = 9001, http = 200, on_term = 700 } })
    w:advance(5000)
    local t0 = w:now()
    w:stop()
    local sig = w.history:signals('db')
    local got = {}
    for _, s in ipairs(sig) do
      if s.event == 'received' then
        got[#got + 1] = ('%s@%d'):format(s.signal, s.t - t0)
      end
    end
    local api_exit = w.history:exits('api')[1]
    assert.are.equal(700, api_exit.t - t0)
    assert.are.same({ 'SIGTERM@700', 'SIGKILL@2700' }, got) -- db after api, then 2000 ms
    w:stopped_before('api', 'db')
  end)

  it('injected events: a killed process restarts, a port that stops listening fails', function()
    local w = stack()
    w:advance(5000)
    assert.are.equal(1, w:kill('api'))
    w:advance(100)
    assert.are.equal(1, #w:restarts('api'))
    assert.are.equal('SIGKILL', w.history:exits('api')[1].signal)
    w:port(5432, false)
    assert.is_true(w:run_until(function()
      return w:result('db') == 'failure'
    end, 60000))
    w:port(5432, nil)
    assert.is_true(w:run_until(function()
      return w:result('db') == 'success'
    end, 60000))
    w:stop()
  end)

  it('SIGHUP with an edited script restarts only what changed', function()
    local w = stack()
    w:advance(5000)
    local f = assert(io.open(STACK))
    local text = f:read('a'):gsub("'notifier' }", "'notifier', '--verbose' }")
    f:close()
    assert.is_true(w:reload(text))
    w:advance(1000)
    assert.are.equal(2, #w.history:spawns('notifier'))
    assert.are.equal(1, #w.history:spawns('db'))
    assert.are.equal('success', w:result('notifier'))
    w:stop()
  end)

  it('uses N MiB: above exec.limits.memory the OOM killer kills it, as the kernel would',
    function()
      local path = os.tmpname()
      local f = assert(io.open(path, 'w'))
      f:write([[
local orch = require 'orch'
return orch.Daemons.of{}
  :addDaemon('hog', { exec = { command = { 'hog' }, limits = { memory = '64M' } },
    ready = { display = 'Hog', fn = function() return { result = 'success' } end },
    requires = {} })
]])
      f:close()
      local w = testing.world(path, { behaviours = { hog = { runs = {
        { memory = 100, memory_after = 2000 }, { memory = 32 } } } } })
      w:advance(10000)
      local exits = w.history:exits('hog')
      assert.are.equal(1, #exits)
      assert.are.equal('SIGKILL', exits[1].signal)
      assert.are.equal(2000, exits[1].t)
      assert.matches('killed by the OOM killer: exec.limits.memory %(67108864 bytes%) reached',
        exits[1].message)
      w:restarted('hog', 1) -- the second one (32 MiB) stays
      assert.are.equal(0, w:stop())
      os.remove(path)
    end)

  it('is deterministic: the same spec gives the same log, line for line', function()
    local function run()
      local w = stack({ db = { listen = 5432, listen_after = 1000, crash_on = 1 } })
      w:advance(30000)
      w:kill('web', 'SIGTERM')
      w:advance(30000)
      w:stop()
      return table.concat(w:log_lines(), '\n')
    end
    local a, b = run(), run()
    assert.are.equal(a, b)
    assert.is_true(#a > 1000)
  end)

  it('assertion helpers fail with the timeline of the entries involved', function()
    local w = stack()
    w:advance(3000)
    local ok, e = pcall(w.restarted, w, 'db', 3)
    assert.is_false(ok)
    e = tostring(type(e) == 'table' and e.message or e)
    assert.matches('db was restarted 0 times, expected 3', e, 1, true)
    assert.matches('timeline of db:', e, 1, true)
    assert.matches('waiting %-> starting', e)
    assert.is_nil(e:find('notifier', 1, true))
    ok, e = pcall(w.never_started, w, 'api')
    assert.is_false(ok)
    assert.matches('api was started 1 times', tostring(type(e) == 'table' and e.message or e),
      1, true)
    ok = pcall(w.stopped_before, w, 'db', 'web')
    assert.is_false(ok)
    w:stop()
  end)

  it('a script that fails to evaluate raises orch\'s message', function()
    local path = os.tmpname()
    local f = assert(io.open(path, 'w'))
    f:write("local orch = require 'orch'\nreturn orch.Daemons.of{}:addDaemon('x', {})\n")
    f:close()
    local ok, e = pcall(testing.world, path)
    os.remove(path)
    assert.is_false(ok)
    assert.matches('x', tostring(e))
    assert.matches(path:match('[^/]+$') .. ':2', tostring(e), 1, true)
  end)

  it('leaves the modules around it alone; two worlds do not share a scheduler', function()
    local before = package.loaded['orch.runtime.sched']
    local a, b = stack(), stack()
    a:advance(5000)
    assert.are.equal(0, b:now())
    b:advance(100)
    assert.are.equal(5000, a:now())
    assert.are.equal(before, package.loaded['orch.runtime.sched'])
    a:stop()
    b:stop()
  end)

  -- 50 daemons in 10 layers of 5 (each requires the one above it), every one probed by a
  -- checkPortListening; the 5 of the last layer crash every minute (a restart cascade, where
  -- every dependent is stopped and probed again at each crash, costs more: see the README).
  it('one hour of virtual time with 50 entries runs in well under a second', function()
    local path = os.tmpname()
    local f = assert(io.open(path, 'w'))
    f:write("local orch = require 'orch'\nlocal c = orch.Daemons.of{}\n")
    for i = 1, 50 do
      f:write(([[
c = c:addDaemon('d%d', { exec = { command = { 'srv%d' } }, requires = { %s },
  ready = { display = 'D%d', fn = function()
    return orch.healthCheck.checkPortListening(%d, {}) end } })
]]):format(i, i, i > 5 and ("'d" .. (i - 5) .. "'") or '', i, 10000 + i))
    end
    f:write('return c\n')
    f:close()
    local b = {}
    for i = 1, 50 do
      b['d' .. i] = i > 45 and { exit = 60000, code = 1, listen = 10000 + i }
        or { listen = 10000 + i, listen_after = 100 }
    end
    local c0 = os.clock()
    local w = testing.world(path, { behaviours = b })
    w:advance(3600 * 1000)
    w:stop()
    local cpu = os.clock() - c0
    os.remove(path)
    assert.are.equal('success', w:result('d45'))
    w:restarted('d50', 30, { at_least = true })
    print(('\n50 entries, 1 h virtual: %.3f s CPU, %d log lines'):format(cpu,
      #w:log_lines()))
    -- measured 0.3 s on an idle machine, 0.7 s at load 7 on 2 cores (CPU time)
    assert.is_true(cpu < 1.5, ('took %.3f s'):format(cpu))
  end)
end)
