-- Validation at add* time beyond reference.md 5.3 (issue 11 items 2 and 12), its structured
-- failures, and the shared helpers for argument errors, error texts and times in ms.
local H = require 'spec.support.helpers'

insulate('validation', function()
  local _, orch = H.fake()
  local validate = require 'orch.graph.validate'
  local util = require 'orch.runtime.util'
  local Daemons = orch.Daemons
  local fx

  before_each(function()
    fx = H.effects()
  end)

  -- The message of the error `fn` raises, without the position.
  local function message_of(fn)
    local ok, err = pcall(fn)
    assert.is_false(ok, 'expected an error')
    return (tostring(err):gsub('^[^:]+:%d+: ', ''))
  end

  local function oneshot(id, exec)
    return Daemons.of{ effects = fx }:addOneshot(id, {
      exec = exec or { command = 'true' }, requires = {},
    })
  end

  describe('entry ids (log lines cannot be spoofed through them)', function()
    local REJECTED = {
      { 'orch', "Daemons: id 'orch' is reserved (orch's own records carry it)" },
      { 'web|x', "Daemons: id 'web|x' contains '|' (orch's output uses it to end the id of a "
        .. 'line)' },
      { '|', "Daemons: id '|' contains '|' (orch's output uses it to end the id of a line)" },
      { ' web', "Daemons: id ' web' starts or ends with white space" },
      { 'web ', "Daemons: id 'web ' starts or ends with white space" },
      { '   ', "Daemons: id '   ' is only white space" },
      { '\u{A0}web', 'Daemons: id "\\u{A0}web" starts or ends with white space' },
      { 'web\u{3000}', 'Daemons: id "web\\u{3000}" starts or ends with white space' },
      { '\u{2003}\u{2003}', 'Daemons: id "\\u{2003}\\u{2003}" is only white space' },
      { 'a\1b', 'Daemons: id "a\\1b" contains a control character' },
      { 'a\127b', 'Daemons: id "a\\127b" contains a control character' },
      { 'a\0b', 'Daemons: id "a\\0b" contains a control character' },
      { 'a\tb', 'Daemons: id "a\\tb" contains a control character' },
      { 'a\u{85}b', 'Daemons: id "a\\u{85}b" contains a control or format character (U+0085)' },
      { 'a\u{9B}b', 'Daemons: id "a\\u{9B}b" contains a control or format character (U+009B)' },
      { 'a\u{2028}b', 'Daemons: id "a\\u{2028}b" contains a control or format character (U+2028)' },
      { 'a\u{2029}b', 'Daemons: id "a\\u{2029}b" contains a control or format character (U+2029)' },
      { 'a\u{202A}b', 'Daemons: id "a\\u{202A}b" contains a control or format character (U+202A)' },
      { 'a\u{202E}b', 'Daemons: id "a\\u{202E}b" contains a control or format character (U+202E)' },
      { 'a\u{2066}b', 'Daemons: id "a\\u{2066}b" contains a control or format character (U+2066)' },
      { 'a\u{2069}b', 'Daemons: id "a\\u{2069}b" contains a control or format character (U+2069)' },
      { 'a\u{200B}b', 'Daemons: id "a\\u{200B}b" contains a control or format character (U+200B)' },
      { 'a\u{200D}b', 'Daemons: id "a\\u{200D}b" contains a control or format character (U+200D)' },
      { 'a\u{2060}b', 'Daemons: id "a\\u{2060}b" contains a control or format character (U+2060)' },
      { '\u{FEFF}web',
        'Daemons: id "\\u{FEFF}web" contains a control or format character (U+FEFF)' },
      { 'a\u{AD}b', 'Daemons: id "a\\u{AD}b" contains a control or format character (U+00AD)' },
      { 'a\u{E0041}b',
        'Daemons: id "a\\u{E0041}b" contains a control or format character (U+E0041)' },
      { 'a\255b', 'Daemons: id "a\\255b" is not valid UTF-8' },
      { 'a\192\175b', 'Daemons: id "a\\192\\175b" is not valid UTF-8' }, -- overlong '/'
      { 'a\237\160\128b', 'Daemons: id "a\\237\\160\\128b" is not valid UTF-8' }, -- surrogate
      { ('x'):rep(64), "Daemons: id '" .. ('x'):rep(40) .. "'... is 64 bytes long; an id has "
        .. 'at most 63 bytes' },
      { ('x'):rep(5000), "Daemons: id '" .. ('x'):rep(40) .. "'... is 5000 bytes long; an id "
        .. 'has at most 63 bytes' },
    }
    for _, case in ipairs(REJECTED) do
      it('rejects ' .. case[2]:match('^Daemons: id (.*)$'), function()
        assert.are.equal(case[2], message_of(function()
          oneshot(case[1])
        end))
      end)
    end

    it('rejects them on every kind of entry, visible or hidden, and with Daemon.of', function()
      local ready = { display = 'Orch', fn = function()
        return { result = 'success' }
      end }
      assert.are.equal("Daemons: id 'orch' is reserved (orch's own records carry it)",
        message_of(function()
          Daemons.of{ effects = fx }:addHealthCheck('orch', { ready = ready, requires = {} })
        end))
      assert.are.equal("Daemons: id 'a|b' contains '|' (orch's output uses it to end the id of "
        .. 'a line)', message_of(function()
          Daemons.of{ effects = fx }:addDaemon('a|b', {
            daemon = orch.Daemon.of({ command = 'true' }), requires = {},
          })
        end))
    end)

    it('accepts up to 63 bytes, inner spaces and other scripts in hidden entries', function()
      for _, id in ipairs { ('x'):rep(63), ('é'):rep(31), 'web server', 'données', 'Orch',
        'orchestra', 'a-b_c.d:e' } do
        local chain = oneshot(id)
        assert.are.equal(id, chain:entries()[1].id)
      end
    end)

    it('names the id in the failure', function()
      local spec, err = validate.check(validate.entry, 'oneshot', {}, 'web\u{2028}',
        { exec = { command = 'true' }, requires = {} })
      assert.is_nil(spec)
      assert.is_true(validate.is_invalid(err))
      assert.are.equal('web\u{2028}', err.id)
      assert.is_nil(err.field)
    end)
  end)

  describe('exec.user and cwd', function()
    local function user_error(user)
      return message_of(function()
        oneshot('web', { command = 'true', user = user })
      end)
    end

    it('rejects a uid or gid above 32 bits or equal to (uid_t)-1, string or integer', function()
      local range = "Daemons: entry 'web': exec.user %s %s is out of range (at most 4294967294)"
      assert.are.equal(range:format('uid', '4294967296'), user_error('4294967296'))
      assert.are.equal(range:format('uid', '4294967296'), user_error(4294967296))
      assert.are.equal(range:format('uid', '4294967295'), user_error('4294967295'))
      assert.are.equal(range:format('uid', '4294967295'), user_error(4294967295))
      assert.are.equal(range:format('uid', '9223372036854775807'), user_error(math.maxinteger))
      assert.are.equal(range:format('gid', '4294967296'), user_error('65534:4294967296'))
      assert.are.equal(range:format('gid', '4294967295'), user_error('0:4294967295'))
      assert.are.equal(range:format('uid', '4294967296'), user_error('0000004294967296'))
      assert.are.equal(range:format('uid', '18446744073709551616'),
        user_error('18446744073709551616'))
    end)

    it('rejects the forms spawn would misread: a sign, white space, a non-numeric gid',
      function()
        local form = "Daemons: entry 'web': exec.user must be a user name, a uid or \"uid:gid\", "
          .. 'got %s'
        assert.are.equal(form:format("'+5'"), user_error('+5'))
        assert.are.equal(form:format("' 5'"), user_error(' 5'))
        assert.are.equal(form:format("'-1'"), user_error('-1'))
        assert.are.equal("Daemons: entry 'web': exec.user \"uid:gid\" needs a numeric gid, got "
          .. "'staff'", user_error('5:staff'))
        assert.are.equal("Daemons: entry 'web': exec.user contains a NUL byte",
          user_error('nobody\0root'))
      end)

    it('accepts names, uids and uid:gid up to 4294967294', function()
      for _, user in ipairs { 0, '0', 4294967294, '4294967294', '65534:65534',
        '4294967294:4294967294', 'nobody', 'www-data', '007' } do
        assert.are.equal(1, #oneshot('web', { command = 'true', user = user }):entries())
      end
      assert.are.same({ uid = 7 }, validate.parse_user('007'))
      assert.are.same({ uid = 1, gid = 2 }, validate.parse_user('1:2'))
      assert.are.same({ name = 'nobody' }, validate.parse_user('nobody'))
    end)

    it('rejects a NUL byte in cwd and in a subcontainer workdir; checks its user too', function()
      assert.are.equal("Daemons: entry 'web': exec.cwd contains a NUL byte", message_of(function()
        oneshot('web', { command = 'true', cwd = '/tmp\0/x' })
      end))
      assert.are.equal("Daemons: entry 'web': subcontainer.workdir contains a NUL byte",
        message_of(function()
          Daemons.of{ effects = fx }:addOneshot('web', {
            subcontainer = { workdir = '/srv\0x' }, exec = { command = 'true' }, requires = {},
          })
        end))
      assert.are.equal("Daemons: entry 'web': subcontainer.user uid 4294967296 is out of range "
        .. '(at most 4294967294)', message_of(function()
          Daemons.of{ effects = fx }:addOneshot('web', {
            subcontainer = { user = '4294967296' }, exec = { command = 'true' }, requires = {},
          })
        end))
    end)

    it('checks what an exec.fn returns the same way', function()
      local exec, err = validate.check(validate.fn_result, { command = 'x', user = 4294967296 },
        'web', false)
      assert.is_nil(exec)
      assert.are.equal("entry 'web': exec.fn returned an invalid command: exec.user uid "
        .. '4294967296 is out of range (at most 4294967294)', tostring(err))
      assert.are.equal('exec.user', err.field)
    end)
  end)

  describe('structured failures', function()
    local function failure(id, opts, kind)
      local spec, err = validate.check(validate.entry, kind or 'daemon', { 'db' }, id, opts)
      assert.is_nil(spec)
      assert.is_true(validate.is_invalid(err))
      return err
    end

    it('carry the field, the id and the message, and print as the message', function()
      local err = failure('web', { exec = { command = 'x', sigtermTimeout = -1 }, requires = {} })
      assert.are.same({ 'exec.sigtermTimeout', 'web' }, { err.field, err.id })
      assert.are.equal("Daemons: entry 'web': exec.sigtermTimeout must be a non-negative integer "
        .. '(ms), got -1', err.message)
      assert.are.equal(err.message, tostring(err))
      assert.are.equal('requires', failure('web', { exec = { command = 'x' },
        requires = { 'nope' } }).field)
      assert.are.equal('exec.env.PORT', failure('web', { exec = { command = 'x',
        env = { PORT = 80 } }, requires = {} }).field)
      assert.are.equal('exec.sigterm_timeout', failure('web', { exec = { command = 'x',
        sigterm_timeout = 1 }, requires = {} }).field)
      assert.are.equal('ready.display', failure('web', { exec = { command = 'x' },
        ready = { fn = print }, requires = {} }).field)
      local dup = failure('db', { exec = { command = 'x' }, requires = {} })
      assert.are.same({ 'db', "Daemons: duplicate id 'db'" }, { dup.id, dup.message })
      assert.is_nil(dup.field)
    end)

    it('reach callers of add* as the same text as before', function()
      local ok, err = pcall(function()
        Daemons.of{ effects = fx }:addDaemon('web', { exec = { command = '' }, requires = {} })
      end)
      assert.is_false(ok)
      assert.are.equal('string', type(err))
      assert.matches("validate_spec.lua:%d+: Daemons: entry 'web': exec.command must not be "
        .. 'empty$', err)
    end)
  end)

  describe('shared helpers', function()
    it('bad_argument raises the usual message at the caller of the checking function', function()
      local function f(x)
        if x == nil then
          util.bad_argument(1, 'f', 'value expected')
        end
      end
      local ok, err = pcall(function()
        f() -- the line the error points at
      end)
      assert.is_false(ok)
      assert.matches("^.*validate_spec.lua:%d+: bad argument #1 to 'f' %(value expected%)$", err)
      local line = debug.getinfo(1, 'l').currentline - 4
      assert.are.equal(tostring(line), err:match('validate_spec.lua:(%d+):'))
      assert.are.equal("bad argument #1 to 'useEntrypoint' (list of strings expected, got "
        .. 'number)', message_of(function()
          orch.useEntrypoint(5)
        end))
    end)

    it('check_ms: integers from min to 2^31-1; fractions only when asked', function()
      assert.is_nil(util.check_ms(0))
      assert.is_nil(util.check_ms(2147483647))
      assert.is_nil(util.check_ms(5.0))
      assert.are.same({ 'range', '2147483648' }, { util.check_ms(2147483648) })
      assert.are.same({ 'type', '1.5' }, { util.check_ms(1.5) })
      assert.are.same({ 'type', '-1' }, { util.check_ms(-1) })
      assert.are.same({ 'type', 'inf' }, { util.check_ms(math.huge) })
      assert.are.same({ 'type', 'string' }, { util.check_ms('5') })
      assert.are.equal('type', util.check_ms(0 / 0))
      assert.are.equal('type', util.check_ms(0, 1))
      assert.is_nil(util.check_ms(0.5, 0, true))
      assert.are.equal('range', util.check_ms(math.huge, 0, true))
      assert.are.equal("bad argument #2 to 'checkPortListening' (timeout must be at most "
        .. '2147483647 ms)', message_of(function()
          orch.healthCheck.checkPortListening(80, { timeout = 2147483648 })
        end))
      assert.are.equal("bad argument #1 to 'cooldownTrigger' (non-negative number of ms "
        .. 'expected, got 2147483648)', message_of(function()
          orch.trigger.cooldownTrigger(2147483648)
        end))
    end)

    it('are the only place that writes a bad-argument message', function()
      local p = assert(io.popen('find lua -name "*.lua"'))
      local offenders = {}
      for path in p:lines() do
        -- the simulated core writes the C core's own messages (luaL_argerror's), as the C does
        if path ~= 'lua/orch/runtime/util.lua'
          and not path:match('^lua/orch/testing/fake_core/[%w_]+%.lua$') then
          local f = assert(io.open(path))
          local text = f:read('a')
          f:close()
          if text:find('bad argument #', 1, true) then
            offenders[#offenders + 1] = path
          end
        end
      end
      p:close()
      assert.are.same({}, offenders)
    end)

    it('error_text reads any error value without raising', function()
      assert.are.equal('boom', util.error_text('boom'))
      assert.are.equal('42', util.error_text(42))
      assert.are.equal('bad gateway', util.error_text({ message = 'bad gateway' }))
      assert.are.equal('custom', util.error_text(setmetatable({}, { __tostring = function()
        return 'custom'
      end })))
      assert.are.same({ nil, 'table' }, { util.error_text({}) })
      assert.are.same({ nil, 'nil' }, { util.error_text(nil) })
      assert.are.same({ nil, 'table', 'broke' }, { util.error_text(setmetatable({}, {
        __tostring = function()
          error('x.lua:3: broke')
        end })) })
      assert.are.equal('refused', util.error_message('main.lua:12: refused'))
      assert.are.equal('host:80: refused', util.error_message('host:80: refused'))
      assert.are.equal('a table value', util.error_message({}))
    end)
  end)
end)
