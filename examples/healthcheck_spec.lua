-- orch test examples: healthcheck.lua with a simulated host: `df` reports the disk use the
-- test chooses, and the temporary-directory script succeeds or fails as told.
local testing = require 'orch.testing'

local function df(pct)
  return { exit = 5, code = 0, stdout = 'Filesystem 1024-blocks Used Available Capacity '
    .. ('Mounted on\n/dev/sda1 1000 %d %d %d%% /\n'):format(pct * 10, 1000 - pct * 10, pct) }
end

describe('healthcheck.lua', function()
  it('both checks succeed on a healthy host', function()
    local w = testing.world('healthcheck.lua', { commands = {
      ['^df %-P /'] = df(40), ['mktemp'] = { exit = 5, code = 0 } } })
    w:advance(3000)
    w:ready_within('root-fs', 1000)
    w:ready_within('tmp-writable', 1000)
    w:stop()
  end)

  it('a disk filling up turns root-fs to failure within one 10 s period', function()
    local w = testing.world('healthcheck.lua', { commands = {
      ['^df %-P /'] = df(40), ['mktemp'] = { exit = 5, code = 0 } } })
    w:advance(5000)
    w:behave_command('^df %-P /', df(97))
    assert.is_true(w:run_until(function()
      return w:result('root-fs') == 'failure'
    end, 11000))
    assert.are.equal('success', w:result('tmp-writable'))
    w:stop()
  end)
end)
