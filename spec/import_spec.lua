-- orch import compose (#17): compose files written for the test (a web app with a migration,
-- a static site, a queue) become a main.lua that orch check accepts; exporting it back to
-- compose gives an equivalent file (every key the import maps, compose defaults filled in),
-- which docker-compose config accepts. The loss report names what has no equivalent.
package.path = 'lua/?.lua;lua/?/init.lua;' .. package.path
local R = require 'fixtures.cli.runner'
local yaml_read = require 'orch.export.yaml_read'
local import_compose = require 'orch.export.import_compose'

local DIR = R.ROOT .. '/spec/fixtures/export/compose'

local function words(v)
  if type(v) == 'string' then
    local out = {}
    for w in v:gmatch('%S+') do
      out[#out + 1] = w
    end
    return out
  end
  local out = {}
  for i, x in ipairs(v or {}) do
    out[i] = tostring(x)
  end
  return out
end

local function bytes(m)
  if m == nil then
    return nil
  end
  local n, unit = tostring(m):upper():match('^(%d+)([KMGB]?)B?$')
  return math.tointeger(tonumber(n) * ({ [''] = 1, B = 1, K = 1024, M = 1024 ^ 2,
    G = 1024 ^ 3 })[unit])
end

-- What the import maps, with compose's defaults made explicit.
local function normal(doc)
  local out = {}
  for name, s in pairs(doc.services) do
    local env = {}
    if type(s.environment) == 'table' then
      if #s.environment > 0 then
        for _, kv in ipairs(s.environment) do
          local k, v = kv:match('^([^=]+)=(.*)$')
          env[k] = v
        end
      else
        for k, v in pairs(s.environment) do
          env[k] = tostring(v)
        end
      end
    end
    local deps = {}
    if type(s.depends_on) == 'table' then
      if #s.depends_on > 0 then
        for _, d in ipairs(s.depends_on) do
          deps[d] = 'service_started'
        end
      else
        for d, c in pairs(s.depends_on) do
          deps[d] = c.condition
        end
      end
    end
    local hc
    if s.healthcheck then
      local t = s.healthcheck.test
      if type(t) == 'string' then
        t = { 'CMD-SHELL', t }
      end
      local d = import_compose.HEALTH_DEFAULTS
      hc = {
        test = words(t),
        interval = import_compose.duration(s.healthcheck.interval) or d.interval,
        timeout = import_compose.duration(s.healthcheck.timeout) or d.timeout,
        retries = s.healthcheck.retries or d.retries,
        start = import_compose.duration(s.healthcheck.start_period) or d.start_period,
      }
    end
    local lim = s.deploy and s.deploy.resources and s.deploy.resources.limits or {}
    local restart = s.restart or 'no'
    out[name] = {
      image = s.image,
      command = words(s.command),
      env = env,
      env_file = type(s.env_file) == 'table' and s.env_file[1] or s.env_file,
      user = s.user and tostring(s.user),
      working_dir = s.working_dir,
      stop_signal = s.stop_signal or 'SIGTERM',
      grace = import_compose.duration(s.stop_grace_period) or 10000,
      restart = restart == 'unless-stopped' and 'always' or restart,
      healthcheck = hc,
      depends_on = deps,
      memory = bytes(lim.memory),
      cpus = lim.cpus and tonumber(lim.cpus),
      pids = s.pids_limit,
      nofile = s.ulimits and s.ulimits.nofile and (s.ulimits.nofile.hard or s.ulimits.nofile),
      init = s.init or nil,
    }
  end
  return out
end

local CASES = {
  { 'webapp.yml', { 'import: loss: app: ports:', "import: loss: db: command: the image's own "
    .. 'command', "import: loss: worker: restart: unless-stopped becomes 'always'" } },
  { 'site.yml', { 'import: loss: networks: top-level networks', 'import: loss: web: networks:' } },
  { 'queue.yml', { 'import: loss: worker: build: build: not mapped' } },
}

describe('orch import compose', function()
  for _, case in ipairs(CASES) do
    local file, losses = case[1], case[2]
    it(file .. ': round-trips through main.lua to an equivalent compose file', function()
      local dir = R.tmpdir()
      local r = R.run({ 'import', 'compose', DIR .. '/' .. file })
      assert.are.equal(0, r.code, r.err)
      for _, l in ipairs(losses) do
        assert.is_truthy(r.err:find(l, 1, true), l .. ' in\n' .. r.err)
      end
      R.write_file(dir .. '/main.lua', r.out)
      R.write_file(dir .. '/app.env', 'LOG_LEVEL=info\n')
      local c = R.run({ 'check', dir .. '/main.lua' })
      assert.are.equal(0, c.code, c.err .. r.out)
      local e = R.run({ 'export', 'compose', '-o', dir, dir .. '/main.lua' })
      assert.are.equal(0, e.code, e.err)
      local back = R.read_file(dir .. '/compose.yaml')
      local want = normal(assert(yaml_read.decode(R.read_file(DIR .. '/' .. file))))
      local got = normal(assert(yaml_read.decode(back)))
      assert.are.same(want, got)
      if os.execute('command -v docker-compose >/dev/null 2>&1') then
        local out = R.capture(('cd %s && docker-compose -f compose.yaml config -q 2>&1; '
          .. 'echo "rc=$?"'):format(R.quote(dir)))
        assert.matches('rc=0\n$', out)
      end
      R.cleanup(dir)
    end)
  end

  it('--strict: exit 1 and nothing written when a key has no equivalent', function()
    local r = R.run({ 'import', 'compose', '--strict', DIR .. '/queue.yml' })
    assert.are.equal(1, r.code)
    assert.are.equal('', r.out)
  end)

  it('a YAML error names the line; a cycle in depends_on is an error', function()
    local dir = R.tmpdir()
    R.write_file(dir .. '/bad.yml', 'services:\n  a:\n    image: x\n   command: y\n')
    local r = R.run({ 'import', 'compose', dir .. '/bad.yml' })
    assert.are.equal(1, r.code)
    assert.matches('line 4', r.err, 1, true)
    R.write_file(dir .. '/cycle.yml', 'services:\n  a:\n    image: x\n    depends_on: [b]\n'
      .. '  b:\n    image: x\n    depends_on: [a]\n')
    r = R.run({ 'import', 'compose', dir .. '/cycle.yml' })
    assert.are.equal(1, r.code)
    assert.matches('depends_on cycle', r.err, 1, true)
    R.cleanup(dir)
  end)
end)
