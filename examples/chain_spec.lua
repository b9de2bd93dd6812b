-- orch test examples: chain.lua in a simulated world: prepare, then web, then the home page.
local testing = require 'orch.testing'

describe('chain.lua', function()
  it('web starts the instant prepare exits 0; the content check follows it', function()
    local w = testing.world('chain.lua', { args = { '8124', '/nonexistent/site' }, behaviours = {
      prepare = { exit = 30, code = 0 },
      web = { listen = 8124, listen_after = 200, http = 200 },
    } })
    w:advance(5000)
    assert.are.equal(30, w.history:spawns('web')[1].t)
    w:ready_within('web', 1500)
    assert.is_true(w:ready_at('content') >= w:ready_at('web'))
    w:stop()
  end)

  it('a failed prepare is retried and web never starts', function()
    local w = testing.world('chain.lua', { behaviours = { prepare = { exit = 10, code = 1 } } })
    w:advance(60000)
    w:never_started('web')
    assert.is_true(#w.history:spawns('prepare') > 5)
    w:stop()
  end)
end)
