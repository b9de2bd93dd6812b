-- Group I of reference.md section 4: the probe helpers (70, 71; 72 is in daemons_health_spec).
-- Unit specs on the fake core, then #integration specs on real sockets.
-- Adjusted per DECISIONS: TCP counts only in LISTEN state and any IPv6 address counts, so a
-- listener on [::1] is a success (the upstream quirk made it a failure). The /proc read is
-- synchronous in the C core, so checkPortListening cannot time out (its timeout options are
-- accepted for compatibility).
local H = require 'spec.support.helpers'

insulate('orch.healthCheck on the fake core', function()
  local fake, orch = H.fake()
  local hc = orch.healthCheck

  before_each(function()
    fake.reset()
  end)

  describe('checkPortListening', function()
    it('70: success with successMessage when the port listens, else failure with errorMessage',
      function()
        fake.set_port(8080, true)
        local o = { successMessage = 'up', errorMessage = 'down' }
        assert.are.same({ result = 'success', message = 'up' }, hc.checkPortListening(8080, o))
        assert.are.same({ result = 'failure', message = 'down' }, hc.checkPortListening(8081, o))
        assert.are.same({ result = 'failure', message = 'Port 8081 is not listening' },
          hc.checkPortListening(8081))
        -- the SDK's leading effects argument is accepted
        assert.are.same({ result = 'success', message = 'up' },
          hc.checkPortListening({ setHealth = print }, 8080, o))
      end)

    it('70: a read error of /proc/net is a failure', function()
      fake.set_port(9, { nil, 'port_listening /proc/net: permission denied', 'EACCES' })
      assert.are.same({ result = 'failure', message = 'Port 9 is not listening' },
        hc.checkPortListening(9))
    end)

    it('rejects a bad port and unknown options', function()
      assert.has_error(function()
        hc.checkPortListening(0)
      end, "bad argument #1 to 'checkPortListening' (port 1..65535 expected, got 0)")
      assert.has_error(function()
        hc.checkPortListening(80, { sucessMessage = 'x' })
      end, "bad argument #2 to 'checkPortListening' (unknown option sucessMessage (did you "
        .. 'mean successMessage?))')
    end)
  end)

  describe('checkWebUrl', function()
    local url = 'http://127.0.0.1:8080/'

    local function probe(opts)
      local res, took
      H.run(function()
        local t0 = orch.now()
        res = hc.checkWebUrl(url, opts)
        took = orch.now() - t0
      end)
      return res, took
    end

    it('71: any HTTP response is a success, 500 included', function()
      fake.set_http(url, { status = 500, delay = 5 })
      assert.are.same({ result = 'success', message = 'Reached ' .. url }, probe())
    end)

    it('71: connection refused is a failure', function()
      assert.are.same({ result = 'failure', message = 'Error while fetching URL: ' .. url },
        probe())
    end)

    it('71: a server that never answers is a failure after the timeout (1000 ms)', function()
      fake.set_http(url, 'hang')
      local res, took = probe()
      assert.are.same({ result = 'failure', message = 'Error while fetching URL: ' .. url }, res)
      assert.are.equal(1000, took)
      local _, took2 = probe({ timeout = 250 })
      assert.are.equal(250, took2)
    end)

    it('expectStatus turns an unexpected status into a failure', function()
      fake.set_http(url, { status = 503 })
      assert.are.same({ result = 'failure', message = 'not ok (HTTP 503)' },
        probe({ expectStatus = { 200, 204 }, errorMessage = 'not ok' }))
      assert.are.same({ result = 'success', message = 'fine' },
        probe({ expectStatus = 503, successMessage = 'fine' }))
    end)

    it('closes its probe handle when the probing task is cancelled', function()
      fake.set_http(url, 'hang')
      H.run(function()
        local t = orch.spawn(function()
          hc.checkWebUrl(url, { timeout = 5000 })
        end)
        orch.sleep(100)
        assert.are.equal(1, fake.open_probes())
        t:cancel()
        assert.are.equal(0, fake.open_probes())
      end)
    end)
  end)

  describe('runHealthScript', function()
    it('raises {result = failure, message = errorMessage} on a timeout', function()
      fake.program('slow', {})
      local ok, err, took
      H.run(function()
        local t0 = orch.now()
        ok, err = pcall(hc.runHealthScript, { 'slow' }, { timeout = 500 })
        took = orch.now() - t0
      end)
      assert.is_false(ok)
      assert.are.same({ result = 'failure', message = 'Error while running command: slow' }, err)
      assert.are.equal(500, took)
      assert.are.same({ { sig = 'SIGKILL', t = 500 } }, fake.procs('slow')[1].signals)
    end)

    it('formats the success message from stdout, or with a message function', function()
      fake.program('echo hi', { stdout = 'hi\n', exit = 0, code = 0 })
      H.run(function()
        assert.are.same({ result = 'success',
          message = 'Have ran script echo hi and the result: hi\n' },
          hc.runHealthScript('echo hi'))
        assert.are.same({ result = 'success', message = 'said hi\n' },
          hc.runHealthScript('echo hi', { message = function(out)
            return 'said ' .. out
          end }))
      end)
    end)
  end)
end)

