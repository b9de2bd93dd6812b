-- Reload by difference with real processes (issue 13): SIGHUP and `orch reload` re-evaluate
-- main.lua and restart only the entries whose configHash changed and their dependents; a
-- failed script keeps the graph; `orch reload --full` replaces it; `orch run --watch` reloads
-- when a file the script read changes. Runs the real build/bin/orch (#integration).
local R = require 'fixtures.cli.runner'
local cjson = require 'cjson'

local F = R.FIXTURES

local session = R.session()
local start, tmpdir = session.start, session.tmpdir

-- The last pid each entry was started with, in `text`.
local function pids(text)
  local out = {}
  for id, p in text:gmatch('([%w-]+): started %(pid (%d+)') do
    out[id] = tonumber(p)
  end
  return out
end

local function conf(dir, t)
  local parts = {}
  for k, v in pairs(t) do
    parts[#parts + 1] = ('%s = %s'):format(k, type(v) == 'string' and ('%q'):format(v)
      or tostring(v))
  end
  R.write_file(dir .. '/conf.lua', 'return { ' .. table.concat(parts, ', ') .. ' }\n')
end

local function group_alive(pgid)
  return os.execute(('kill -0 -- -%d 2>/dev/null'):format(pgid)) == true
end

local function setup(c, extra_args)
  local dir = tmpdir()
  R.write_file(dir .. '/main.lua', R.read_file(F .. '/reload.lua'))
  conf(dir, c)
  local sock = dir .. '/orch.sock'
  local args = { 'run', '--control', sock }
  for _, a in ipairs(extra_args or {}) do
    args[#args + 1] = a
  end
  args[#args + 1] = dir .. '/main.lua'
  local p = start(args)
  p:wait_for('api: starting %-> success', 15000)
  local want = c.extra and { 'db', 'api', 'other', 'gone' } or { 'db', 'api', 'other' }
  local got = R.wait_until(function()
    local t = pids(p:out())
    for _, id in ipairs(want) do
      if not t[id] then
        return false
      end
    end
    return t
  end, 10000, 'every entry started')
  return p, dir, sock, got
end

local function ctl(sock, ...)
  local args = { ... }
  args[#args + 1] = '--control'
  args[#args + 1] = sock
  return R.run(args, { timeout = 30 })
end

describe('reload by difference #integration', function()
  after_each(session.cleanup)

  it('SIGHUP: the changed entry and its dependent restart (the dependent once its requirement '
    .. 'is ready again), the others keep their pid, a removed entry\'s group is gone', function()
      local p, dir, _, before = setup({ port = 1, extra = true })
      conf(dir, { port = 2, db_ms = 300 })
      local mark = #p:out()
      p:signal('HUP')
      local text = p:wait_for('reloaded: 3 entries', 15000)
      assert.matches('kept 1; restarted 2: db %(exec.env changed%), api %(requires db%); '
        .. 'removed 1: gone', text)
      p:wait_for('api: starting %-> success.*api: starting %-> success', 15000)
      local after = pids(p:out())
      assert.are.equal(before.other, after.other)
      assert.are_not.equal(before.db, after.db)
      assert.are_not.equal(before.api, after.api)
      assert.is_false(R.alive(before.db))
      assert.is_false(R.alive(before.api))
      assert.is_false(group_alive(before.gone))
      assert.is_true(R.alive(before.other))
      local tail = p:out():sub(mark + 1)
      -- stops one at a time, dependents first; api starts only after db is ready again
      local api_stop = assert(tail:find('api: stopping', 1, true))
      local db_stop = assert(tail:find('db: stopping', 1, true))
      assert.is_true(api_stop < db_stop)
      local db_ready = assert(tail:find('db: starting -> success', 1, true))
      local api_start = assert(tail:find('api: started', 1, true))
      assert.is_true(db_ready < api_start)
      p:signal('TERM')
      assert.equal(0, p:wait())
    end)

  it('orch reload: nothing changed keeps every pid; an addition starts; a broken script keeps '
    .. 'the graph and exits 1; status shows the outcome; --full restarts all', function()
      local p, dir, sock, before = setup({ port = 1 })
      local r = ctl(sock, 'reload')
      assert.equal(0, r.code, r.err)
      assert.equal('reloaded: kept 3\n', r.out)
      assert.matches('\nlast reload: kept 3\n', ctl(sock, 'status').out)
      conf(dir, { port = 1, added = true })
      r = ctl(sock, 'reload', '--json')
      assert.equal(0, r.code, r.err)
      local obj = cjson.decode(r.out)
      assert.are.same({ 'added' }, obj.added)
      assert.are.same({ 'db', 'api', 'other' }, obj.kept)
      R.wait_until(function()
        return pids(p:out()).added
      end, 10000, 'added started')
      local now = pids(p:out())
      for _, id in ipairs({ 'db', 'api', 'other' }) do
        assert.are.equal(before[id], now[id])
      end
      R.write_file(dir .. '/conf.lua', 'return {')
      r = ctl(sock, 'reload')
      assert.equal(1, r.code)
      assert.matches('conf.lua', r.err)
      p:wait_for('reload failed, the current graph keeps running')
      local st = cjson.decode(ctl(sock, 'status', '--json').out)
      assert.is_false(st.orch.lastReload.ok)
      assert.matches('conf.lua', st.orch.lastReload.message)
      assert.matches('\nlast reload failed: [^\n]*conf%.lua', ctl(sock, 'status').out)
      assert.are.equal(before.db, pids(p:out()).db)
      conf(dir, { port = 1 })
      r = ctl(sock, 'reload', '--full')
      assert.equal(0, r.code, r.err)
      assert.matches('^reloaded %(full%): 3 entries', r.out)
      local full = pids(p:out())
      assert.are_not.equal(before.other, full.other)
      assert.is_false(R.alive(now.added))
      p:signal('TERM')
      assert.equal(0, p:wait())
    end)

  it('Daemons.dynamic under orch run: fn runs at start and on SIGHUP with ctx.reload; only the '
    .. 'changed entry and its dependent restart; orch status sees the entries', function()
      local dir = tmpdir()
      R.write_file(dir .. '/main.lua', R.read_file(F .. '/dynamic.lua'))
      conf(dir, { port = 1 })
      local sock = dir .. '/orch.sock'
      local p = start({ 'run', '--control', sock, dir .. '/main.lua' })
      p:wait_for('dynamic fn: reload=0', 10000, 'err')
      local before = R.wait_until(function()
        local t = pids(p:out())
        return t.db and t.api and t.other and t
      end, 10000, 'every entry started')
      local st = cjson.decode(ctl(sock, 'status', '--json').out)
      assert.equal(3, #st.entries)
      conf(dir, { port = 2 })
      p:signal('HUP')
      p:wait_for('dynamic fn: reload=1', 10000, 'err')
      p:wait_for('reloaded: 3 entries %(3 daemons%); kept 1; restarted 2: db %(exec.env changed%)'
        .. ', api %(requires db%)', 10000)
      local after = R.wait_until(function()
        local t = pids(p:out())
        return t.api ~= before.api and t
      end, 10000, 'api restarted')
      assert.are.equal(before.other, after.other)
      assert.are_not.equal(before.db, after.db)
      -- an error in fn: logged, nothing changes
      R.write_file(dir .. '/conf.lua', 'error("bad conf")')
      local r = ctl(sock, 'reload')
      assert.equal(1, r.code)
      assert.matches('bad conf', r.err)
      assert.are.same(after, pids(p:out()))
      assert.is_true(R.alive(after.db))
      p:signal('TERM')
      assert.equal(0, p:wait())
      assert.is_false(R.alive(after.db))
    end)

  it('orch run --watch: a change to a file the script read reloads by difference, a broken '
    .. 'main.lua keeps the graph, fixing it reloads again', function()
      local p, dir, _, before = setup({ port = 1 }, { '--watch' })
      conf(dir, { port = 2 })
      p:wait_for('watch: changed: [^\n]*/conf%.lua', 10000)
      p:wait_for('reloaded: 3 entries %(3 daemons%); kept 1; restarted 2: db %(exec.env '
        .. 'changed%), api %(requires db%)', 10000)
      local after = R.wait_until(function()
        local t = pids(p:out())
        return t.api ~= before.api and t
      end, 10000, 'api restarted')
      assert.are.equal(before.other, after.other)
      local main = R.read_file(dir .. '/main.lua')
      R.write_file(dir .. '/main.lua', 'return 1 +\n')
      p:wait_for('reload failed, the current graph keeps running', 10000)
      R.write_file(dir .. '/main.lua', main)
      p:wait_for('reloaded: 3 entries %(3 daemons%); kept 3', 10000)
      assert.are.same(after, pids(p:out()))
      p:signal('TERM')
      assert.equal(0, p:wait())
    end)

  it('Daemons.dynamic with --watch: a file the function read (not the script) is watched, '
    .. 'and its change reruns the function', function()
      local dir = tmpdir()
      R.write_file(dir .. '/main.lua', R.read_file(F .. '/dynamic.lua'))
      conf(dir, { port = 1 })
      local p = start({ 'run', '--no-control', '--watch', dir .. '/main.lua' })
      p:wait_for('dynamic fn: reload=0', 10000, 'err')
      local before = R.wait_until(function()
        local t = pids(p:out())
        return t.db and t.api and t.other and t
      end, 10000, 'every entry started')
      conf(dir, { port = 2 })
      p:wait_for('watch: changed: [^\n]*/conf%.lua', 10000)
      p:wait_for('dynamic fn: reload=1', 10000, 'err')
      p:wait_for('reloaded: 3 entries %(3 daemons%); kept 1; restarted 2: db %(exec.env changed%)'
        .. ', api %(requires db%)', 10000)
      local after = R.wait_until(function()
        local t = pids(p:out())
        return t.api ~= before.api and t
      end, 10000, 'api restarted')
      assert.are.equal(before.other, after.other)
      p:signal('TERM')
      assert.equal(0, p:wait())
    end)

  it("reloadOnChange = 'signal': an env or env-file change sends exec.reloadSignal to the "
    .. 'same process; an entry without it restarts on an env-file change', function()
      local dir = tmpdir()
      R.write_file(dir .. '/main.lua', R.read_file(F .. '/reload_signal.lua'))
      conf(dir, { greeting = 'hi' })
      R.write_file(dir .. '/app.env', 'FROM=one\n')
      R.write_file(dir .. '/app.conf', 'v1')
      local sock = dir .. '/orch.sock'
      local p = start({ 'run', '--control', sock, dir .. '/main.lua' })
      p:wait_for('app +| started env=hi from=one', 15000)
      p:wait_for('plain +| started from=one', 15000)
      local before = pids(p:out())
      -- exec.env changed: signalled; the process keeps its environment
      conf(dir, { greeting = 'hello' })
      local r = ctl(sock, 'reload')
      assert.equal(0, r.code, r.err)
      assert.equal('reloaded: kept 1\nsignalled (reloadOnChange): app (exec.env changed)\n', r.out)
      p:wait_for('reloaded: 2 entries %(2 daemons%); kept 1; signalled %(reloadOnChange%) 1: app '
        .. '%(exec.env changed%)', 15000)
      p:wait_for('app +| reloaded: v1 env=hi from=one', 15000)
      -- the env file's content changed: app signalled again, plain restarted with it
      R.write_file(dir .. '/app.env', 'FROM=two\n')
      R.write_file(dir .. '/app.conf', 'v2')
      r = ctl(sock, 'reload')
      assert.equal(0, r.code, r.err)
      assert.equal('reloaded: kept 0\nrestarted: plain (the content of exec.envFile changed)\n'
        .. 'signalled (reloadOnChange): app (the content of exec.envFile changed)\n', r.out)
      p:wait_for('app +| reloaded: v2 env=hi from=one', 15000)
      p:wait_for('plain +| started from=two', 15000)
      local after = pids(p:out())
      assert.are.equal(before.app, after.app)
      assert.are_not.equal(before.plain, after.plain)
      -- nothing changed: nothing is signalled
      r = ctl(sock, 'reload')
      assert.equal('reloaded: kept 2\n', r.out)
      -- the new configuration is the entry's: its next process starts with it
      assert.equal(0, ctl(sock, 'restart', 'app').code)
      p:wait_for('app +| started env=hello from=two', 15000)
      p:signal('TERM')
      assert.equal(0, p:wait())
    end)

  it('a chain the script built is stopped when a reload replaces its evaluation, unless it '
    .. 'was detached (then orch stops it when orch stops)', function()
      for _, mode in ipairs({ 'plain', 'detach', 'dynamic' }) do
        local sock = tmpdir() .. '/orch.sock'
        local p = start({ 'run', '--control', sock, F .. '/detach.lua', mode })
        p:wait_for('side +| side up', 15000)
        p:wait_for('main: started', 15000, nil, true)
        assert.equal(0, ctl(sock, 'reload').code) -- returns once the reload is done
        if mode == 'plain' then
          p:wait_for('side +| side got TERM', 15000)
        end
        p:signal('TERM')
        assert.equal(0, p:wait(), mode)
        local text = p:out()
        -- stopped exactly once, with SIGTERM: at the reload (plain) or at orch's stop
        local _, n = text:gsub('side +| side got TERM', '')
        assert.equal(1, n, mode .. '\n' .. text)
        local at = assert(text:find('side +| side got TERM'))
        local stop = assert(text:find('SIGTERM: stopping', 1, true))
        assert.is_true(mode == 'plain' and at < stop or mode ~= 'plain' and at > stop,
          mode .. '\n' .. text)
      end
    end)

  it('a chain a Daemons.dynamic function built is stopped with SIGTERM when orch stops',
    function()
      local p = start({ 'run', '--no-control', F .. '/detach.lua', 'fn' })
      p:wait_for('side +| side up', 15000)
      p:wait_for('main: started', 15000, nil, true)
      p:signal('TERM')
      assert.equal(0, p:wait())
      assert.truthy(p:out():find('side +| side got TERM'), p:out())
    end)
end)
