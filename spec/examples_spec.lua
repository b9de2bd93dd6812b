-- Each example runs in-process on the real core (#integration): load it as the CLI does (the
-- script returns a setupMain function called with ctx = {effects, args}), build, wait for the
-- expected state with a deadline, term(), and check that no process is left.
local H = require 'spec.support.helpers'

insulate('examples #integration', function()
  local orch = H.real()
  local fx = H.effects_per_test() -- no process a test spawned may outlive it

  local function load(name, args)
    local main = assert(loadfile('examples/' .. name))(table.unpack(args or {}))
    if type(main) == 'function' then
      main = main({ effects = fx, args = args or {} })
    end
    assert.are.equal(orch.Daemons, getmetatable(main))
    return main
  end

  local function result(id)
    local s = fx.state(id)
    return s and s.result
  end

  it('single.lua: the web server becomes ready, then stops cleanly', function()
    local port = H.free_port()
    local chain = load('single.lua', { tostring(port) })
    H.run(function()
      chain:build()
      H.wait_until(function()
        return result('web') == 'success'
      end, 8000, 20, 'web success')
      chain:term()
    end, 15000)
    assert.are.equal('serving http://127.0.0.1:' .. port .. '/', fx.last('web').message)
    assert.are.same({ 'starting', 'Web server' }, { fx.of('web')[1].result, fx.of('web')[1].name })
  end)

  it('chain.lua: prepare runs first, web after it, then the home page check succeeds',
    function()
      local port = H.free_port()
      local site = os.tmpname()
      os.remove(site)
      local chain = load('chain.lua', { tostring(port), site })
      H.run(function()
        chain:build()
        H.wait_until(function()
          return result('content') == 'success'
        end, 8000, 20, 'content success')
        chain:term()
      end, 15000)
      local prepared = fx.events('prepare', 'exit')[1]
      assert.are.equal(0, prepared.code)
      assert.is_true(fx.events('web', 'spawn')[1].t >= prepared.t)
      assert.are.equal('home page served', fx.last('content').message)
      os.remove(site .. '/index.html')
      os.remove(site)
    end)

  it('healthcheck.lua: both host checks succeed without any process supervised', function()
    local chain = load('healthcheck.lua')
    H.run(function()
      chain:build()
      H.wait_until(function()
        return result('root-fs') == 'success' and result('tmp-writable') == 'success'
      end, 5000, 20)
      chain:term()
    end, 10000)
    assert.matches('^root filesystem %d+%% used$', fx.last('root-fs').message)
    assert.are.equal('/tmp is writable', fx.last('tmp-writable').message)
    assert.are.equal(0, #fx.events(nil, 'spawn'))
  end)

  it('crashloop.lua: the restart delays grow (0, 1, 2 s) and app keeps waiting', function()
    local chain = load('crashloop.lua')
    H.run(function()
      chain:build()
      H.wait_until(function()
        return #fx.events('flaky', 'spawn') >= 4
      end, 8000, 20)
      chain:term()
    end, 15000)
    local spawns, exits = fx.events('flaky', 'spawn'), fx.events('flaky', 'exit')
    for k = 1, 3 do
      local delay = spawns[k + 1].t - exits[k].t
      -- the schedule to the ms is daemons_restart_spec 35 (virtual clock); a real timer is
      -- never early, so the real example is held to the lower bound
      assert.is_true(delay >= 1000 * (k - 1), ('delay after exit %d: %d ms'):format(k, delay))
      assert.are.equal(1, exits[k].code)
    end
    assert.are.equal(0, #fx.events('app', 'spawn'))
    assert.are.same({ 'waiting', 'Flaky service' }, { fx.last('app').result,
      fx.last('app').message })
    assert.matches('flaky: giving up', fx.text('flaky', 'stderr'), 1, true)
  end)
end)
