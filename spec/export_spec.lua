-- orch export (#17): golden files for the examples, the engines' own validators on every
-- output, the loss report entry by entry, --strict, name collisions, subcontainer images and
-- mounts, and that describing a script starts nothing. orch probe once and with --wait.
-- ORCH_UPDATE_GOLDEN=1 rewrites the golden files (review the diff by eye).
local R = require 'fixtures.cli.runner'

local FIX = R.ROOT .. '/spec/fixtures/export'
local SCRIPTS = FIX .. '/scripts'
local VALIDATE_K8S = R.ROOT .. '/tools/k8s-validate'
local EXAMPLES = {
  { 'chain', 'examples/chain.lua' },
  { 'crashloop', 'examples/crashloop.lua' },
  { 'healthcheck', 'examples/healthcheck.lua' },
  { 'single', 'examples/single.lua' },
  { 'quickstart', 'examples/quickstart/main.lua' },
  -- its image 'main' is not in the data directory: the units cannot be verified
  { 'provider', 'spec/fixtures/export/scripts/package.lua', data = 'spec/fixtures/export/data',
    made_up = true },
  -- a data directory with a stand-in of the example's image (passwd, config.json, a stub httpd)
  { 'package', 'examples/package/main.lua', data = 'spec/fixtures/export/data' },
  -- made-up commands (db, fetch...): systemd-analyze verify wants binaries that exist
  { 'losses', 'spec/fixtures/export/scripts/losses.lua', made_up = true },
  { 'lossless', 'spec/fixtures/export/scripts/lossless.lua', made_up = true },
}
-- a fixed PATH, so that systemd's absolute paths do not depend on the machine
local ENV = { PATH = '/usr/bin:/bin' }

local function have(cmd)
  return os.execute(('command -v %s >/dev/null 2>&1'):format(cmd)) == true
end

local function export(format, script, extra, data)
  -- a data directory of the checkout: --name (or --data) puts it in the units' probe commands
  local args = { 'export', format, '--name', 'app',
    '--data=' .. (data or 'spec/fixtures/export/data') }
  for _, a in ipairs(extra or {}) do
    args[#args + 1] = a
  end
  args[#args + 1] = script
  return R.run(args, { env = ENV })
end

-- What differs from machine to machine: the checkout's path, the temporary directory the
-- quickstart makes.
local function normalise(text)
  return (text:gsub(R.ROOT:gsub('%p', '%%%0'), '@ROOT@'):gsub('/tmp/lua_%w+', '/tmp/lua_XXXXXX'))
end

local function golden(path, text)
  text = normalise(text)
  if os.getenv('ORCH_UPDATE_GOLDEN') == '1' then
    os.execute(('mkdir -p %s'):format(R.quote(path:match('^(.*)/'))))
    R.write_file(path, text)
  end
  local want = R.read_file(path)
  assert(want, path .. ' is missing (ORCH_UPDATE_GOLDEN=1 writes it)')
  assert.are.equal(want, text)
end

local function lines_of(dir)
  local out = {}
  for f in R.capture(('ls %s'):format(R.quote(dir))):gmatch('[^\n]+') do
    out[#out + 1] = f
  end
  return out
end

describe('orch export: golden files', function()
  for _, ex in ipairs(EXAMPLES) do
    local name, script = ex[1], ex[2]
    it(name .. ': k8s, compose, systemd and the loss reports', function()
      for _, format in ipairs({ 'k8s', 'compose' }) do
        local r = export(format, script, nil, ex.data)
        assert.are.equal(0, r.code, r.err)
        golden(('%s/%s/%s.yaml'):format(FIX, name, format), r.out)
        golden(('%s/%s/%s.losses'):format(FIX, name, format), r.err)
      end
      local dir = R.tmpdir()
      local r = export('systemd', script, { '--orch', '/usr/bin/orch', '-o', dir }, ex.data)
      assert.are.equal(0, r.code, r.err)
      golden(('%s/%s/systemd.losses'):format(FIX, name), r.err)
      local units = {}
      for _, f in ipairs(lines_of(dir)) do
        units[#units + 1] = '### ' .. f .. '\n' .. R.read_file(dir .. '/' .. f)
      end
      golden(('%s/%s/systemd.units'):format(FIX, name), table.concat(units, '\n'))
      R.cleanup(dir)
    end)
  end
end)

describe("orch export: the engines' own validators", function()
  for _, ex in ipairs(EXAMPLES) do
    local name, script = ex[1], ex[2]
    it(name .. ': Kubernetes schema (npm kubernetes-models)', function()
      if not have('node')
        or not R.read_file(VALIDATE_K8S .. '/node_modules/kubernetes-models/package.json') then
        pending('no Kubernetes validator: make deps installs node and tools/k8s-validate')
        return
      end
      local dir = R.tmpdir()
      local r = export('k8s', script, { '-o', dir })
      assert.are.equal(0, r.code, r.err)
      local out = R.capture(('node %s/validate.mjs %s/kubernetes.yaml 2>&1; echo "rc=$?"'):format(
        R.quote(VALIDATE_K8S), R.quote(dir)))
      R.cleanup(dir)
      assert.matches('rc=0', out, 1, true)
      assert.matches(': valid', out, 1, true)
    end)
    it(name .. ': docker-compose config', function()
      if not have('docker-compose') then
        pending('no docker-compose: make deps installs it (Debian docker-compose)')
        return
      end
      local dir = R.tmpdir()
      local r = export('compose', script, { '-o', dir })
      assert.are.equal(0, r.code, r.err)
      local out = R.capture(('cd %s && docker-compose -f compose.yaml config -q 2>&1; echo "rc=$?"')
        :format(R.quote(dir)))
      R.cleanup(dir)
      assert.matches('rc=0\n$', out)
    end)
    it(name .. ': systemd-analyze verify', function()
      if ex.made_up then
        pending('its commands or image are made up; systemd-analyze verify needs binaries that '
          .. 'exist')
        return
      end
      if not have('systemd-analyze') then
        pending('no systemd-analyze: make deps installs systemd')
        return
      end
      -- the units call this build's orch and absolute paths that exist here (PATH=/usr/bin:/bin)
      local dir = R.tmpdir()
      local r = export('systemd', script, { '-o', dir }, ex.data)
      assert.are.equal(0, r.code, r.err)
      -- verify looks for ExecStart= on the host; under RootDirectory= systemd runs it from the
      -- image: point verify at that file (which must exist in the image)
      for _, f in ipairs(lines_of(dir)) do
        local text = R.read_file(dir .. '/' .. f)
        local root = text:match('\nRootDirectory=([^\n]+)')
        if root then
          text = text:gsub('\nExecStart=(/[^%s]+)', function(path)
            assert.is_truthy(R.read_file(root .. path), path .. ' is not in the image')
            return '\nExecStart=' .. root .. path
          end)
          R.write_file(dir .. '/' .. f, text)
        end
      end
      local out = R.capture(('cd %s && SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no '
        .. '*.service *.target 2>&1; echo "rc=$?"'):format(R.quote(dir)))
      R.cleanup(dir)
      assert.matches('rc=0\n$', out)
      assert.not_matches('is not executable', out, 1, true)
    end)
  end
end)

describe('orch export: the loss report', function()
  local script = SCRIPTS .. '/losses.lua'
  local function has(err, line)
    return err:find(line, 1, true) ~= nil
  end

  it('k8s: lists what Kubernetes cannot express, and only that', function()
    local r = export('k8s', script)
    assert.are.equal(0, r.code, r.err)
    assert.is_true(has(r.err, "k8s: loss: db: exec.stopSignal: SIGINT"), r.err)
    assert.is_true(has(r.err, 'k8s: loss: db: exec.limits.pids:'), r.err)
    assert.is_true(has(r.err, 'k8s: loss: cache: ready.fn: ready.fn has no probe'), r.err)
    assert.is_true(has(r.err, "k8s: loss: api: requires.cache: onUnhealthy = 'restart'"), r.err)
    assert.is_true(has(r.err, "k8s: loss: api: exec.user: user name 'www'"), r.err)
    -- exact: cooldownTrigger(2000) is periodSeconds 2, an ignore edge is what Kubernetes does
    assert.is_false(has(r.err, 'db: ready.trigger'), r.err)
    assert.is_false(has(r.err, 'requires.db'), r.err)
    assert.is_false(has(r.err, 'db: exec.limits.memory'), r.err)
    assert.matches('periodSeconds: 2\n', r.out, 1, true)
    assert.is_true(has(r.err, 'k8s: loss: notifier: ready.notify:'), r.err)
    assert.is_true(has(r.err, "k8s: loss: notifier: exec.restart: 'on-failure'"), r.err)
    assert.is_true(has(r.err, 'k8s: loss: notifier: exec.maxRestarts:'), r.err)
    assert.matches('tcpSocket:\n%s+port: 5432', r.out)
  end)

  it('k8s --orch-image: a Lua ready.fn becomes an orch probe command', function()
    local r = export('k8s', script, { '--orch-image' })
    assert.are.equal(0, r.code, r.err)
    assert.is_false(has(r.err, 'cache: ready.fn'), r.err)
    assert.matches('- orch\n%s+- probe\n%s+- /orch/main.lua\n%s+- cache\n', r.out)
    -- a cooldown that is not whole seconds is approximated, and said so
    assert.is_true(has(r.err, 'k8s: loss: cache: ready.trigger: cooldownTrigger(1500) becomes '
      .. 'a probe every 2 s'), r.err)
  end)

  it('systemd: the ignore edge is a loss there, the pids limit is not', function()
    local dir = R.tmpdir()
    local r = export('systemd', script, { '-o', dir })
    assert.are.equal(0, r.code, r.err)
    assert.is_true(has(r.err, "systemd: loss: api: requires.db: onUnhealthy = 'ignore'"), r.err)
    assert.is_false(has(r.err, 'exec.limits.pids'), r.err)
    assert.is_false(has(r.err, 'exec.stopSignal'), r.err)
    local unit = R.read_file(dir .. '/app-db.service')
    assert.matches('TasksMax=50\n', unit, 1, true)
    assert.matches('KillSignal=SIGINT\n', unit, 1, true)
    assert.matches('MemoryMax=67108864\n', unit, 1, true)
    local notifier = R.read_file(dir .. '/app-notifier.service')
    assert.matches('\nType=notify\n', notifier, 1, true)
    assert.matches('\nWatchdogSec=10\n', notifier, 1, true)
    assert.matches('\nStartLimitBurst=4\nStartLimitIntervalSec=60\n', notifier, 1, true)
    assert.matches('\nRestart=on-failure\n', notifier, 1, true)
    local api = R.read_file(dir .. '/app-api.service')
    assert.matches('Wants=app-db.service\n', api, 1, true)
    assert.matches('Requires=app-cache.service\nPartOf=app-cache.service\n', api, 1, true)
    assert.matches('After=app-db.service\n', api, 1, true)
    R.cleanup(dir)
  end)

  it('compose: a stop signal translates, a Lua check does not', function()
    local r = export('compose', script)
    assert.are.equal(0, r.code, r.err)
    assert.matches('stop_signal: SIGINT\n', r.out, 1, true)
    assert.is_false(has(r.err, 'exec.stopSignal'), r.err)
    assert.is_true(has(r.err, 'compose: loss: cache: ready.fn:'), r.err)
    assert.is_true(has(r.err, 'compose: loss: api: requires.cache: cache has no healthcheck'),
      r.err)
  end)

  it('describing the script starts nothing (a ready.fn that runs a command is not run)', function()
    local dir = R.tmpdir()
    local marker = dir .. '/marker'
    local r = R.run({ 'export', 'k8s', script }, { env = { ORCH_EXPORT_MARKER = marker } })
    assert.are.equal(0, r.code, r.err)
    assert.is_nil(R.read_file(marker))
    R.cleanup(dir)
  end)

  it('--strict: exit 1 and nothing written when anything is lost; 0 when nothing is', function()
    local r = export('k8s', script, { '--strict' })
    assert.are.equal(1, r.code)
    assert.are.equal('', r.out)
    assert.matches('did not translate exactly %(%-%-strict%)', r.err)
    local ok = export('k8s', SCRIPTS .. '/lossless.lua', { '--strict' })
    assert.are.equal(0, ok.code, ok.err)
    assert.are.equal('', ok.err)
    assert.matches('kind: Job\n', ok.out, 1, true)
    local c = export('compose', SCRIPTS .. '/lossless.lua', { '--strict' })
    assert.are.equal(0, c.code, c.err)
  end)

  it('two ids that map to one Kubernetes name are an error naming both', function()
    local r = export('k8s', SCRIPTS .. '/collide.lua')
    assert.are.equal(1, r.code)
    assert.matches("entries 'cache_a' and 'cache%-a' both map to the Kubernetes name 'cache%-a'",
      r.err)
  end)

  it('subcontainer images and mounts: PVCs named after volume ids, read-only honoured', function()
    local r = export('k8s', SCRIPTS .. '/package.lua', { '--registry', 'registry.example/pkg' })
    assert.are.equal(0, r.code, r.err)
    assert.matches('kind: PersistentVolumeClaim\nmetadata:\n  name: app%-main\n', r.out)
    assert.matches('image: registry.example/pkg/main\n', r.out, 1, true)
    assert.matches('mountPath: /etc/app\n%s+subPath: conf\n%s+readOnly: true\n', r.out)
    assert.is_true(has(r.err, 'k8s: loss: app: subcontainer.mounts: the assets mount at /assets'),
      r.err)
  end)

  it('systemd: a subcontainer runs in its image of the data directory, as its user', function()
    local dir = R.tmpdir()
    local r = export('systemd', 'examples/package/main.lua', { '-o', dir })
    assert.are.equal(0, r.code, r.err)
    local unit = R.read_file(dir .. '/app-primary.service')
    local data = R.ROOT .. '/spec/fixtures/export/data'
    -- the image's entrypoint with useEntrypoint's override, its user from its own passwd
    assert.matches('\nExecStart=/bin/httpd %-f %-v %-h /data/www %-p 8080\n', unit)
    assert.matches('\nRootDirectory=' .. data:gsub('%p', '%%%0') .. '/images/web/rootfs\n', unit)
    assert.matches('\nBindPaths=' .. data:gsub('%p', '%%%0') .. '/volumes/main:/data\n', unit)
    assert.matches('\nUser=1000\nGroup=1000\n', unit)
    assert.matches('\nExecStartPost=%+', unit) -- the probe runs outside the sandbox
    -- the oneshot asks for root: resolved in the image too
    assert.matches('\nUser=0\nGroup=0\n', R.read_file(dir .. '/app-init-volume.service'))
    R.cleanup(dir)
  end)

  it('usage errors: an unknown format, systemd without -o', function()
    local r = R.run({ 'export', 'nomad', 'examples/chain.lua' })
    assert.are.equal(2, r.code)
    assert.matches("unknown format 'nomad'", r.err)
    r = R.run({ 'export', 'systemd', 'examples/chain.lua' })
    assert.are.equal(2, r.code)
    assert.matches('give %-o DIR', r.err)
  end)

  it('a Daemons.dynamic main: the entries of one run of fn, and a loss that says so', function()
    local r = R.run({ 'export', 'compose', 'spec/fixtures/export/dynamic.lua' })
    assert.are.equal(0, r.code, r.err)
    assert.matches('\n  db:', r.out, 1, true)
    assert.matches('\n  api:', r.out, 1, true)
    assert.matches('Daemons.dynamic: the entries of one run of fn', r.err, 1, true)
    r = R.run({ 'export', 'compose', '--strict', 'spec/fixtures/export/dynamic.lua' })
    assert.are.equal(1, r.code)
  end)
end)

describe('orch probe', function()
  local script = SCRIPTS .. '/probe.lua'

  it('runs the check once: exit 0 and the result on success, 1 on failure', function()
    local dir = R.tmpdir()
    local file = dir .. '/ready'
    local r = R.run({ 'probe', script, 'svc' }, { env = { ORCH_PROBE_FILE = file } })
    assert.are.equal(1, r.code)
    assert.matches('svc: failure: no file yet', r.err, 1, true)
    R.write_file(file, 'x')
    r = R.run({ 'probe', script, 'svc' }, { env = { ORCH_PROBE_FILE = file } })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal('svc: success: file is there\n', r.out)
    R.cleanup(dir)
  end)

  it('--wait=MS gives up after MS; --wait waits until the check passes', function()
    local dir = R.tmpdir()
    local file = dir .. '/ready'
    local r = R.run({ 'probe', '--wait=200', script, 'svc' }, { env = { ORCH_PROBE_FILE = file } })
    assert.are.equal(1, r.code)
    assert.matches('not ready within 200 ms', r.err, 1, true)
    r = R.run({ 'probe', '--wait', script, 'svc' }, { env = { ORCH_PROBE_FILE = file },
      prefix = ('sh -c %s sh'):format(R.quote(('(sleep 0.3; touch %s) & exec "$@"'):format(
        R.quote(file)))) })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal('svc: success: file is there\n', r.out)
    R.cleanup(dir)
  end)

  it('an unknown id, or an entry without ready.fn, is an error', function()
    local r = R.run({ 'probe', script, 'nope' })
    assert.are.equal(1, r.code)
    assert.matches("no entry 'nope'", r.err, 1, true)
    r = R.run({ 'probe', script, 'once' })
    assert.are.equal(1, r.code)
    assert.matches('a oneshot is ready when it exits successfully', r.err, 1, true)
  end)
end)
