-- orch test examples/quickstart: the quickstart in a simulated world, in milliseconds. Each
-- command is played by a fake process; `warmup`'s writes its marker file as the real one does,
-- so that the `site` check (which reads it) sees it.
local testing = require 'orch.testing'

-- The warmup command's marker file (`echo warm > '<marker>'`), written after 2 s.
local function warmup(p)
  p:after(2000, function()
    local marker = p.argv[#p.argv]:match("echo warm > '([^']+)'")
    local f = assert(io.open(marker, 'w'))
    f:write('warm\n')
    f:close()
    p:write('stdout', 'cache warmed\n')
    p:exit(0)
  end)
end

-- The content command makes the work directory (`mkdir -p '<work>'`), where warmup writes.
local function content(p)
  local work = p.argv[#p.argv]:match("mkdir %-p '([^']+)'")
  assert(os.execute(("mkdir -p '%s'"):format(work)))
  p:write('stdout', 'site written to ' .. work .. '\n')
  p:after(50, function()
    p:exit(0)
  end)
end

local function world(behaviours)
  local b = {
    content = content,
    web = { listen = 8099, listen_after = 400, http = 200 },
    warmup = warmup,
  }
  for k, v in pairs(behaviours or {}) do
    b[k] = v
  end
  return testing.world('main.lua', { args = { '8099' }, behaviours = b })
end

describe('quickstart', function()
  it('content, then web, then warmup; the site turns warm', function()
    local w = world()
    w:advance(10000)
    assert.are.same({ 'starting', 'success' }, w:results('content'))
    w:ready_within('web', 1500)
    assert.is_true(w.history:spawns('web')[1].t >= 50) -- after content exited
    assert.is_true(w.history:spawns('warmup')[1].t >= w:ready_at('web'))
    assert.are.same({ 'waiting', 'starting', 'failure', 'success' }, w:results('site'))
    assert.is_true(w:ready_at('site') >= w:ready_at('warmup'))
    w:stop()
  end)

  it('a web server that never answers HTTP keeps warmup and site waiting', function()
    local w = world({ web = { listen = 8099 } })
    w:http('http://127.0.0.1:8099/', 'hang')
    w:advance(60000)
    assert.are.equal('failure', w:result('web'))
    w:never_started('warmup')
    assert.are.same({ 'waiting' }, w:results('site'))
    w:stop()
  end)
end)
