-- The orch binary: commands, help, usage errors, script errors, check and graph.
-- Runs the real build/bin/orch (tagged #integration).
local R = require 'fixtures.cli.runner'

local F = R.FIXTURES

local function lines(text)
  local out = {}
  for l in text:gmatch('[^\n]+') do
    out[#out + 1] = l
  end
  return out
end

describe('orch #integration', function()
  describe('help and version', function()
    it('prints the usage with --help and exits 0', function()
      local r = R.run({ '--help' })
      assert.equal(0, r.code)
      assert.matches('Usage: orch <command>', r.out)
      assert.matches('run ', r.out)
      assert.matches('check ', r.out)
      assert.matches('graph ', r.out)
    end)

    it('prints the help of a command', function()
      for _, cmd in ipairs({ 'run', 'check', 'graph' }) do
        local r = R.run({ cmd, '--help' })
        assert.equal(0, r.code)
        assert.matches('Usage: orch ' .. cmd, r.out)
      end
      local r = R.run({ 'run', '--help' })
      for _, opt in ipairs({ '--until-ready', '--log-format', '--no-color', '--timestamps',
        '--status-file' }) do
        assert.truthy(r.out:find(opt, 1, true), opt)
      end
    end)

    it('prints the version', function()
      local r = R.run({ '--version' })
      assert.equal(0, r.code)
      assert.matches('^orch %d+%.%d+%.%d+', r.out)
    end)
  end)

  describe('usage errors exit 2 with a one-line hint', function()
    local cases = {
      { {}, 'Usage: orch' },
      { { 'frobnicate' }, "unknown command 'frobnicate'" },
      { { '--frob' }, "unknown option '%-%-frob'" },
      { { 'run', '--frob', F .. '/ok.lua' }, "unknown option '%-%-frob' for 'run'" },
      { { 'run' }, 'missing the script' },
      { { 'run', '/nonexistent/main.lua' }, "cannot read '/nonexistent/main.lua'" },
      { { 'run', F }, 'Is a directory' },
      { { 'run', '--log-format', 'xml', F .. '/ok.lua' }, "unknown log format 'xml'" },
      { { 'run', '--log-format' }, "option '%-%-log%-format' needs a value" },
      { { 'run', '--until-ready=soon', F .. '/ok.lua' }, '%-%-until%-ready takes milliseconds' },
      { { 'run', '--no-color=1', F .. '/ok.lua' }, 'takes no value' },
      { { 'graph', '--format', 'png', F .. '/ok.lua' }, "unknown graph format 'png'" },
      { { 'check', '-x', F .. '/ok.lua' }, "unknown option '%-x'" },
    }
    for _, c in ipairs(cases) do
      it('for orch ' .. table.concat(c[1], ' '), function()
        local r = R.run(c[1])
        assert.equal(2, r.code)
        assert.matches(c[2], r.err)
        if #c[1] > 0 then
          assert.equal(1, #lines(r.err), r.err)
          assert.matches("%(try 'orch[%w ]* %-%-help'%)\n$", r.err)
        end
        assert.equal('', r.out)
      end)
    end
  end)

  describe('script errors exit 1 without starting anything', function()
    it('reports a syntax error as file:line: message', function()
      -- written at run time: a broken .lua file in the tree would fail `make lint`
      local dir = R.tmpdir()
      local path = dir .. '/syntax_error.lua'
      R.write_file(path, "local orch = require 'orch'\nreturn orch.Daemons.of{}\n" ..
        "  :addDaemon('a', {\n")
      local r = R.run({ 'run', path })
      R.cleanup(dir)
      assert.equal(1, r.code)
      assert.matches('^' .. path:gsub('%p', '%%%0') .. ':4: ', r.err)
      assert.equal('', r.out)
    end)

    it('reports a runtime error with a short traceback of the script frames only', function()
      local r = R.run({ 'run', F .. '/runtime_error.lua' })
      assert.equal(1, r.code)
      local l = lines(r.err)
      assert.matches('runtime_error%.lua:4: the database URL is missing$', l[1])
      assert.equal('stack traceback:', l[2])
      assert.matches("runtime_error%.lua:4: in .*helper", l[3])
      assert.matches('runtime_error%.lua:7: in main chunk', l[4])
      assert.is_nil(r.err:find('/lua/orch/', 1, true))
      assert.is_nil(r.err:find('[C]', 1, true))
      assert.equal('', r.out)
    end)

    it('reports a validation error at the line of main.lua', function()
      local r = R.run({ 'run', F .. '/invalid.lua' })
      assert.equal(1, r.code)
      -- the line of the offending field inside the addDaemon call (orch.locate)
      assert.matches('^[^\n]*invalid%.lua:5: [^\n]*sigtermTimout', r.err)
      assert.matches('sigtermTimeout', r.err)
      assert.equal('', r.out)
    end)

    it('explains a script that returns no chain', function()
      local r = R.run({ 'run', F .. '/returns_nothing.lua' })
      assert.equal(1, r.code)
      assert.matches('returned nothing; it must return a Daemons chain', r.err)
    end)

    it('fails check the same way', function()
      local r = R.run({ 'check', F .. '/invalid.lua' })
      assert.equal(1, r.code)
      assert.matches('invalid%.lua:5: ', r.err)
      assert.equal('', r.out)
    end)
  end)

  describe('check', function()
    it('lists the entries in start order with kind, requirements, readiness and command',
      function()
        local r = R.run({ 'check', F .. '/ok.lua' })
        assert.equal(0, r.code, r.err)
        local l = lines(r.out)
        assert.matches('^ID%s+KIND%s+REQUIRES%s+READY%s+RESTART%s+EXEC$', l[1])
        assert.matches('^prep%s+oneshot%s+%-%s+%-%s+on%-failure%s+.*echo prepared', l[2])
        assert.matches('^web%s+daemon%s+prep%s+Web%s+always%s+.*sleep 600', l[3])
        assert.matches('^probe%s+health%s+web%s+Probe%s+%-%s+%-$', l[4])
        assert.matches('ok%.lua: valid, 3 entries %(1 oneshot, 1 daemon, 1 health check%)$',
          l[5])
        -- the columns are aligned
        assert.equal(l[1]:find('KIND'), l[2]:find('oneshot'))
        assert.equal(l[1]:find('EXEC'), l[3]:find('sh', l[1]:find('EXEC'), true))
      end)

    it('lists what one run of a Daemons.dynamic function produces, and says so', function()
      local r = R.run({ 'check', F .. '/dynamic_check.lua', '3' })
      assert.equal(0, r.code, r.err)
      assert.matches('note: main.lua returns Daemons.dynamic%(fn%): the entries below are what '
        .. 'one run of fn produces now', r.out)
      assert.matches('\ndb +daemon +%- +DB %(notifyFd 3%) +always +sleep 600\n', r.out)
      for i = 1, 3 do
        assert.matches(('\nworker%d +daemon +db +when running'):format(i), r.out)
      end
      assert.matches('dynamic_check%.lua: valid, 4 entries %(4 daemons%) from one run of the '
        .. 'Daemons.dynamic function\n$', r.out)
      -- the setup chain fn runs is validated, not run (as for a plain script)
      assert.matches('note: the script builds a chain of its own while it is evaluated '
        .. '%(migrate%)', r.out)
      local g = R.run({ 'graph', F .. '/dynamic_check.lua', '1' })
      assert.equal(0, g.code, g.err)
      assert.matches('"db" %-> "worker1";', g.out)
      -- an error in fn fails the check at its line
      local bad = R.run({ 'check', F .. '/dynamic_check.lua', 'boom' })
      assert.equal(1, bad.code)
      assert.matches('dynamic_check%.lua:12: no workers configured', bad.err)
    end)

    it('passes extra arguments to the function form without starting anything', function()
      local r = R.run({ 'check', F .. '/setup.lua', 'hello' })
      assert.equal(0, r.code, r.err)
      assert.matches('echo%s+daemon%s+%-%s+Echo%s+.*echo arg=hello', r.out)
      assert.is_nil(r.out:find('arg=hello\n', 1, true)) -- the command did not run
    end)
  end)

  describe('graph', function()
    it('prints Graphviz dot with a shape per kind and edges from requirements', function()
      local r = R.run({ 'graph', F .. '/ok.lua' })
      assert.equal(0, r.code, r.err)
      assert.matches('^digraph orch {\n', r.out)
      assert.matches('"prep" %[shape=box', r.out)
      assert.matches('"web" %[shape=ellipse, label="web\\nWeb"%]', r.out)
      assert.matches('"probe" %[shape=hexagon', r.out)
      assert.matches('"prep" %-> "web";', r.out)
      assert.matches('"web" %-> "probe";', r.out)
      assert.matches('}\n$', r.out)
    end)

    it('prints a Mermaid flowchart with --format mermaid', function()
      local r = R.run({ 'graph', '--format', 'mermaid', F .. '/ok.lua' })
      assert.equal(0, r.code, r.err)
      local l = lines(r.out)
      assert.equal('flowchart LR', l[1])
      assert.equal('  n1["prep"]', l[2])
      assert.equal('  n2("web: Web")', l[3])
      assert.equal('  n3{{"probe: Probe"}}', l[4])
      assert.equal('  n1 --> n2', l[5])
      assert.equal('  n2 --> n3', l[6])
      local r2 = R.run({ 'graph', '--format=mermaid', F .. '/ok.lua' })
      assert.equal(r.out, r2.out)
    end)
  end)
end)

describe('orch.cli formatting', function()
  local cli = require 'orch.cli'

  it('quotes ids and labels in dot and mermaid', function()
    local entries = {
      { id = 'a"b', kind = 'daemon', requires = {}, display = 'say "hi"\\' },
      { id = 'c', kind = 'oneshot', requires = { 'a"b' } },
    }
    local dot = cli.format_graph(entries, 'dot')
    assert.truthy(dot:find('"a\\"b" [shape=ellipse, label="a\\"b\\nsay \\"hi\\"\\\\"];', 1, true))
    assert.truthy(dot:find('"a\\"b" -> "c";', 1, true))
    local mm = cli.format_graph(entries, 'mermaid')
    assert.truthy(mm:find('n1("a#quot;b: say #quot;hi#quot;\\")', 1, true))
    assert.truthy(mm:find('n2["c"]', 1, true))
    assert.truthy(mm:find('n1 --> n2', 1, true))
  end)

  it('shows the readiness keys an entry sets in READY (orch check)', function()
    local orch = require 'orch'
    local ok = function()
      return { result = 'success' }
    end
    local chain = orch.Daemons.of{}
      :addDaemon('db', { exec = { command = 'db' }, requires = {},
        ready = { display = 'DB', notify = true, watchdog = 300, fn = ok, restartAfter = 3 } })
      :addDaemon('s6', { exec = { command = 's6' }, requires = {},
        ready = { display = 'S6', notifyFd = 3, gracePeriod = 0, failureThreshold = 2 } })
      :addDaemon('log', { exec = { command = 'log' }, requires = {},
        ready = { display = false, logLine = '^up$', timeout = 100, successThreshold = 2 } })
      :addDaemon('web', { exec = { command = 'web' }, requires = {},
        ready = { display = 'Web', fn = ok, trigger = orch.trigger.cooldownTrigger(10) } })
      :addDaemon('plain', { exec = { command = 'plain' }, requires = {},
        ready = { display = 'Plain', fn = ok } })
    local t = cli.format_entries(chain:entries())
    assert.matches('\ndb +daemon +%- +DB %(fn, notify, watchdog 300 ms, restartAfter 3%) ', t)
    assert.matches('\ns6 +daemon +%- +S6 %(notifyFd 3, grace 0 ms, failureThreshold 2%) ', t)
    assert.matches('\nlog +daemon +%- +yes %(hidden%) %(logLine "%^up%$", timeout 100 ms, '
      .. 'successThreshold 2%) ', t)
    assert.matches('\nweb +daemon +%- +Web %(trigger%) ', t)
    assert.matches('\nplain +daemon +%- +Plain +always', t)
  end)

  it('shows the stop and reload signals and the limits beside the restart policy (RESTART)',
    function()
      local orch = require 'orch'
      local chain = orch.Daemons.of{}
        :addDaemon('a', { requires = {}, exec = { command = 'a', stopSignal = 'SIGINT',
          reloadSignal = 'HUP', reloadOnChange = 'signal',
          limits = { memory = '512M', cpu = 1.5, pids = 64, nofile = 1024, core = 0 } } })
        :addDaemon('b', { requires = {}, exec = { command = 'b', stopCommand = 'b stop',
          restart = 'on-failure', reloadSignal = 'SIGUSR1', limits = { memory = 1000 } } })
        :addOneshot('c', { requires = {}, exec = { command = 'c' } })
      local t = cli.format_entries(chain:entries())
      assert.matches('\na +daemon .- always, stop SIGINT, reload SIGHUP on change, limits '
        .. 'memory=512M cpu=1.5 pids=64 nofile=1024 core=0 +a\n', t)
      assert.matches('\nb +daemon .- on%-failure, stopCommand, reload SIGUSR1, limits '
        .. 'memory=1000 +b\n', t)
      assert.matches('\nc +oneshot .- on%-failure +c\n', t)
    end)

  it('marks a readiness check without display as hidden', function()
    local t = cli.format_entries({
      { id = 'x', kind = 'daemon', requires = {}, ready = true, exec = 'sleep 1' },
    })
    assert.matches('\nx%s+daemon%s+%-%s+yes %(hidden%)%s+%-%s+sleep 1\n$', t)
  end)
end)
