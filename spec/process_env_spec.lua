-- orch.process.merge_env: the environment of a spawn (orch's own, read once, overlaid by the
-- entry's `env`), with the per-name-set cache that keeps it cheap.
local process = require 'orch.runtime.process'

describe('process.merge_env', function()
  local function as_map(list)
    local m = {}
    for _, kv in ipairs(list) do
      local k, v = kv:match('^([^=]*)=(.*)$')
      assert.is_nil(m[k], 'name listed twice: ' .. k)
      m[k] = v
    end
    return m
  end

  local base = { HOME = '/root', PATH = '/bin', LANG = 'C', TERM = 'xterm' }

  it('overlays, overrides and removes names; the rest stays sorted before the overlay', function()
    local out = process.merge_env({ PATH = '/usr/bin', NEW = 1, TERM = false }, base)
    assert.same({ 'HOME=/root', 'LANG=C', 'NEW=1', 'PATH=/usr/bin' }, out)
  end)

  it("uses orch's own environment when no base is given, and copes with repeated overlays",
    function()
      local own = as_map(process.merge_env(nil))
      assert.equal(os.getenv('PATH'), own.PATH)
      -- the same set of names with other values, then another set: nothing leaks between them
      local a = as_map(process.merge_env({ ORCH_X = 'a', PATH = false }))
      local b = as_map(process.merge_env({ ORCH_X = 'b', PATH = false }))
      local c = as_map(process.merge_env({ ORCH_X = 'c' }))
      assert.equal('a', a.ORCH_X)
      assert.equal('b', b.ORCH_X)
      assert.is_nil(a.PATH)
      assert.is_nil(b.PATH)
      assert.equal(os.getenv('PATH'), c.PATH)
      assert.equal('c', c.ORCH_X)
      -- a result is the caller's to change: it does not alter the next one
      local d = process.merge_env({ ORCH_X = 'd' })
      d[#d + 1] = 'JUNK=1'
      assert.is_nil(as_map(process.merge_env({ ORCH_X = 'e' })).JUNK)
    end)
end)
