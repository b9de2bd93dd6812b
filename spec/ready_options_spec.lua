-- Validation of the issue 14 readiness/stop/limit keys (entry id, field, nearest valid key),
-- and the env file parser.
local H = require 'spec.support.helpers'

insulate('ready and stop options', function()
  local _, orch = H.fake()
  local validate = require 'orch.graph.validate'
  local env_file = require 'orch.runtime.env_file'
  local vstop = require 'orch.entries.validate_stop'
  local Daemons = orch.Daemons

  local function ok()
    return { result = 'success' }
  end

  -- The structured failure of adding daemon `web` with `opts` overlaid on a valid entry.
  local function failure(exec, ready)
    local e = { command = 'true' }
    for k, v in pairs(exec or {}) do
      e[k] = v
    end
    local r = ready or { display = 'Web', fn = ok }
    local res, err = validate.check(validate.entry, 'daemon', {}, 'web',
      { exec = e, ready = r, requires = {} })
    assert.is_nil(res)
    assert.is_true(validate.is_invalid(err), tostring(err))
    assert.equal('web', err.id)
    return err.field, tostring(err)
  end

  local function accepts(exec, ready)
    local e = { command = 'true' }
    for k, v in pairs(exec or {}) do
      e[k] = v
    end
    Daemons.of{}:addDaemon('web', { exec = e, ready = ready or { display = 'Web', fn = ok },
      requires = {} })
  end

  it('accepts every new key with good values', function()
    accepts({ stopSignal = 'SIGINT', reloadSignal = 'HUP', envFile = '/etc/app.env',
      limits = { memory = '512M', cpu = 1.5, pids = 256, nofile = 4096, core = 0 } })
    accepts({ stopCommand = { 'nginx', '-s', 'quit' } })
    accepts({ reloadSignal = 'SIGHUP', reloadOnChange = 'signal' })
    accepts({ reloadOnChange = 'restart' })
    accepts({}, { display = 'Web', notify = true, watchdog = 5000 })
    accepts({}, { display = 'Web', logLine = '^ready on %d+' })
    accepts({}, { display = 'Web', onLine = function() end, fn = ok })
    accepts({}, { display = 'Web', notifyFd = 3 })
    accepts({}, { display = 'Web', notifyFd = 1023, notify = true, logLine = 'up', fn = ok })
  end)

  local CASES = {
    { { stopSignal = 'SIGTREM' }, nil, 'exec.stopSignal', 'did you mean SIGTERM' },
    { { stopSignal = 9 }, nil, 'exec.stopSignal', 'must be a signal name' },
    { { reloadSignal = 'reload' }, nil, 'exec.reloadSignal', 'must be a signal name' },
    { { stopCommand = {} }, nil, 'exec.stopCommand', 'stopCommand' },
    { { stopCommand = 'x', stopSignal = 'SIGINT' }, nil, 'exec.stopCommand', 'not both' },
    { { envFile = 42 }, nil, 'exec.envFile', 'must be a path' },
    { { reloadOnChange = 'signal' }, nil, 'exec.reloadOnChange', 'needs exec.reloadSignal' },
    { { reloadOnChange = 'sginal', reloadSignal = 'HUP' }, nil, 'exec.reloadOnChange',
      "must be 'restart' or 'signal', got 'sginal' (did you mean signal?)" },
    { { reloadOnChange = true }, nil, 'exec.reloadOnChange', "must be 'restart' or 'signal'" },
    { { reloadOnchange = 'signal' }, nil, 'exec.reloadOnchange', 'did you mean reloadOnChange' },
    { { limits = { memroy = '1G' } }, nil, 'exec.limits.memroy', 'did you mean memory' },
    { { limits = { memory = 'lots' } }, nil, 'exec.limits.memory', "such as '512M'" },
    { { limits = { cpu = 0 } }, nil, 'exec.limits.cpu', 'number of CPUs' },
    { { limits = { pids = 0 } }, nil, 'exec.limits.pids', 'integer >= 1' },
    { { limits = { core = -1 } }, nil, 'exec.limits.core', 'integer >= 0' },
    { { limits = 5 }, nil, 'exec.limits', 'must be a table' },
    { {}, { display = 'Web', notify = 'yes' }, 'ready.notify', 'a boolean' },
    { {}, { display = 'Web', watchdog = 100, fn = ok }, 'ready.watchdog', 'needs ready.notify' },
    { {}, { display = 'Web', notify = true, watchdog = -1 }, 'ready.watchdog', 'non-negative' },
    { {}, { display = 'Web', logLine = '[' }, 'ready.logLine', 'not a valid Lua pattern' },
    { {}, { display = 'Web', onLine = 'x' }, 'ready.onLine', 'a function' },
    { {}, { display = 'Web', logLine = 'x', onLine = ok }, 'ready.onLine', 'not both' },
    { {}, { display = 'Web', notfy = true, fn = ok }, 'ready.notfy', 'did you mean notify' },
    { {}, { display = 'Web' }, 'ready.fn', 'or ready.notify' },
    { {}, { display = 'Web' }, 'ready.fn', 'ready.notifyFd' },
    { {}, { display = 'Web', notifyFd = 1 }, 'ready.notifyFd', 'from 3 to 1023' },
    { {}, { display = 'Web', notifyFd = 1024 }, 'ready.notifyFd', 'from 3 to 1023' },
    { {}, { display = 'Web', notifyFd = 3.5 }, 'ready.notifyFd', 'an integer' },
    { {}, { display = 'Web', notifyFd = '3' }, 'ready.notifyFd', 'got string' },
    { {}, { display = 'Web', notifyfd = 3 }, 'ready.notifyfd', 'did you mean notifyFd' },
  }
  for _, c in ipairs(CASES) do
    it(('rejects %s (%s)'):format(c[3], c[4]), function()
      local field, msg = failure(c[1], c[2])
      assert.equal(c[3], field)
      assert.truthy(msg:find(c[4], 1, true), msg)
      assert.truthy(msg:find("'web'", 1, true), msg)
    end)
  end

  it('rejects ready.notify and ready.notifyFd on a health check, which runs no process',
    function()
      for _, key in ipairs({ 'notify', 'notifyFd' }) do
        local res, err = validate.check(validate.entry, 'health', {}, 'hc',
          { ready = { display = 'HC', [key] = key == 'notify' or 3 }, requires = {} })
        assert.is_nil(res)
        assert.equal('ready.' .. key, err.field)
        assert.matches('a health check runs none', tostring(err))
      end
    end)

  it("rejects reloadOnChange = 'signal' on a oneshot, which has no process once done",
    function()
      local res, err = validate.check(validate.entry, 'oneshot', {}, 'mig',
        { exec = { command = 'true', reloadSignal = 'HUP', reloadOnChange = 'signal' },
          requires = {} })
      assert.is_nil(res)
      assert.equal('exec.reloadOnChange', err.field)
      assert.matches("'mig'", tostring(err))
      assert.matches('not for a oneshot', tostring(err))
    end)

  it('parses memory sizes', function()
    assert.equal(512 * 1024 * 1024, vstop.parse_size('512M'))
    assert.equal(1536 * 1024 * 1024, vstop.parse_size('1.5G'))
    assert.equal(2048, vstop.parse_size('2k'))
    assert.equal(4096, vstop.parse_size(4096))
    assert.is_nil(vstop.parse_size('0'))
    assert.is_nil(vstop.parse_size('12X'))
  end)

  describe('env files', function()
    it('reads NAME=value lines, comments, blank lines and quoted values', function()
      local env = assert(env_file.parse('# c\n\nA=1\n  B = two words \nC="q d"\nD=\'s\'\r\nE=\n'))
      assert.same({ A = '1', B = 'two words', C = 'q d', D = 's', E = '' }, env)
    end)

    it('names the line of a bad one', function()
      local env, err = env_file.parse('A=1\nnot a line\n')
      assert.is_nil(env)
      assert.equal('line 2: expected NAME=value, got "not a line"', err)
    end)

    it('names a missing file', function()
      local env, err = env_file.read('/nonexistent/x.env')
      assert.is_nil(env)
      assert.equal("cannot read exec.envFile '/nonexistent/x.env': No such file or directory", err)
    end)
  end)
end)
