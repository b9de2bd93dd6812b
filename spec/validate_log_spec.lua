-- exec.log: its validation (errors name the entry and the field) and what reaches the sink.
local H = require 'spec.support.helpers'

insulate('exec.log', function()
  local _, orch = H.fake()
  local validate = require 'orch.graph.validate'
  local validate_log = require 'orch.entries.validate_log'

  local function failure(log, fn)
    local exec = fn and { fn = function() end, log = log } or { command = 'x', log = log }
    local spec, err = validate.check(validate.entry, 'daemon', {}, 'web',
      { exec = exec, requires = {} })
    assert.is_nil(spec)
    assert.is_true(validate.is_invalid(err))
    assert.are.equal('web', err.id)
    return err
  end

  it('rejects bad keys and values, naming the entry and the field', function()
    local cases = {
      { 'big.log', 'exec.log', "Daemons: entry 'web': exec.log must be a table {file = ..., "
        .. 'maxSize = ..., keep = ...}, got string' },
      { { fiel = 'x' }, 'exec.log.fiel', nil },
      { { file = '' }, 'exec.log.file', "Daemons: entry 'web': exec.log.file must be a file "
        .. "path, got ''" },
      { { file = 'logs/' }, 'exec.log.file', nil },
      { { file = 3 }, 'exec.log.file', "Daemons: entry 'web': exec.log.file must be a path, got "
        .. 'number' },
      { { maxSize = 'big' }, 'exec.log.maxSize', "Daemons: entry 'web': exec.log.maxSize must be "
        .. "a size in bytes (an integer or a string such as '10M', '256K'), got 'big'" },
      { { maxSize = 0 }, 'exec.log.maxSize', nil },
      { { maxSize = 1.5 }, 'exec.log.maxSize', nil },
      { { maxSize = '10T' }, 'exec.log.maxSize', nil },
      { { keep = -1 }, 'exec.log.keep', "Daemons: entry 'web': exec.log.keep must be an integer "
        .. 'from 0 to 1000 (rotated files kept), got -1' },
      { { keep = 1001 }, 'exec.log.keep', nil },
      { { keep = '5' }, 'exec.log.keep', nil },
    }
    for _, c in ipairs(cases) do
      local err = failure(c[1])
      assert.are.equal(c[2], err.field, err.message)
      if c[3] then
        assert.are.equal(c[3], err.message)
      end
    end
    assert.truthy(failure({ fiel = 'x' }).message:find('did you mean file', 1, true))
  end)

  it('parses sizes and fills in the defaults', function()
    assert.are.equal(10 * 1024 * 1024, validate_log.parse_size('10M'))
    assert.are.equal(256 * 1024, validate_log.parse_size('256KiB'))
    assert.are.equal(1024 ^ 3 // 1, validate_log.parse_size('1g'))
    assert.are.equal(4096, validate_log.parse_size(4096))
    assert.is_nil(validate_log.parse_size('-1K'))
    local ok = validate.check(validate.entry, 'daemon', {}, 'web',
      { exec = { command = 'x', log = { file = 'w.log' } }, requires = {} })
    assert.are.same({ file = 'w.log', maxSize = 10 * 1024 * 1024, keep = 5 }, ok.exec.log)
  end)

  it('may accompany exec.fn but not be returned by it', function()
    local ok = validate.check(validate.entry, 'daemon', {}, 'web',
      { exec = { fn = function() end, log = { keep = 2 } }, requires = {} })
    assert.are.equal(2, ok.exec.log.keep)
    local cmd, err = validate.check(validate.fn_result, { command = 'x', log = {} }, 'web', false)
    assert.is_nil(cmd)
    assert.are.equal('exec.log', err.field)
  end)

  it('reaches the sink with the entries of a chain', function()
    local chain = orch.Daemons.of({ effects = H.effects() }):addDaemon('web', { requires = {},
      exec = { command = 'x', log = { maxSize = '1M' } } })
    assert.are.equal(1024 * 1024, chain:entries()[1].log.maxSize)
  end)
end)
