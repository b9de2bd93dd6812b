-- Unit specs for orch.notify (the messages), with a recording send function.
local status = require 'orch.status'
local notify = require 'orch.runtime.notify'

local function setup()
  local sent = {}
  local sink = status.new({ writer = false })
  local n = notify.new(sink, {
    socket = '@test',
    send = function(path, msg)
      assert.equal('@test', path)
      sent[#sent + 1] = msg
      return true
    end,
  })
  return sink, n, sent
end

describe('orch.runtime.notify', function()
  it('is nil without a socket', function()
    assert.is_nil(notify.new(status.new({ writer = false }), { socket = '' }))
  end)

  it('sends STATUS on count changes and READY=1 once, the first time all are ready', function()
    local sink, _, sent = setup()
    sink:declare({ { id = 'a' }, { id = 'b' } })
    sink:onState({ id = 'a', result = 'starting' })
    sink:onState({ id = 'a', result = 'success' })
    sink:onState({ id = 'b', result = 'success' })
    sink:onState({ id = 'b', result = 'failure' })
    sink:onState({ id = 'b', result = 'success' })
    assert.same({
      'STATUS=0/2 ready (waiting for a, b)',
      'STATUS=1/2 ready (waiting for b)',
      'READY=1\nSTATUS=2/2 ready',
      'STATUS=1/2 ready (waiting for b)',
      'STATUS=2/2 ready',
    }, sent)
  end)

  it('sends STOPPING=1 once and nothing after it', function()
    local sink, n, sent = setup()
    sink:declare({ { id = 'a' } })
    n:stopping()
    n:stopping()
    sink:onState({ id = 'a', result = 'success' })
    assert.same({ 'STATUS=0/1 ready (waiting for a)', 'STOPPING=1\nSTATUS=stopping' }, sent)
  end)

  it('sends RELOADING=1 and READY=1 again once the new graph is ready', function()
    local sink, n, sent = setup()
    sink:declare({ { id = 'a' } })
    sink:onState({ id = 'a', result = 'success' })
    n:reloading(123)
    sink:declare({ { id = 'a' } }, { reset = true })
    n:reloaded()
    sink:onState({ id = 'a', result = 'success' })
    assert.same({
      'STATUS=0/1 ready (waiting for a)',
      'READY=1\nSTATUS=1/1 ready',
      'RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC=123',
      'STATUS=0/1 ready (waiting for a)',
      'READY=1\nSTATUS=1/1 ready',
    }, sent)
  end)

  it('logs a failing socket once', function()
    local lines = {}
    local sink = status.new({ writer = false })
    sink:subscribe(function(ev)
      if ev.type == 'log' then
        lines[#lines + 1] = ev.message
      end
    end)
    local n = notify.new(sink, { socket = '/nope', send = function()
      return nil, 'ENOENT'
    end })
    n:send('A=1')
    n:send('A=2')
    assert.same({ 'sd_notify to /nope failed: ENOENT' }, lines)
  end)
end)
