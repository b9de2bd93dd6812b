-- orch.cli.limits on a stub core: how far orch raises its descriptor limit, what children get,
-- and what it says when the system refuses. (The real thing: cli_limits_spec.)
local limits = require 'orch.cli.limits'

-- A core with these limits; `can_raise_hard`: setrlimit may raise the hard limit.
local function stub(soft, hard, ceiling, can_raise_hard, opts)
  opts = opts or {}
  local c = { nofile = { soft, hard }, calls = {} }
  function c.getrlimit(name)
    if name == 'nproc' then
      return opts.nproc or -1, opts.nproc or -1, 100000
    end
    return c.nofile[1], c.nofile[2], ceiling
  end
  function c.setrlimit(name, s, h, children)
    c.calls[#c.calls + 1] = { name, s, h, children }
    local cur = c.nofile[2]
    if h ~= -1 and cur ~= -1 and h > cur and not can_raise_hard then
      return nil, 'setrlimit: operation not permitted', 'EPERM'
    end
    c.nofile = { s, h }
    c.children = children
    return true
  end
  function c.getuid()
    return opts.uid or 0
  end
  return c
end

local function logger()
  local lines = {}
  return lines, function(msg, level)
    lines[#lines + 1] = (level or 'info') .. ': ' .. msg
  end
end

describe('orch.cli.limits', function()
  it('raises the soft limit to the hard one; children get the soft one orch started with',
    function()
      local c = stub(1024, 524288, 1048576, false)
      limits.raise(c)
      assert.same({ 524288, 524288 }, c.nofile)
      assert.equal(1024, c.children)
    end)

  it('an unlimited hard limit stops at the kernel ceiling and stays unlimited', function()
    local c = stub(1024, -1, 1048576, false)
    limits.raise(c)
    assert.same({ 1048576, -1 }, c.nofile)
  end)

  it('leaves a soft limit already at the hard one alone', function()
    local c = stub(4096, 4096, 1048576, false)
    limits.raise(c)
    assert.same({}, c.calls)
  end)

  it('raises the hard limit for a graph that needs it, where the system allows', function()
    local c = stub(1024, 1024, 1048576, true)
    local l = limits.raise(c)
    local lines, log = logger()
    assert.is_true(l:ensure(1000, false, log))
    assert.same({ 2064, 2064 }, c.nofile)
    assert.equal(1024, c.children)
    assert.same({ 'info: raised the descriptor limit from 1024 to 2064 for 1000 entries' }, lines)
  end)

  it('counts a third descriptor per entry with log files', function()
    assert.equal(3064, limits.fds_needed(1000, true))
    assert.equal(2064, limits.fds_needed(1000, false))
  end)

  it('says what the graph needs and what to raise when the system refuses', function()
    local c = stub(200, 200, 1048576, false)
    local l = limits.raise(c)
    local lines, log = logger()
    assert.is_true(l:ensure(100, false, log))
    assert.equal(1, #lines)
    assert.matches('^error: 100 entries need about 264 file descriptors %(2 per entry and 64 '
      .. 'for orch%), but the limit is 200 and raising it was refused: setrlimit: operation not '
      .. 'permitted: .*ulimit %-Hn', lines[1])
    assert.same({ 200, 200 }, c.nofile)
  end)

  it('says so when the need is above the kernel ceiling, without trying', function()
    local c = stub(4096, 4096, 5000, true)
    local l = limits.raise(c)
    local lines, log = logger()
    l:ensure(10000, false, log)
    assert.matches("above the kernel's ceiling fs.nr_open = 5000", lines[1])
    assert.same({}, c.calls)
  end)

  it('never lowers a hard limit above the need', function()
    local c = stub(1024, 1024, 1048576, false)
    local l = limits.raise(c)
    c.nofile = { 1024, 8192 } -- the hard limit went up after the start (prlimit)
    l:ensure(1000, false, function() end)
    assert.same({ 2064, 8192 }, c.nofile)
  end)

  it('warns, not as root, when the process limit leaves the graph no room', function()
    local c = stub(65536, 65536, 1048576, false, { uid = 1000, nproc = 100 })
    local l = limits.raise(c)
    local lines, log = logger()
    l:ensure(500, false, log)
    assert.matches('^warning: the process limit of this user is 100 and the graph alone has '
      .. '500 entries', lines[1])
    local root = stub(65536, 65536, 1048576, false, { uid = 0, nproc = 100 })
    local rlines, rlog = logger()
    limits.raise(root):ensure(500, false, rlog)
    assert.same({}, rlines)
  end)
end)
