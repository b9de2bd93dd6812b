-- Group G of reference.md section 4: exec details (fake core). 59 and 62 also run against real
-- processes in daemons_integration_spec. 60 and 61 are reinterpreted for host mode: the
-- "image metadata" is a plain subcontainer table {entrypoint, cmd, env, user, workdir}.
local H = require 'spec.support.helpers'

insulate('Daemons exec (group G)', function()
  local fake, orch = H.fake()
  local Daemons = orch.Daemons
  local fx = H.fake_effects_per_test(fake) -- no fake process may outlive a test

  local function ok_fn()
    return { result = 'success', message = 'ok' }
  end

  local function entry(exec, sub)
    return { subcontainer = sub, exec = exec, ready = { display = false, fn = ok_fn },
      requires = {} }
  end

  local function run(chain, until_ms)
    H.run(function()
      chain:build()
      H.at(until_ms or 100)
      chain:term()
    end, (until_ms or 100) + 100000)
  end

  local function env_map(p)
    local m = {}
    for _, kv in ipairs(p.opts.env) do
      local k, v = kv:match('^([^=]*)=(.*)$')
      m[k] = v
    end
    return m
  end

  it('59: a string command runs under /bin/sh -c; a list runs directly', function()
    local chain = Daemons.of{ effects = fx }
      :addDaemon('s', entry({ command = 'echo "$HOME" >/tmp/out' }))
      :addDaemon('l', entry({ command = { 'echo', '$HOME' } }))
    run(chain)
    assert.are.same({ '/bin/sh', '-c', 'echo "$HOME" >/tmp/out' },
      fake.procs('echo "$HOME" >/tmp/out')[1].argv)
    assert.are.same({ 'echo', '$HOME' }, fake.procs('echo')[1].argv)
  end)

  it('60: useEntrypoint takes the command from the subcontainer metadata', function()
    local sub = { entrypoint = { '/init' }, cmd = { '--serve' } }
    local chain = Daemons.of{ effects = fx }
      :addDaemon('a', entry({ command = orch.useEntrypoint() }, sub))
      :addDaemon('b', entry({ command = orch.useEntrypoint({ '--x' }) }, sub))
      :addDaemon('c', entry({ command = orch.useEntrypoint() }, {}))
    run(chain, 1500)
    local inits = fake.procs('/init')
    assert.are.same({ '/init', '--serve' }, inits[1].argv)
    assert.are.same({ '/init', '--x' }, inits[2].argv)
    -- empty metadata: a spawn failure reported as a crash, backed off (0, 0, 1000)
    local errs = fx.events('c', 'spawn-error')
    assert.are.same({ 0, 0, 1000 }, H.times(errs))
    assert.are.equal('command cannot be empty', errs[1].message)
    assert.are.same({ 'failure', 'c daemon crashed: command cannot be empty' },
      { fx.state('c').result, fx.state('c').message })
    assert.are.equal('useEntrypoint(--x)', chain:entries()[2].exec)
  end)

  it('an error raised while spawning (a broken provider object) is that entry\'s spawn error',
    function()
      local broken = setmetatable({}, { __index = function(_, k)
        if k == 'entrypoint' then
          error('provider lost its image', 0)
        end
      end })
      local chain = Daemons.of{ effects = fx }
        :addDaemon('bad', entry({ command = orch.useEntrypoint() }, broken))
        :addDaemon('good', entry({ command = { 'good' } }))
      run(chain, 1500)
      local errs = fx.events('bad', 'spawn-error')
      assert.are.same({ 0, 0, 1000 }, H.times(errs)) -- backed off like any spawn failure
      assert.are.equal('spawn failed: provider lost its image', errs[1].message)
      assert.are.equal('failure', fx.state('bad').result)
      assert.are.equal(1, #fake.procs('good')) -- the rest of the chain is not affected
      assert.are.equal('success', fx.state('good').result)
    end)

  it('60: useEntrypoint without a subcontainer is a validation error', function()
    local ok, err = pcall(function()
      Daemons.of{ effects = fx }:addDaemon('a', entry({ command = orch.useEntrypoint() }))
    end)
    assert.is_false(ok)
    assert.matches("Daemons: entry 'a': exec.command = useEntrypoint() needs a subcontainer",
      err, 1, true)
  end)

  it('61: env overlays the orchestrator env, then the subcontainer env, then exec.env', function()
    local sub = { env = { A = '1', B = '2' }, user = 'app', workdir = '/srv' }
    local chain = Daemons.of{ effects = fx }
      :addDaemon('x', entry({ command = { 'x' }, env = { B = '3', C = nil, LANG = false } }, sub))
      :addDaemon('y', entry({ command = { 'y' }, user = '1000:1000', cwd = '/tmp' }))
      :addDaemon('z', entry({ command = { 'z' } }))
    run(chain)
    local x = fake.procs('x')[1]
    local env = env_map(x)
    assert.are.same({ '1', '3' }, { env.A, env.B })
    assert.is_nil(env.C)
    assert.is_nil(env.LANG) -- false unsets an inherited name
    assert.are.equal('/usr/local/bin:/usr/bin:/bin', env.PATH)
    -- the core gets numbers: orch.process resolves the name (or uid:gid) and the groups' owner
    assert.are.same({ 1000, 1000, 'app', '/srv', '/home/app' },
      { x.opts.uid, x.opts.gid, x.opts.groups_of, x.opts.cwd, env.HOME })
    local y = fake.procs('y')[1]
    assert.are.same({ 1000, 1000, '/tmp', '/home/app' }, { y.opts.uid, y.opts.gid, y.opts.cwd,
      env_map(y).HOME })
    local z = fake.procs('z')[1]
    assert.are.same({ nil, nil, '/root' }, { z.opts.uid, z.opts.cwd, env_map(z).HOME })
  end)

  it('62: onStdout gets the raw chunks; without callbacks output goes to effects.output; both '
    .. 'pipes are drained', function()
      fake.program('talker', { stdout = { 'hel', 'lo\n', 'wor', 'ld' }, stderr = 'oops\n' })
      local got = {}
      local chain = Daemons.of{ effects = fx }
        :addDaemon('cb', entry({ command = { 'talker' }, onStdout = function(c)
          got[#got + 1] = c
        end }))
        :addDaemon('plain', entry({ command = { 'talker' } }))
      run(chain)
      assert.are.same({ 'hel', 'lo\n', 'wor', 'ld' }, got)
      assert.are.equal('oops\n', fx.text('cb', 'stderr')) -- the other pipe is still read
      assert.are.equal('', fx.text('cb', 'stdout'))
      assert.are.equal('hello\nworld', fx.text('plain', 'stdout'))
      assert.are.equal('oops\n', fx.text('plain', 'stderr'))
      for _, p in ipairs(fake.procs('talker')) do
        assert.are.equal('function', type(p.opts.stdout))
        assert.are.equal('function', type(p.opts.stderr))
      end
    end)

  it('62: without effects.output the chunks go to orch\'s stdout as they are', function()
    fake.program('talker', { stdout = 'raw bytes\0\n' })
    local written = {}
    local real = io.stdout
    io.stdout = { write = function(_, s) -- luacheck: ignore
      written[#written + 1] = s
    end, flush = function() end }
    local ok, err = pcall(function()
      local chain = Daemons.of{ effects = { setHealth = function() end } }
        :addDaemon('t', entry({ command = { 'talker' } }))
      run(chain)
    end)
    io.stdout = real -- luacheck: ignore
    assert(ok, err)
    assert.are.same({ 'raw bytes\0\n' }, written)
  end)

  it('62: an output callback that raises is logged and the output keeps flowing', function()
    fake.program('talker', { stdout = { 'a', 'b' } })
    local n = 0
    local chain = Daemons.of{ effects = fx }
      :addDaemon('t', entry({ command = { 'talker' }, onStdout = function()
        n = n + 1
        error('bad callback')
      end }))
    run(chain)
    assert.are.equal(2, n)
    assert.are.equal(2, #fx.logged('t: exec.onStdout raised: bad callback'))
  end)

  it('63: runAsInit runs in a new PID namespace and ignores the output callbacks', function()
    fake.program('init', { stdout = 'from init' })
    local called = false
    local chain = Daemons.of{ effects = fx }
      :addDaemon('i', entry({ command = { 'init' }, runAsInit = true, onStdout = function()
        called = true
      end }))
    run(chain)
    assert.is_true(fake.procs('init')[1].opts.pidns)
    assert.is_false(called)
    assert.are.equal('from init', fx.text('i', 'stdout'))
    assert.are.equal(1, #fx.logged('runAsInit ignores onStdout/onStderr'))
  end)

  it('64: term() aborts a pending exec.fn at once and never spawns what it returns later',
    function()
      local aborted_at, raised, raised_at
      local chain = Daemons.of{ effects = fx }:addDaemon('f', entry({ fn = function(_, abort)
        abort:onAbort(function()
          aborted_at = orch.now()
        end)
        local ok, err = pcall(orch.sleep, 10000)
        raised, raised_at = not ok and err, orch.now()
        return { command = { 'late' } }
      end }))
      local returned
      H.run(function()
        chain:build()
        H.at(2000)
        chain:term()
        returned = orch.now()
        H.at(15000)
      end, 100000)
      assert.are.equal(2000, aborted_at)
      assert.are.equal(orch.ABORTED, raised)
      assert.are.equal(2000, raised_at)
      assert.are.equal(2000, returned)
      assert.are.equal(0, #fake.procs('late'))
    end)

  it('64: an exec.fn that ignores the abort is force-closed after sigtermTimeout', function()
    local closed_at
    local chain = Daemons.of{ effects = fx }:addDaemon('f', entry({ sigtermTimeout = 3000,
      fn = function()
        local guard <close> = setmetatable({}, { __close = function() -- luacheck: ignore 211
          closed_at = orch.now()
        end })
        while true do
          pcall(orch.sleep, 1000000) -- swallows sched.ABORTED
          pcall(orch.sleep, 1000000)
          coroutine.yield() -- parked for good
        end
      end }))
    local returned
    H.run(function()
      chain:build()
      H.at(2000)
      chain:term()
      returned = orch.now()
    end, 100000)
    assert.are.equal(5000, returned)
    assert.are.equal(5000, closed_at)
  end)

  it('exec.fn may return a command: it is spawned, and term() stops that process', function()
    fake.program('real', { on_term = 400 })
    local chain = Daemons.of{ effects = fx }:addDaemon('f', entry({ fn = function(sub)
      assert.are.same({ workdir = '/w' }, sub)
      orch.sleep(100)
      return { command = { 'real' }, env = { X = '1' } }
    end }, { workdir = '/w' }))
    H.run(function()
      chain:build()
      H.at(1000)
      chain:term()
    end)
    local p = fake.procs('real')[1]
    assert.are.same({ 100, 1400 }, { p.t0, p.t_exit })
    assert.are.equal('1', env_map(p).X)
    assert.are.equal('/w', p.opts.cwd)
  end)

  it('an exec.fn that raises is a crash; an invalid returned command is a failure', function()
    local chain = Daemons.of{ effects = fx }
      :addDaemon('boom', entry({ fn = function()
        error('no config')
      end }))
      :addOneshot('bad', { exec = { fn = function()
        return { command = {} }
      end }, requires = {} })
    -- stop before the first probe (5 ms after the start): its success (ok_fn) would replace
    -- the crash as boom's state
    run(chain, orch.trigger.FAST_MIN_MS - 1)
    assert.are.same({ 'failure', 'boom daemon crashed' }, { fx.state('boom').result,
      fx.state('boom').message })
    assert.matches("bad failed: entry 'bad': exec.fn returned an invalid command: "
      .. 'exec.command must not be empty', fx.state('bad').message, 1, true)
    assert.are.equal('exec.fn raised: no config', chain:states()[1].lastExit.message)
  end)
end)
