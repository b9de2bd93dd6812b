-- libcurl is loaded on the first core.http_get, not at start: an orch without HTTP checks never
-- maps it (nor its TLS chain). The real build/bin/orch is read through /proc/<pid>/maps (tagged
-- #integration); core.http_get is also driven directly through this build's core module.
-- The failure when libcurl cannot be loaded is spec/c/test_http_nocurl.c.
local core = require 'orch.core'
local H = require 'spec.support.helpers'
local R = require 'fixtures.cli.runner'

local F = R.FIXTURES
local SERVER = 'spec/support/pyserver.py'

-- What linking libcurl used to map into every orch.
local CURL_CHAIN = { 'libcurl', 'libssl', 'libcrypto', 'libgnutls' }

-- The libraries of CURL_CHAIN that `pid` maps, in CURL_CHAIN order.
local function curl_mapped(pid)
  local maps = assert(R.read_file(('/proc/%d/maps'):format(pid)), 'no maps for ' .. pid)
  local found = {}
  for _, lib in ipairs(CURL_CHAIN) do
    if maps:find('/' .. lib, 1, true) then
      found[#found + 1] = lib
    end
  end
  return found
end

local procs = {}

local function start(args)
  local p = R.start(args)
  procs[#procs + 1] = p
  return p
end

describe('libcurl loaded lazily', function()
  local server_pid

  after_each(function()
    for _, p in ipairs(procs) do
      p:cleanup()
    end
    procs = {}
    if server_pid then
      os.execute(('kill %d 2>/dev/null'):format(server_pid))
      server_pid = nil
    end
  end)

  it('core.http_get still answers, through the libcurl it loaded', function()
    local portfile = os.tmpname()
    os.remove(portfile)
    assert(os.execute(('python3 %s http %s --parent %d >/dev/null 2>&1 &'):format(
      SERVER, portfile, core.getpid())))
    local text = R.wait_until(function()
      return R.read_file(portfile)
    end, 20000, 'the http server') -- python3 alone took 2.6 s to start under load
    os.remove(portfile)
    local port, pid = text:match('^(%d+) (%d+)')
    server_pid = tonumber(pid)

    local got = {}
    local probe = core.http_get(('http://127.0.0.1:%d/status/204'):format(port),
      { timeout = 3000 }, function(...)
        got = table.pack(...)
      end)
    assert.truthy(probe)
    H.drive_loop(core, 5000) -- http_get answers within 5 s
    assert.equal(204, got[1])
    assert.equal('libcurl', curl_mapped(core.getpid())[1])
  end)

  describe('in orch run #integration', function()
    it('is not mapped by an orch whose entries make no HTTP check', function()
      local p = start({ 'run', '--no-contain', '--no-control', F .. '/lazy_curl.lua' })
      p:wait_for('idle: starting %-> success')
      assert.equal('orch\n', R.read_file(('/proc/%d/comm'):format(p.pid)))
      assert.same({}, curl_mapped(p.pid))
      p:signal('TERM')
      assert.equal(0, p:wait())
    end)

    it('is mapped once checkWebUrl has probed, and the entry becomes ready', function()
      local port = R.free_port()
      local p = start({ 'run', '--no-contain', '--no-control', F .. '/lazy_curl.lua',
        tostring(port) })
      p:wait_for('web: starting %-> success %(answering%)', 15000)
      assert.equal('libcurl', curl_mapped(p.pid)[1])
      p:signal('TERM')
      assert.equal(0, p:wait())
    end)
  end)
end)
