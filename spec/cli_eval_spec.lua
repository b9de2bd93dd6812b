-- main.lua evaluated as a task (issue 13 "main.lua may wait", issue 11 items 4 and 11): the
-- script may run a setup chain with runUntilSuccess before it returns its main chain; what it
-- builds is stopped by orch; a busy script is stopped at its deadline (at start: exit 1; on a
-- reload: the old graph keeps running); os.exit in script code is an orderly stop with its
-- status; `orch check` never starts a process. Runs the real build/bin/orch (#integration).
local R = require 'spec.fixtures.cli.runner'

local S = R.session()

-- uncontained, so that the pids the services write are the host's
local function env(t)
  t = t or {}
  t.ORCH_CONTAIN = '0'
  return t
end

local function script(dir, name, text)
  local path = dir .. '/' .. name
  R.write_file(path, text)
  return path
end

local function pid_in(path)
  return tonumber(R.read_file(path) or '')
end

describe('main.lua as a task #integration', function()
  local dir
  before_each(function()
    dir = S.tmpdir()
  end)
  after_each(function()
    S.cleanup()
  end)

  -- a setup chain run to success, then the main chain (its daemon prints what setup wrote)
  local SETUP = [[
local orch = require 'orch'
local dir = os.getenv('EVAL_DIR')
orch.Daemons.of{}
  :addOneshot('migrate', { exec = { command = { 'sh', '-c', 'echo migrated > ' .. dir .. '/m' } },
    requires = {} })
  :runUntilSuccess(10000)
local f = assert(io.open(dir .. '/m'))
local what = f:read('l')
f:close()
return orch.Daemons.of{}
  :addDaemon('web', { exec = { command = { 'sh', '-c', 'echo web after ' .. what
    .. '; echo $$ > ' .. dir .. '/web.pid; exec sleep 1000' } }, requires = {} })
]]

  it('runs a setup chain with runUntilSuccess, then its main chain (orch run)', function()
    local path = script(dir, 'main.lua', SETUP)
    local p = S.start({ 'run', '--no-control', path }, { env = env({ EVAL_DIR = dir }) })
    p:wait_for('web after migrated', 10000)
    local out = p:out()
    assert.matches('migrate: exited with code 0', out)
    local web = pid_in(dir .. '/web.pid')
    assert.is_true(R.alive(web))
    p:signal('TERM')
    assert.equal(0, p:wait(10000))
    assert.is_false(R.alive(web))
  end)

  it('orch check never starts a process: a setup chain is validated, not run, and said so',
    function()
      -- (a script that reads what its setup chain wrote fails under check: nothing ran)
      local path = script(dir, 'main.lua', (SETUP:gsub("local f = assert%(io.open%(dir .. '/m'%)%)"
        .. "\nlocal what = f:read%('l'%)\nf:close%(%)\n", "local what = 'checked'\n")))
      assert.not_matches('io.open', path and R.read_file(path))
      local r = R.run({ 'check', path }, { env = env({ EVAL_DIR = dir }) })
      assert.equal(0, r.code, r.err)
      assert.matches('note: the script builds a chain of its own while it is evaluated '
        .. '%(migrate%); orch check validated it and did not run it', r.out)
      assert.matches('web', r.out)
      assert.matches('valid, 1 entry', r.out)
      assert.is_nil(R.read_file(dir .. '/m'), 'migrate ran')
    end)

  it('orch check reports an invalid setup chain at its line', function()
    local path = script(dir, 'main.lua', [[
local orch = require 'orch'
orch.Daemons.of{}
  :addOneshot('migrate', { exec = { command = { 'true' } }, requires = { 'nope' } })
  :runUntilSuccess(1000)
return orch.Daemons.of{}
]])
    local r = R.run({ 'check', path })
    assert.equal(1, r.code)
    assert.matches("main.lua:3: .*requires 'nope'", r.err)
  end)

  it('a chain the script builds and leaves running is stopped when orch stops', function()
    local path = script(dir, 'main.lua', [[
local orch = require 'orch'
local dir = os.getenv('EVAL_DIR')
orch.Daemons.of{}:addDaemon('side', { exec = { command = { 'sh', '-c',
  'echo $$ > ' .. dir .. '/side.pid; exec sleep 1000' } }, requires = {} }):build()
orch.sleep(50)
return orch.Daemons.of{}:addDaemon('main', { exec = { command = { 'sleep', '1000' } },
  requires = {} })
]])
    local p = S.start({ 'run', '--no-control', path }, { env = env({ EVAL_DIR = dir }) })
    p:wait_for('main: started', 10000)
    local side = pid_in(dir .. '/side.pid')
    assert.is_true(side and R.alive(side))
    p:signal('TERM')
    assert.equal(0, p:wait(10000))
    assert.is_false(R.alive(side))
  end)

  it('SIGTERM while the script waits: what it built is stopped, exit 0', function()
    local path = script(dir, 'main.lua', [[
local orch = require 'orch'
local dir = os.getenv('EVAL_DIR')
orch.Daemons.of{}:addDaemon('setup', { exec = { command = { 'sh', '-c',
  'echo $$ > ' .. dir .. '/setup.pid; exec sleep 1000' } }, requires = {},
  ready = { display = false, fn = function() return { result = 'loading' } end } })
  :runUntilSuccess()
return orch.Daemons.of{}
]])
    local p = S.start({ 'run', '--no-control', path }, { env = env({ EVAL_DIR = dir }) })
    p:wait_for('setup: started', 10000)
    local setup = R.wait_until(function()
      return pid_in(dir .. '/setup.pid')
    end, 5000, 'setup pid')
    p:signal('TERM')
    assert.equal(0, p:wait(10000))
    assert.is_false(R.alive(setup))
    assert.matches('setup: stopped by SIGTERM', p:out())
  end)

  it('an error after a yield gives the script line, exit 1, nothing left running', function()
    local path = script(dir, 'main.lua', [[
local orch = require 'orch'
local dir = os.getenv('EVAL_DIR')
orch.Daemons.of{}:addDaemon('side', { exec = { command = { 'sh', '-c',
  'echo $$ > ' .. dir .. '/side.pid; exec sleep 1000' } }, requires = {} }):build()
orch.sleep(300)
error('config service said no')
]])
    local r = R.run({ 'run', '--no-control', path }, { env = env({ EVAL_DIR = dir }),
      timeout = 15 })
    assert.equal(1, r.code, r.err)
    assert.matches('main.lua:6: config service said no', r.err)
    local side = pid_in(dir .. '/side.pid')
    assert.is_true(side ~= nil)
    assert.is_false(R.alive(side))
  end)

  it('an add* validation error after a yield still points at its line', function()
    local path = script(dir, 'main.lua', [[
local orch = require 'orch'
orch.sleep(10)
return orch.Daemons.of{}
  :addDaemon('a', { exec = { command = { 'true' } }, requires = {} })
  :addDaemon('b', {
    exec = { command = { 'true' }, sigterm_timeout = 5 },
    requires = {} })
]])
    for _, cmd in ipairs({ 'check', 'run' }) do
      local args = cmd == 'run' and { 'run', '--no-control', path } or { 'check', path }
      local r = R.run(args, { timeout = 15 })
      assert.equal(1, r.code, r.err)
      assert.matches("main.lua:6: Daemons: entry 'b'", r.err)
    end
  end)

  it('a script that busy-loops at start is stopped at its deadline: exit 1', function()
    local path = script(dir, 'main.lua', [[
local orch = require 'orch'
local n = 0
while true do
  n = n + 1
end
]])
    local t0 = R.now()
    local r = R.run({ 'run', '--no-control', path }, { env = { ORCH_EVAL_DEADLINE = '300' },
      timeout = 15 })
    assert.equal(1, r.code, r.err)
    assert.matches('main.lua:%d: ran for more than 300 ms without yielding', r.err)
    assert.is_true(R.now() - t0 < 5)
  end)

  it('a reload that busy-loops is abandoned; the old graph keeps running', function()
    local path = script(dir, 'main.lua', [[
local orch = require 'orch'
local dir = os.getenv('EVAL_DIR')
local f = io.open(dir .. '/busy')
if f then
  f:close()
  while true do
  end
end
return orch.Daemons.of{}:addDaemon('a', { exec = { command = { 'sh', '-c',
  'echo $$ > ' .. dir .. '/a.pid; exec sleep 1000' } }, requires = {} })
]])
    local p = S.start({ 'run', '--no-control', path },
      { env = env({ EVAL_DIR = dir, ORCH_EVAL_DEADLINE = '300' }) })
    p:wait_for('a: started', 10000)
    local a = R.wait_until(function()
      return pid_in(dir .. '/a.pid')
    end, 5000, 'a pid')
    R.write_file(dir .. '/busy', '')
    p:signal('HUP')
    p:wait_for('reload failed, the current graph keeps running', 10000)
    assert.matches('ran for more than 300 ms without yielding', p:out())
    assert.is_true(R.alive(a))
    p:signal('TERM')
    assert.equal(0, p:wait(10000))
    assert.is_false(R.alive(a))
  end)

  it('os.exit(3) in ready.fn: an orderly stop, exit status 3, logged', function()
    local path = script(dir, 'main.lua', [[
local orch = require 'orch'
return orch.Daemons.of{}:addDaemon('a', { exec = { command = { 'sleep', '1000' } },
  requires = {}, ready = { display = 'A', fn = function()
    orch.sleep(100)
    os.exit(3)
  end } })
]])
    local r = R.run({ 'run', '--no-control', path }, { timeout = 15 })
    assert.equal(3, r.code, r.out .. r.err)
    assert.matches('os.exit%(3%) called at [^\n]*main.lua:5: stopping', r.out)
    assert.matches('a: stopped by SIGTERM', r.out)
  end)

  it('os.exit(4) at top level: exit status 4, nothing started', function()
    local path = script(dir, 'main.lua', [[
local orch = require 'orch'
os.exit(4)
return orch.Daemons.of{}
]])
    local r = R.run({ 'run', '--no-control', path }, { timeout = 15 })
    assert.equal(4, r.code, r.out .. r.err)
    assert.matches('os.exit%(4%) called at [^\n]*main.lua:2', r.out)
  end)
end)
