-- orch test examples: single.lua in a simulated world.
local testing = require 'orch.testing'

describe('single.lua', function()
  it('the web server is ready once it answers HTTP, and a crash restarts it', function()
    local w = testing.world('single.lua', { args = { '8123' }, behaviours = {
      web = { listen = 8123, listen_after = 300, http = 200 } } })
    w:advance(2000)
    w:ready_within('web', 1000)
    w:kill('web')
    w:advance(1000)
    w:restarted('web', 1)
    assert.are.equal(0, w:restarts('web')[1].delay)
    w:stop()
  end)
end)
