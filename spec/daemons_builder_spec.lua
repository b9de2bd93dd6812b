-- Group A of reference.md section 4: the builder and validation at add* time.
local H = require 'spec.support.helpers'

local function NOOP()
  return { result = 'success', message = 'ok' }
end

insulate('Daemons builder (group A)', function()
  local fake, orch = H.fake()
  local Daemons = orch.Daemons
  local fx

  local function sleeper(extra)
    local o = {
      exec = { command = { 'sleep', '1000' } },
      ready = { display = false, fn = function()
        return { result = 'success' }
      end },
      requires = {},
    }
    for k, v in pairs(extra or {}) do
      o[k] = v
    end
    return o
  end

  -- The message of an error raised by fn, and where it points.
  local function err_of(fn)
    local ok, err = pcall(fn)
    assert.is_false(ok, 'expected an error')
    return tostring(err)
  end

  local function message_of(fn)
    return (err_of(fn):gsub('^[^:]+:%d+: ', ''))
  end

  before_each(function()
    fake.reset()
    fx = H.effects()
  end)

  after_each(function()
    assert.are.equal(0, #fake.live())
  end)

  describe(':add*', function()
    it('1: immutable chain: each add returns a new chain and build() runs only its world',
      function()
        local a = Daemons.of{ effects = fx }:addDaemon('a', sleeper())
        local b = a:addDaemon('b', sleeper{ requires = { 'a' } })
        assert.are_not.equal(a, b)
        assert.are.same({ 'a' }, a.ids)
        assert.are.same({ 'a', 'b' }, b.ids)
        assert.are.equal(1, #a:entries())
        assert.are.equal(2, #b:entries())
        H.run(function()
          b:build()
          H.wait_until(function()
            return #fake.procs() == 2
          end, 1000)
          assert.is_nil(a:states()[1].result) -- a was never built
          assert.are.equal(2, #fake.procs('sleep')) -- one 'a', one 'b'
          b:term()
        end)
      end)

    it('2: records kinds in order and spawns nothing before build()', function()
      local chain = Daemons.of{ effects = fx }
        :addOneshot('migrate', { exec = { command = 'migrate' }, requires = {} })
        :addHealthCheck('sync', {
          ready = { display = 'Sync', fn = function()
            return { result = 'success' }
          end },
          requires = { 'migrate' },
        })
      local kinds = {}
      for i, e in ipairs(chain:entries()) do
        kinds[i] = e.kind
      end
      assert.are.same({ 'oneshot', 'health' }, kinds)
      assert.are.same({ 'migrate' }, chain:entries()[2].requires)
      assert.are.equal(0, #fake.procs())
      assert.are.equal(0, #fx.reports)
    end)

    it('3: a duplicate id is an error at the second add call', function()
      local chain = Daemons.of{ effects = fx }:addDaemon('x', sleeper())
      assert.are.equal("Daemons: duplicate id 'x'", message_of(function()
        chain:addHealthCheck('x', { ready = { display = false, fn = function() end },
          requires = {} })
      end))
    end)

    it('4: an empty id is an error', function()
      assert.are.equal('Daemons: entry has empty id', message_of(function()
        Daemons.of{ effects = fx }:addDaemon('', sleeper())
      end))
      assert.are.equal('Daemons: entry has empty id', message_of(function()
        Daemons.of{ effects = fx }:addDaemon(nil, sleeper())
      end))
    end)

    it('5: an undeclared requirement is an error', function()
      assert.are.equal("Daemons: entry 'b' requires 'a', which must be declared earlier",
        message_of(function()
          Daemons.of{ effects = fx }:addDaemon('b', sleeper{ requires = { 'a' } })
        end))
    end)

    it('6: a forward reference is the same error (order matters)', function()
      assert.are.equal("Daemons: entry 'b' requires 'a', which must be declared earlier",
        message_of(function()
          Daemons.of{ effects = fx }
            :addDaemon('b', sleeper{ requires = { 'a' } })
            :addDaemon('a', sleeper())
        end))
    end)

    it('7: a self reference is the same error', function()
      assert.are.equal("Daemons: entry 'a' requires 'a', which must be declared earlier",
        message_of(function()
          Daemons.of{ effects = fx }:addDaemon('a', sleeper{ requires = { 'a' } })
        end))
    end)

    it('8: a factory returning nil skips the entry and nothing is ever reported for it',
      function()
        local base = Daemons.of{ effects = fx }:addDaemon('app', sleeper())
        local same = base:addHealthCheck('opt', function()
          return nil
        end)
        assert.are.equal(base, same)
        assert.are.same({ 'app' }, same.ids)
        H.run(function()
          same:build()
          H.at(60000)
          same:term()
        end, 120000)
        assert.are.equal(0, #fx.of('opt'))
        assert.is_nil(fx.state('opt'))
      end)

    it('9: a yielding factory runs in the caller\'s task; the entry is added when it returns',
      function()
        local calls = 0
        H.run(function()
          local t0 = orch.now()
          local chain = Daemons.of{ effects = fx }:addDaemon('slow', function()
            calls = calls + 1
            orch.sleep(50)
            return sleeper()
          end)
          assert.are.equal(50, orch.now() - t0)
          assert.are.same({ 'slow' }, chain.ids)
          assert.are.equal(1, calls)
        end)
      end)

    it('10: a command without a subcontainer runs on the host (DECISIONS)', function()
      local chain = Daemons.of{ effects = fx }:addDaemon('x', {
        exec = { command = { 'true' } },
        ready = { display = false, fn = function()
          return { result = 'success' }
        end },
        requires = {},
      })
      H.run(function()
        chain:build()
        H.wait_until(function()
          return #fake.procs('true') > 0
        end, 100)
        assert.are.same({ 'true' }, fake.procs('true')[1].argv)
        chain:term()
      end)
    end)

    it('11: an unknown or misspelt option names the nearest valid key', function()
      assert.are.equal("Daemons: entry 'x': unknown option exec.sigterm_timeout "
        .. '(did you mean sigtermTimeout?)', message_of(function()
          Daemons.of{ effects = fx }:addDaemon('x', sleeper{
            exec = { command = { 'sleep', '1' }, sigterm_timeout = 5 },
          })
        end))
      assert.are.equal("Daemons: entry 'x': unknown option requries (did you mean requires?)",
        message_of(function()
          Daemons.of{ effects = fx }:addDaemon('x', {
            exec = { command = 'x' }, ready = { display = false, fn = NOOP }, requries = {},
          })
        end))
      assert.are.equal("Daemons: entry 'x': unknown option ready.grace (did you mean "
        .. 'gracePeriod?)', message_of(function()
          Daemons.of{ effects = fx }:addDaemon('x', sleeper{
            ready = { display = false, fn = NOOP, grace = 10 },
          })
        end))
    end)

    it('12: a visible id must be a valid health check id; a hidden one only warns', function()
      assert.are.equal("Daemons: id 'Web_UI' is not a valid health check id (lowercase "
        .. 'letters, digits and single dashes)', message_of(function()
          Daemons.of{ effects = fx }:addDaemon('Web_UI', sleeper{
            ready = { display = 'Web', fn = NOOP },
          })
        end))
      local chain = Daemons.of{ effects = fx }:addDaemon('Web_UI', sleeper())
      assert.are.same({ 'Web_UI' }, chain.ids)
      assert.are.equal(1, #fx.logged("'Web_UI' would not be a valid health check id"))
      assert.are.equal('warning', fx.logs[1].level)
    end)
  end)

  describe('validation', function()
    it('points the error at the caller\'s line (level 2)', function()
      local line = debug.getinfo(1, 'l').currentline + 2
      local err = err_of(function()
        Daemons.of{ effects = fx }:addDaemon('a', sleeper{ requires = { 'zz' } })
      end)
      assert.matches('daemons_builder_spec.lua:' .. line .. ': ', err, 1, true)
    end)

    it('rejects ready on a oneshot', function()
      assert.are.equal("Daemons: entry 'm': unknown option ready (a oneshot is ready when it "
        .. 'exits successfully)', message_of(function()
          Daemons.of{ effects = fx }:addOneshot('m', {
            exec = { command = 'x' }, ready = { display = false, fn = NOOP }, requires = {},
          })
        end))
    end)

    it('rejects daemon together with exec, and a daemon not made by Daemon.of', function()
      local d = orch.Daemon.of({ command = { 'sleep', '1' } })
      assert.are.equal("Daemons: entry 'x': give either daemon or subcontainer+exec",
        message_of(function()
          Daemons.of{ effects = fx }:addDaemon('x', sleeper{ daemon = d })
        end))
      assert.matches('daemon must be made by Daemon.of', message_of(function()
        Daemons.of{ effects = fx }:addDaemon('x', {
          daemon = {}, ready = { display = false, fn = NOOP }, requires = {},
        })
      end), 1, true)
    end)

    it('rejects wrong types', function()
      assert.are.equal("Daemons: entry 'x': exec.cwd must be a path, got number",
        message_of(function()
          Daemons.of{ effects = fx }:addDaemon('x', sleeper{
            exec = { command = 'x', cwd = 3 },
          })
        end))
      assert.are.equal("Daemons: entry 'x': ready.fn must be a function, got string",
        message_of(function()
          Daemons.of{ effects = fx }:addDaemon('x', sleeper{
            ready = { display = 'X', fn = 'nope' },
          })
        end))
      assert.are.equal("Daemons: entry 'x': exec.env.PORT must be a string (or false to unset)"
        .. ', got number', message_of(function()
          Daemons.of{ effects = fx }:addDaemon('x', sleeper{
            exec = { command = 'x', env = { PORT = 80 } },
          })
        end))
      assert.are.equal("Daemons: entry 'x': requires must be a list of ids",
        message_of(function()
          Daemons.of{ effects = fx }:addDaemon('x', sleeper{ requires = 'a' })
        end))
      assert.are.equal("Daemons: entry 'x': options must be a table (or a function returning "
        .. 'one), got string', message_of(function()
          Daemons.of{ effects = fx }:addDaemon('x', 'oops')
        end))
    end)

    it('rejects negative and non-integer times', function()
      assert.are.equal("Daemons: entry 'x': exec.sigtermTimeout must be a non-negative integer "
        .. '(ms), got -1', message_of(function()
          Daemons.of{ effects = fx }:addDaemon('x', sleeper{
            exec = { command = 'x', sigtermTimeout = -1 },
          })
        end))
      assert.are.equal("Daemons: entry 'x': ready.gracePeriod must be a non-negative integer "
        .. '(ms), got 1.5', message_of(function()
          Daemons.of{ effects = fx }:addDaemon('x', sleeper{
            ready = { display = false, fn = NOOP, gracePeriod = 1.5 },
          })
        end))
    end)

    it('rejects an empty command and a NUL byte in argv', function()
      assert.are.equal("Daemons: entry 'x': exec.command must not be empty",
        message_of(function()
          Daemons.of{ effects = fx }:addDaemon('x', sleeper{ exec = { command = '' } })
        end))
      assert.are.equal("Daemons: entry 'x': exec.command must not be empty",
        message_of(function()
          Daemons.of{ effects = fx }:addDaemon('x', sleeper{ exec = { command = {} } })
        end))
      assert.are.equal("Daemons: entry 'x': exec.command contains a NUL byte",
        message_of(function()
          Daemons.of{ effects = fx }:addDaemon('x', sleeper{
            exec = { command = { 'echo', 'a\0b' } },
          })
        end))
    end)

    it('requires the requires key, ready.display and ready.fn', function()
      assert.are.equal("Daemons: entry 'x': requires is required (a list of earlier ids; {} "
        .. 'for none)', message_of(function()
          Daemons.of{ effects = fx }:addDaemon('x', {
            exec = { command = 'x' }, ready = { display = false, fn = NOOP },
          })
        end))
      assert.are.equal("Daemons: entry 'x': ready.display is required (string, or false to "
        .. 'hide)', message_of(function()
          Daemons.of{ effects = fx }:addDaemon('x', sleeper{ ready = { fn = NOOP } })
        end))
      assert.matches("ready.fn is required", message_of(function()
        Daemons.of{ effects = fx }:addDaemon('x', sleeper{ ready = { display = 'X' } })
      end), 1, true)
    end)

    it('rejects a trigger factory passed without calling it', function()
      assert.matches('ready.trigger is trigger.cooldownTrigger itself', message_of(function()
        Daemons.of{ effects = fx }:addDaemon('x', sleeper{
          ready = { display = false, fn = NOOP, trigger = orch.trigger.cooldownTrigger },
        })
      end), 1, true)
    end)

    it('reserves ids starting with __ and rejects exec.fn mixed with command options',
      function()
        assert.matches("is reserved", message_of(function()
          Daemons.of{ effects = fx }:addDaemon('__x', sleeper())
        end), 1, true)
        assert.are.equal("Daemons: entry 'x': exec.env cannot be combined with exec.fn (return "
          .. 'it from fn instead)', message_of(function()
            Daemons.of{ effects = fx }:addDaemon('x', sleeper{
              exec = { fn = NOOP, env = {} },
            })
          end))
      end)

    it('treats display "" as hidden, with a warning', function()
      local chain = Daemons.of{ effects = fx }:addDaemon('x', sleeper{
        ready = { display = '', fn = NOOP },
      })
      assert.is_false(chain:entries()[1].visible)
      assert.are.equal(1, #fx.logged('use false to hide'))
    end)

    it('warns that runAsInit ignores output callbacks (63)', function()
      Daemons.of{ effects = fx }:addDaemon('x', sleeper{
        exec = { command = 'x', runAsInit = true, onStdout = print },
      })
      assert.are.equal(1, #fx.logged('runAsInit ignores onStdout/onStderr'))
    end)

    it('validates Daemon.of at its own call', function()
      assert.matches('Daemon.of: exec.command is required', message_of(function()
        orch.Daemon.of(nil, { sigtermTimeout = 5 })
      end), 1, true)
      local d = orch.Daemon.of({ command = 'x' })
      assert.is_true(d.__orch_daemon)
    end)

    it('calls a factory once, at add time', function()
      local n = 0
      local chain = Daemons.of{ effects = fx }:addDaemon('x', function()
        n = n + 1
        return sleeper()
      end)
      assert.are.equal(1, n)
      chain:entries()
      assert.are.equal(1, n)
    end)
  end)

  describe(':entries', function()
    it('lists id, kind, requires, display, an exec summary and whether there is a ready check',
      function()
        local chain = Daemons.of{ effects = fx }
          :addOneshot('init', { exec = { command = 'echo hi; exit 0' }, requires = {} })
          :addDaemon('web', {
            exec = { command = { 'python3', '-m', 'http.server', '8080' } },
            ready = { display = 'Web', fn = NOOP },
            requires = { 'init' },
          })
          :addHealthCheck('probe', { ready = { display = false, fn = NOOP }, requires = {} })
        assert.are.same({
          { id = 'init', kind = 'oneshot', requires = {}, exec = 'echo hi; exit 0',
            ready = false, visible = false, restart = 'on-failure' },
          { id = 'web', kind = 'daemon', requires = { 'init' }, display = 'Web',
            exec = 'python3 -m http.server 8080', ready = true, visible = true,
            restart = 'always' },
          { id = 'probe', kind = 'health', requires = {}, display = false, exec = '',
            ready = true, visible = false, restart = '-' },
        }, chain:entries())
      end)
  end)
end)
