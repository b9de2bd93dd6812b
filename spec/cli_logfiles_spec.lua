-- Log files (#integration): orch run --log-dir and exec.log, rotation by size without losing or
-- splitting a line under a flood, reopening after an external mv (SIGUSR2, orch logs --reopen),
-- a file that cannot be written reported once while the service runs on, and orch logs reading
-- its history from the files (-n, --since, --json).
local R = require 'fixtures.cli.runner'

local session = R.session()
local start, tmpdir = session.start, session.tmpdir

local function ctl(sock, ...)
  local args = { ... }
  args[#args + 1] = '--control'
  args[#args + 1] = sock
  return R.run(args, { timeout = 15 })
end

-- A main.lua in `dir` made of `body` (Lua source returning the chain).
local function script(dir, body)
  local path = dir .. '/main.lua'
  R.write_file(path, "local orch = require 'orch'\nlocal Daemons = orch.Daemons\n" .. body)
  return path
end

local function lines_of(path)
  local out = {}
  local f = io.open(path, 'r')
  if not f then
    return nil
  end
  for l in f:lines() do
    out[#out + 1] = l
  end
  f:close()
  return out
end

local function count(text, plain)
  local n, pos = 0, 1
  while true do
    local _, j = text:find(plain, pos, true)
    if not j then
      return n
    end
    n, pos = n + 1, j + 1
  end
end

-- `n` numbered lines of about 100 bytes through a `max`-byte file keeping `keep` rotations:
-- every line is in exactly one file, in order, no file is over `max`, none ends inside a line.
local function flood(n, max, keep, ms)
  local dir = tmpdir()
  local main = script(dir, ([[
return Daemons.of({}):addOneshot('flood', { requires = {}, exec = {
  command = { 'awk', 'BEGIN { for (i = 1; i <= %d; i++) printf "%%09d %%s\\n", i, "%s" }' },
  log = { maxSize = %d, keep = %d } } })
  :addDaemon('idle', { requires = { 'flood' }, exec = { command = { 'sleep', '1000' } } })
]]):format(n, string.rep('x', 90), max, keep))
  local p = start({ 'run', '--no-control', '--log-dir', dir .. '/logs', main })
  local last = ('%09d '):format(n)
  R.wait_until(function()
    local l = lines_of(dir .. '/logs/flood.log') or {}
    return l[#l] and l[#l]:find(last, 1, true)
  end, ms, 'the last line in flood.log')
  p:signal('TERM')
  assert.are.equal(0, p:wait())
  -- oldest file first: flood.log.<k> ... flood.log.1, flood.log
  local files = {}
  for i = keep, 1, -1 do
    local path = ('%s/logs/flood.log.%d'):format(dir, i)
    if io.open(path) then
      files[#files + 1] = path
    end
  end
  files[#files + 1] = dir .. '/logs/flood.log'
  assert.is_true(#files > 1, 'no rotation happened')
  local expect = 1
  for _, path in ipairs(files) do
    local f = assert(io.open(path, 'rb'))
    local data = f:read('a')
    f:close()
    assert.is_true(#data <= max, ('%s has %d bytes (max %d)'):format(path, #data, max))
    assert.are.equal('\n', data:sub(-1), path .. ' ends inside a line')
    for l in data:gmatch('([^\n]*)\n') do
      local num = l:match('^%d%d%d%d%-%d%d%-%d%dT[%d:.]+Z stdout (%d+) x+$')
      assert(num, ('malformed line in %s: %q'):format(path, l:sub(1, 200)))
      if tonumber(num) ~= expect then
        error(('%s: line %d where %d was expected'):format(path, tonumber(num), expect))
      end
      expect = expect + 1
    end
  end
  assert.are.equal(n + 1, expect)
  return dir
end

describe('log files #integration', function()
  after_each(session.cleanup)

  it('rotate a flood without losing, repeating or splitting a line (20 MB through 256 KiB)',
    function()
      local dir = flood(200000, 256 * 1024, 200, 120000)
      local orch_log = R.read_file(dir .. '/logs/orch.log')
      assert.truthy(orch_log:find('Z flood: started (pid', 1, true))
      assert.truthy(orch_log:find('Z SIGTERM: stopping', 1, true))
    end)

  it('rotate 200 MB through 1 MB keeping every line exactly once #soak', function()
    flood(2000000, 1024 * 1024, 400, 1200000)
  end)

  it('are reopened after an external mv, on SIGUSR2 and on orch logs --reopen', function()
    local dir = tmpdir()
    local main = script(dir, [[
return Daemons.of({}):addDaemon('tick', { requires = {}, exec = {
  command = 'i=0; while true; do i=$((i+1)); echo "tick $i"; sleep 0.02; done' } })
]])
    local sock = dir .. '/sock'
    local p = start({ 'run', '--control', sock, '--log-dir', dir .. '/logs', main })
    local log = dir .. '/logs/tick.log'
    local function has_lines(path, n)
      return R.wait_until(function()
        local l = lines_of(path)
        return l and #l >= n and l
      end, 10000, n .. ' lines in ' .. path)
    end
    has_lines(log, 5)
    assert.is_true(os.rename(log, dir .. '/moved1'))
    p:signal('USR2')
    has_lines(log, 5)
    assert.is_true(os.rename(log, dir .. '/moved2'))
    local r = ctl(sock, 'logs', '--reopen')
    assert.are.equal(0, r.code, r.err)
    assert.are.equal('log files reopened\n', r.out)
    has_lines(log, 5)
    p:signal('TERM')
    assert.are.equal(0, p:wait())
    -- Every tick exactly once across the three files, in order.
    local expect = 1
    for _, path in ipairs({ dir .. '/moved1', dir .. '/moved2', log }) do
      for _, l in ipairs(lines_of(path)) do
        local i = tonumber(l:match(' stdout tick (%d+)$'))
        assert.are.equal(expect, i, path)
        expect = expect + 1
      end
    end
    local orch_log = R.read_file(dir .. '/logs/orch.log')
    assert.are.equal(1, count(orch_log, 'SIGUSR2: reopening log files'))
    assert.are.equal(1, count(orch_log, 'orch logs --reopen: reopening log files'))
  end)

  it('that cannot be written are reported once per entry, and the service runs on', function()
    local dir = tmpdir()
    local main = script(dir, [[
return Daemons.of({})
  :addDaemon('full', { requires = {}, exec = { log = { file = '/dev/full' },
    command = 'i=0; while true; do i=$((i+1)); echo "full $i"; sleep 0.01; done' } })
  :addDaemon('nodir', { requires = {}, exec = { log = { file = 'no/such/dir/x.log' },
    command = 'i=0; while true; do i=$((i+1)); echo "nodir $i"; sleep 0.01; done' } })
  :addDaemon('fifo', { requires = {}, exec = { log = { file = 'fifo' },
    command = 'i=0; while true; do i=$((i+1)); echo "fifo $i"; sleep 0.01; done' } })
]])
    os.execute('mkdir ' .. dir .. '/logs && mkfifo ' .. dir .. '/logs/fifo')
    local sock = dir .. '/sock'
    local p = start({ 'run', '--control', sock, '--log-dir', dir .. '/logs', main })
    p:wait_for('full +| full 200\n', 20000)
    p:wait_for('nodir | nodir 200\n', 20000, nil, true)
    p:wait_for('fifo +| fifo 200\n', 20000)
    local out = p:out()
    assert.are.equal(1, count(out, 'full: log file: cannot write /dev/full: No space left on '
      .. 'device (output still goes to the main log)'), out)
    assert.are.equal(1, count(out, 'nodir: log file: cannot open ' .. dir
      .. '/logs/no/such/dir/x.log: No such file or directory'), out)
    assert.are.equal(1, count(out, 'fifo: log file: cannot open ' .. dir
      .. '/logs/fifo: a FIFO would block orch'), out)
    -- orch logs falls back to the lines kept in memory
    local r = ctl(sock, 'logs', 'nodir', '-n', '2')
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.out:match('^nodir | nodir %d+\nnodir | nodir %d+\n$'), r.out)
    -- orch.log says it too
    local orch_log = R.read_file(dir .. '/logs/orch.log')
    assert.are.equal(1, count(orch_log, 'full: log file: cannot write /dev/full'))
    p:signal('TERM')
    assert.are.equal(0, p:wait())
  end)

  it('are what orch logs reads: -n beyond the lines in memory, --since, --json', function()
    local dir = tmpdir()
    local main = script(dir, [[
return Daemons.of({})
  :addOneshot('burst', { requires = {}, exec = { log = { maxSize = '4K', keep = 50 },
    command = 'for i in $(seq 1 300); do echo "burst $i"; done; sleep 1.2; echo late' } })
  :addDaemon('idle', { requires = { 'burst' }, exec = { command = { 'sleep', '1000' } } })
]])
    local sock = dir .. '/sock'
    local p = start({ 'run', '--control', sock, '--log-lines', '5', '--log-dir', dir .. '/logs',
      main })
    p:wait_for('idle: started', 20000, nil, true)
    local r = ctl(sock, 'logs', 'burst', '-n', '250')
    assert.are.equal(0, r.code, r.err)
    local got = {}
    for l in r.out:gmatch('[^\n]+') do
      got[#got + 1] = l
    end
    assert.are.equal(250, #got)
    assert.are.equal('burst | burst 52', got[1])
    assert.are.equal('burst | late', got[250])
    -- --since the time of the last line: only it; all by default, -n bounds it
    local last = lines_of(dir .. '/logs/burst.log')
    local ts = last[#last]:match('^(%S+)')
    r = ctl(sock, 'logs', 'burst', '--since', ts, '--json')
    assert.are.equal(0, r.code, r.err)
    local recs = R.json_lines(r.out)
    assert.are.equal(1, #recs, r.out)
    assert.are.same({ 'burst', 'stdout', 'late', ts }, { recs[1].id, recs[1].stream,
      recs[1].line, recs[1].ts })
    r = ctl(sock, 'logs', 'burst', '--since', '1h')
    assert.are.equal(301, count(r.out, 'burst | '), r.out)
    r = ctl(sock, 'logs', 'burst', '--since', '1h', '-n', '3')
    assert.are.equal('burst | burst 299\nburst | burst 300\nburst | late\n', r.out)
    r = ctl(sock, 'logs', 'burst', '--since', 'yesterday')
    assert.are.equal(2, r.code)
    assert.truthy(r.err:find("--since takes a time", 1, true), r.err)
    p:signal('TERM')
    assert.are.equal(0, p:wait())
  end)

  it('need a directory for --log-dir', function()
    local dir = tmpdir()
    local main = script(dir, "return Daemons.of({})\n")
    R.write_file(dir .. '/file', '')
    local r = R.run({ 'run', '--log-dir', dir .. '/file', main })
    assert.are.equal(2, r.code)
    assert.truthy(r.err:find("--log-dir '" .. dir .. "/file' is not a directory", 1, true), r.err)
  end)
end)
