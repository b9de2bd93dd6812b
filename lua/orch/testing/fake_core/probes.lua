--- The fake core's probes (orch.testing.fake_core): core.port_listening, core.http_get and
-- core.tcp_connect, answered from the ports the scripted processes listen on, unless a test
-- scripts them (`set_port`, `set_http`, `set_tcp`). Answers come from the loop, after the
-- probe's delay.
-- @module orch.testing.fake_core.probes
local M = {}

--- The port of an http(s) URL (explicit, else 80/443), or nil.
function M.url_port(url)
  local scheme, rest = tostring(url):match('^(%a+)://([^/]*)')
  if not scheme then
    return nil
  end
  local port = rest:match(':(%d+)$')
  if port then
    return math.tointeger(tonumber(port))
  end
  return scheme:lower() == 'https' and 443 or 80
end

--- Add the probes to `fake`; `state` is the fake's shared state (its fields here: probes,
-- port_override, http, tcp, port_checks; it reads `ports` and `procs`).
function M.install(fake, state)
  local at = fake._at

  local Probe = {}
  Probe.__index = Probe
  Probe.__name = 'orch.probe'

  function Probe:close()
    if not self.closed then
      self.closed = true
      state.probes[self] = nil
      if self.timer then
        self.timer:close()
      end
    end
  end
  Probe.__close = Probe.close

  function Probe:active()
    return not self.closed
  end

  local function new_probe(delay, fn)
    local pr = setmetatable({}, Probe)
    state.probes[pr] = true
    pr.timer = at(delay, function()
      if not pr.closed then
        pr.closed = true
        state.probes[pr] = nil
        fn()
      end
    end)
    return pr
  end

  --- Override what port_listening says for `port` (true/false, or {nil, msg, code}); nil to
  -- fall back to the scripted processes' ports.
  function fake.set_port(port, v)
    state.port_override[port] = v
  end

  function fake.port_listening(port, _)
    assert(math.type(port) == 'integer' and port >= 1 and port <= 65535,
      "bad argument #1 to 'port_listening' (port must be 1..65535)")
    state.port_checks = (state.port_checks or 0) + 1
    local o = state.port_override[port]
    if o ~= nil then
      if type(o) == 'table' then
        return table.unpack(o, 1, 3)
      end
      return o
    end
    return (state.ports[port] or 0) > 0
  end

  --- Script core.http_get for `url`: {status = n, delay = ms} | {err = text, code = CODE,
  -- delay = ms} | 'hang' | function(url, opts) returning one of those.
  function fake.set_http(url, v)
    state.http[url] = v
  end

  function fake.http_get(url, opts, cb)
    assert(type(cb) == 'function', 'fake http_get: callback expected')
    opts = opts or {}
    local timeout = opts.timeout or 1000
    local s = state.http[url]
    if type(s) == 'function' then
      s = s(url, opts)
    end
    if s == nil then
      s = { err = 'Failed to connect: Connection refused', code = 'ECONNREFUSED' }
      local port = M.url_port(url)
      if port and fake.port_listening(port) then
        s = { status = 200 } -- a scripted process listens there: it answers its `http` status
        for _, p in ipairs(state.procs) do
          if p.alive and p.ports[port] and p.http then
            s = type(p.http) == 'table' and p.http or { status = p.http }
          end
        end
      end
    end
    if s == 'hang' or (type(s) == 'table' and (s.delay or 0) > timeout) then
      return new_probe(timeout, function()
        cb(nil, timeout, 'Timeout was reached', 'ETIMEDOUT')
      end)
    end
    local delay = s.delay or 0
    return new_probe(delay, function()
      if s.status then
        cb(s.status, delay)
      else
        cb(nil, delay, s.err, s.code)
      end
    end)
  end

  --- Script core.tcp_connect for `port`: {err = CODE, delay = ms} | 'hang'.
  function fake.set_tcp(port, v)
    state.tcp[port] = v
  end

  function fake.tcp_connect(_, port, timeout, cb)
    local s = state.tcp[port]
    if s == 'hang' then
      return new_probe(timeout, function()
        cb('ETIMEDOUT', timeout)
      end)
    end
    s = s or {}
    local delay = s.delay or 0
    return new_probe(delay, function()
      if s.err then
        cb(s.err, delay)
      elseif fake.port_listening(port) then
        cb(nil, delay)
      else
        cb('ECONNREFUSED', delay)
      end
    end)
  end

  --- Probe handles not yet completed or closed.
  function fake.open_probes()
    local n = 0
    for _ in pairs(state.probes) do
      n = n + 1
    end
    return n
  end

  --- Number of port_listening calls so far.
  function fake.port_checks()
    return state.port_checks or 0
  end
end

return M