insulate('orch.healthCheck on real sockets #integration', function()
  local orch = H.real()
  local hc = orch.healthCheck

  local listener = [[
import socket, sys, time
fam = socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET
kind = socket.SOCK_DGRAM if sys.argv[3] == 'udp' else socket.SOCK_STREAM
s = socket.socket(fam, kind)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if fam == socket.AF_INET6:
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
s.bind((sys.argv[1], int(sys.argv[2])))
if kind == socket.SOCK_STREAM:
    s.listen(5)
print('ready', flush=True)
time.sleep(60)
]]

  local function listen(addr, port, kind)
    return H.helper_process({ 'python3', '-u', '-c', listener, addr, tostring(port),
      kind or 'tcp' })
  end

  local function stop(cmd)
    cmd:kill('SIGKILL')
    cmd:wait()
  end

  it('70: a listener on 0.0.0.0, 127.0.0.1, [::] or [::1] succeeds; UDP bound counts; nothing '
    .. 'listening fails', function()
      H.run(function()
        for _, case in ipairs { { '0.0.0.0' }, { '127.0.0.1' }, { '::' }, { '::1' },
          { '127.0.0.1', 'udp' } } do
          local port = H.free_port()
          local before = hc.checkPortListening(port, { successMessage = 'up',
            errorMessage = 'down' })
          assert.are.equal('failure', before.result, case[1])
          local cmd = listen(case[1], port, case[2])
          local res = hc.checkPortListening(port, { successMessage = 'up', errorMessage = 'down' })
          stop(cmd)
          assert.are.same({ result = 'success', message = 'up' }, res, case[1])
        end
      end, 20000)
    end)

  it('70: a connected (non-LISTEN) TCP socket does not count', function()
    H.run(function()
      local port = H.free_port()
      local cmd = H.helper_process({ 'python3', '-u', '-c', [[
import socket, sys, time
port = int(sys.argv[1])
srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(1)
c = socket.socket(); c.bind(('127.0.0.1', port)); c.connect(srv.getsockname())
a, _ = srv.accept()
print('ready', flush=True)
time.sleep(60)
]], tostring(port) })
      local res = hc.checkPortListening(port)
      stop(cmd)
      assert.are.equal('failure', res.result)
    end, 10000)
  end)

  it('71: a 500 is a success, refused a failure, a silent server fails after ~1000 ms',
    function()
      H.run(function()
        local port = H.free_port()
        local server = H.helper_process({ 'python3', '-u', '-c', [[
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(500); self.end_headers(); self.wfile.write(b'no')
    def log_message(self, *a): pass
s = http.server.HTTPServer(('127.0.0.1', int(sys.argv[1])), H)
print('ready', flush=True)
s.serve_forever()
]], tostring(port) })
        local url = ('http://127.0.0.1:%d/'):format(port)
        local ok = hc.checkWebUrl(url)
        stop(server)
        assert.are.same({ result = 'success', message = 'Reached ' .. url }, ok)
        local refused = hc.checkWebUrl(url)
        assert.are.same({ result = 'failure', message = 'Error while fetching URL: ' .. url },
          refused)
        local silent = listen('127.0.0.1', port)
        local t0 = orch.now()
        local res = hc.checkWebUrl(url)
        local took = orch.now() - t0
        stop(silent)
        assert.are.equal('failure', res.result)
        -- real clock: checkWebUrl's 1000 ms is libcurl's timeout in C (the fake: 71 above)
        assert.is_true(took >= 900 and took <= 1500, 'took ' .. took)
      end, 20000)
    end)

  it('27: runHealthScript runs a real command', function()
    H.run(function()
      local ok, err = pcall(hc.runHealthScript, { 'sh', '-c', 'exit 1' },
        { errorMessage = 'not ready' })
      assert.is_false(ok)
      assert.are.same({ result = 'failure', message = 'not ready' }, err)
      assert.are.same({ result = 'success',
        message = 'Have ran script sh,-c,echo ok and the result: ok\n' },
        hc.runHealthScript({ 'sh', '-c', 'echo ok' }))
    end, 10000)
  end)
end)
