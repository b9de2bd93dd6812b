-- Real processes on the real core (#integration): a three-level chain with port readiness, the
-- term order of processes that trap SIGTERM, SIGKILL escalation, a crash loop's first delays,
-- runUntilSuccess success and timeout, and the real-process halves of 59 and 62.
-- Every run is bounded by a watchdog; waits are conditions with deadlines. When things happen to
-- the millisecond is the virtual-clock specs' job (daemons_shutdown, daemons_restart,
-- daemons_run_until_success); here only order and lower bounds (a real timer is never early) are
-- checked, so a loaded machine cannot fail them.
local H = require 'spec.support.helpers'

insulate('Daemons with real processes #integration', function()
  local orch = H.real()
  local Daemons, healthCheck = orch.Daemons, orch.healthCheck
  local fx = H.effects_per_test() -- no process a test spawned may outlive it

  local function ok_fn()
    return { result = 'success', message = 'ok' }
  end

  local function first_event(id, event)
    return fx.events(id, event)[1]
  end

  -- Whether process `pid` has SIGTERM in its `field` of /proc/<pid>/status (SigIgn: ignored,
  -- SigCgt: caught; SIGTERM is bit 14): the shell has run its `trap ... TERM`.
  local function term_in(field, pid)
    local f = io.open(('/proc/%d/status'):format(pid))
    if not f then
      return false
    end
    local mask = f:read('a'):match(field .. ':%s*(%x+)')
    f:close()
    return mask ~= nil and (tonumber(mask, 16) & (1 << 14)) ~= 0
  end

  local function listener(port, delay)
    return { 'python3', '-u', '-c', ([[
import socket, time
time.sleep(%s)
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('127.0.0.1', %d)); s.listen(5)
while True:
    time.sleep(1)
]]):format(delay, port) }
  end

  it('a three-level chain with port readiness starts in dependency order and stops cleanly',
    function()
      local p1, p2 = H.free_port(), H.free_port()
      local chain = Daemons.of{ effects = fx }
        :addDaemon('db', { exec = { command = listener(p1, 0.3) }, ready = { display = 'DB',
          fn = function()
            return healthCheck.checkPortListening(p1, { successMessage = 'db up' })
          end }, requires = {} })
        :addDaemon('api', { exec = { command = listener(p2, 0.2) }, ready = { display = 'API',
          fn = function()
            return healthCheck.checkPortListening(p2, { successMessage = 'api up' })
          end }, requires = { 'db' } })
        :addHealthCheck('web', { ready = { display = 'Web', fn = function()
          return healthCheck.checkPortListening(p2, { successMessage = 'reachable' })
        end }, requires = { 'api' } })
      H.run(function()
        chain:build()
        H.wait_until(function()
          local w = fx.last('web')
          return w and w.result == 'success'
        end, 20000, 20, 'web success')
        chain:term()
      end, 30000)
      local db_ok
      for _, r in ipairs(fx.of('db')) do
        if r.result == 'success' then
          db_ok = db_ok or r
        end
      end
      local api_spawn = first_event('api', 'spawn')
      assert.is_true(db_ok.t >= first_event('db', 'spawn').t + 300)
      assert.is_true(api_spawn.t >= db_ok.t, 'api started before db was ready')
      assert.are.equal('reachable', fx.last('web').message)
      -- shutdown order: api (after web) before db
      assert.is_true(first_event('api', 'exit').t <= first_event('db', 'term').t)
    end)

  it('45: term() stops layers in reverse order, each after the previous one exited', function()
    local trap = "trap 'sleep 0.3; exit 0' TERM; while :; do sleep 0.05; done"
    local chain = Daemons.of{ effects = fx }
      :addDaemon('a', { exec = { command = trap }, ready = { display = 'A', fn = ok_fn },
        requires = {} })
      :addDaemon('b', { exec = { command = trap }, ready = { display = 'B', fn = ok_fn },
        requires = { 'a' } })
      :addDaemon('c', { exec = { command = trap }, ready = { display = 'C', fn = ok_fn },
        requires = { 'b' } })
    local T, returned
    H.run(function()
      chain:build()
      H.wait_until(function()
        return #fx.events('c', 'spawn') == 1 and fx.last('c').result == 'success'
      end, 5000)
      for _, id in ipairs { 'a', 'b', 'c' } do -- the handshake: every shell has its trap
        H.wait_until(function()
          return term_in('SigCgt', first_event(id, 'spawn').pid)
        end, 5000, id .. "'s trap")
      end
      T = orch.now()
      chain:term()
      returned = orch.now()
    end, 15000)
    local c_exit, b_term = first_event('c', 'exit'), first_event('b', 'term')
    local b_exit, a_term = first_event('b', 'exit'), first_event('a', 'term')
    assert.is_true(first_event('c', 'term').t >= T)
    assert.is_true(b_term.t >= c_exit.t, 'b was stopped before c exited')
    assert.is_true(a_term.t >= b_exit.t, 'a was stopped before b exited')
    assert.is_true(returned >= first_event('a', 'exit').t, 'term() returned before a exited')
    for _, id in ipairs { 'a', 'b', 'c' } do
      assert.are.same({ 0, true }, { first_event(id, 'exit').code, first_event(id, 'exit').clean })
    end
  end)

  it('47: a process that ignores SIGTERM is SIGKILLed after sigtermTimeout', function()
    local chain = Daemons.of{ effects = fx }:addDaemon('stubborn', {
      exec = { command = "trap '' TERM; while :; do sleep 0.05; done", sigtermTimeout = 500 },
      ready = { display = 'Stubborn', fn = ok_fn },
      requires = {},
    })
    local T, returned
    H.run(function()
      chain:build()
      local spawn = H.wait_until(function()
        return first_event('stubborn', 'spawn')
      end, 3000, 'the spawn')
      H.wait_until(function() -- the handshake: the shell has installed its trap
        return term_in('SigIgn', spawn.pid)
      end, 5000, 'the shell to ignore SIGTERM')
      T = orch.now()
      chain:term()
      returned = orch.now()
    end, 10000)
    -- when exactly (500 ms) is daemons_shutdown_spec 47 on the virtual clock; a real timer is
    -- never early, so only the lower bound is checked here
    local kill = first_event('stubborn', 'kill')
    assert.is_true(kill.t - T >= 500, 'SIGKILL at +' .. (kill.t - T))
    assert.are.equal('SIGKILL', first_event('stubborn', 'exit').signal)
    assert.is_true(returned >= first_event('stubborn', 'exit').t, 'term() returned before the exit')
    assert.are.equal(1, #fx.logged('stubborn: /bin/sh exited with signal SIGKILL on stop'))
  end)

  it('35: a crash loop restarts after 0, 1000, 2000 ms', function()
    local chain = Daemons.of{ effects = fx }:addDaemon('crashy', {
      exec = { command = { 'sh', '-c', 'exit 1' } },
      ready = { display = 'Crashy', fn = ok_fn },
      requires = {},
    })
    H.run(function()
      chain:build()
      H.wait_until(function()
        return #fx.events('crashy', 'spawn') >= 4
      end, 6000, 20)
      chain:term()
    end, 10000)
    local spawns, exits = fx.events('crashy', 'spawn'), fx.events('crashy', 'exit')
    for k = 1, 3 do
      local delay = spawns[k + 1].t - exits[k].t
      -- the schedule to the ms: daemons_restart_spec 35 (virtual clock)
      assert.is_true(delay >= 1000 * (k - 1), ('delay after exit %d: %d ms'):format(k, delay))
    end
    assert.are.same({ 1, 'sh exited with code 1' }, { exits[1].code, exits[1].message })
  end)

  it('55: runUntilSuccess returns true after everything is ready and stopped', function()
    local port = H.free_port()
    local chain = Daemons.of{ effects = fx }
      :addDaemon('server', { exec = { command = listener(port, 0.3) }, ready = {
        display = 'Server', fn = function()
          return healthCheck.checkPortListening(port)
        end }, requires = {} })
      :addOneshot('bootstrap', { exec = { command = { 'sh', '-c', 'sleep 0.2' } },
        requires = { 'server' } })
    local ok, returned
    H.run(function()
      ok = chain:runUntilSuccess(20000)
      returned = orch.now()
    end, 30000)
    assert.is_true(ok)
    local server_ok
    for _, r in ipairs(fx.of('server')) do
      server_ok = server_ok or (r.result == 'success' and r)
    end
    assert.is_true(first_event('bootstrap', 'spawn').t >= server_ok.t, 'bootstrap ran early')
    assert.is_true(returned >= first_event('server', 'exit').t, 'returned before the stop')
    assert.are.equal(0, first_event('bootstrap', 'exit').code)
  end)

  it('56: runUntilSuccess times out, stops everything, then raises with diagnostics', function()
    local chain = Daemons.of{ effects = fx }
      :addDaemon('web', { exec = { command = { 'sleep', '30' } }, ready = { display = 'Web',
        fn = function()
          return { result = 'failure', message = 'not listening' }
        end }, requires = {} })
      :addOneshot('seed', { exec = { command = { 'true' } }, requires = { 'web' } })
    local ok, err, took
    H.run(function()
      local t0 = orch.now()
      ok, err = pcall(chain.runUntilSuccess, chain, 1500)
      took = orch.now() - t0
    end, 10000)
    assert.is_false(ok)
    assert.are.equal('timeout', err.code)
    assert.matches('^Timed out waiting for web,seed\n  web: failure "not listening"; last exit: '
      .. 'none; restarts: 0', tostring(err))
    -- a real timer is never early; the exact instant is daemons_run_until_success_spec 56
    assert.is_true(took >= 1500, 'took ' .. took)
    assert.are.equal('SIGTERM', first_event('web', 'exit').signal)
  end)

  it('59: a string command runs under sh -c (the shell expands $HOME)', function()
    local dir = os.tmpname()
    os.remove(dir)
    local out1, out2 = dir .. '.1', dir .. '.2'
    local chain = Daemons.of{ effects = fx }
      :addOneshot('home', { exec = { command = 'echo "$HOME" > ' .. out1 }, requires = {} })
      :addOneshot('custom', { exec = { command = 'echo "$HOME" > ' .. out2,
        env = { HOME = '/custom/home' } }, requires = {} })
    H.run(function()
      assert.is_true(chain:runUntilSuccess(5000))
    end, 10000)
    local function read(p)
      local f = assert(io.open(p))
      local s = f:read('*a')
      f:close()
      os.remove(p)
      return s
    end
    assert.are.equal(require('orch.core').environ().HOME .. '\n', read(out1))
    assert.are.equal('/custom/home\n', read(out2))
  end)

  it('62: onStdout chunks concatenate to the exact bytes; the other pipe is drained', function()
    local got = {}
    local chain = Daemons.of{ effects = fx }:addOneshot('talker', {
      exec = {
        command = { 'python3', '-c', [[
import sys
sys.stderr.buffer.write(b'e' * 1000000)
sys.stdout.buffer.write(bytes(range(256)) * 4096)
]] },
        onStdout = function(chunk)
          got[#got + 1] = chunk
        end,
      },
      requires = {},
    })
    H.run(function()
      assert.is_true(chain:runUntilSuccess(10000))
    end, 15000)
    local all = table.concat(got)
    assert.are.equal(256 * 4096, #all)
    assert.are.equal(string.char(table.unpack((function()
      local t = {}
      for i = 0, 255 do
        t[#t + 1] = i
      end
      return t
    end)())):rep(4096), all)
    assert.is_true(#got > 1)
    assert.are.equal(1000000, #fx.text('talker', 'stderr'))
  end)
end)
