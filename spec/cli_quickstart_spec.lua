-- The quickstart (what `make run` runs) comes up and goes down cleanly within a deadline.
local R = require 'fixtures.cli.runner'

describe('examples/quickstart #integration', function()
  local p, work

  after_each(function()
    if p then
      p:cleanup()
    end
    if work and work:match('^/tmp/') then
      os.execute('rm -rf ' .. R.quote(work))
    end
  end)

  it('passes check and shows gating, readiness and a health change, then stops on Ctrl-C',
    function()
      local main = R.ROOT .. '/examples/quickstart/main.lua'
      local c = R.run({ 'check', main })
      assert.equal(0, c.code, c.err)
      assert.matches('4 entries %(2 oneshots, 1 daemon, 1 health check%)', c.out)

      local port = R.free_port()
      local t0 = R.now()
      p = R.start({ 'run', main, tostring(port) })
      local out = p:wait_for('site: failure %-> success', 20000)
      work = out:match('content | site written to (%S+)')
      -- gating: web starts only after content succeeded; warmup only once web is ready
      local function at(s)
        return assert(out:find(s, 1, true), s)
      end
      assert.is_true(at('content: starting -> success') < at('web: started'))
      assert.is_true(at('web: starting -> success') < at('warmup: started'))
      assert.is_true(at('site: starting -> failure') < at('site: failure -> success'))
      -- the server really serves the content
      local page = R.capture(('python3 -c \'import urllib.request; ' ..
        'print(urllib.request.urlopen("http://127.0.0.1:%d/").read().decode())\''):format(port))
      assert.matches('Hello from orch', page)
      local web = tonumber(out:match('web: started %(pid (%d+)'))
      p:signal('INT')
      assert.equal(0, p:wait(10000))
      -- real clock: the quickstart example, end to end in the real binary, must not crawl
      assert.is_true(R.now() - t0 < 25)
      assert.matches('web: stopping', p:out())
      assert.matches('stopped\n$', p:out())
      assert.is_false(R.alive(web))
    end)
end)
