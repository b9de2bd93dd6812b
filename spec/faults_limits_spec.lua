-- Fault: resource exhaustion. orch out of descriptors with 100 daemons; orch unable to fork
-- (RLIMIT_NPROC for an unprivileged orch, the pids cgroup's pids.max for a root one). Each entry
-- that cannot start says why, backs off and is retried; orch keeps running; once the limit is
-- lifted (prlimit on the running orch, pids.max raised) every entry comes up.
-- The daemons are those of chaos.lua: ready once the pid they announced is alive.
-- Runs the real build/bin/orch (tagged #integration).
local F = require 'spec.support.faults'
local R = F.R

local SCRIPT = F.FIX .. '/chaos.lua'
local AS_NOBODY = 'setpriv --reuid=65534 --regid=65534 --clear-groups'

-- The failures in the log: id -> count, for lines "<id>: failed to start: <pattern>".
local function failures(out, pattern)
  local by_id, n = {}, 0
  for id, msg in out:gmatch('orch +| (d%d+): failed to start: ([^\n]*)') do
    if msg:find(pattern, 1, true) then
      by_id[id] = (by_id[id] or 0) + 1
      n = n + 1
    end
  end
  return by_id, n
end

local function count_keys(t)
  local n = 0
  for _ in pairs(t) do
    n = n + 1
  end
  return n
end

-- Run SCRIPT with `n` daemons under `prefix`; wait for spawn failures matching `pattern` (and a
-- retry of at least one entry), check orch still runs, `lift(p)`, wait until all are ready.
local function exhaust(opts)
  local dir = R.tmpdir()
  -- Sticky: the unprivileged daemons write here, and orch refuses a status file in a directory
  -- others can write into without it.
  os.execute('chmod 1777 ' .. R.quote(dir))
  local status = dir .. '/status.json'
  local args = { 'run', '--status-file', status }
  for _, a in ipairs(opts.args or {}) do
    args[#args + 1] = a
  end
  args[#args + 1] = SCRIPT
  local p = R.start(args, { env = { FAULT_DIR = dir, FAULT_N = tostring(opts.n) },
    prefix = opts.prefix })
  F.with_orch(p, dir, 'sleep 100003', function()
    if opts.exhaust then
      opts.exhaust(p, status)
    end
    local by_id
    R.wait_until(function()
      local n
      by_id, n = failures(p:out(), opts.pattern)
      for _, c in pairs(by_id) do
        if c >= 3 then -- failed, retried after the backoff, failed again
          return n > 0
        end
      end
      return false
    end, 15000, 'failures and retries: ' .. opts.pattern)
    assert.is_false(p:exited(), 'orch keeps running')
    local failed = count_keys(by_id)
    assert.is_true(failed >= opts.min_failed, ('only %d entries failed'):format(failed))
    local t0 = R.now()
    opts.lift(p)
    F.wait_ready(status, opts.n, 20000, 'every entry up once the limit is lifted')
    io.stderr:write(('\n[%s] %d of %d entries failed to start (%s); all %d ready %.1f s after '
      .. 'the limit was lifted\n'):format(opts.name, failed, opts.n, opts.pattern, opts.n,
      R.now() - t0))
  end)
end

describe('faults: resource exhaustion #integration', function()
  if not F.is_root() then
    it('needs root (prlimit on another process, setpriv, cgroups)', function()
      pending('not root')
    end)
    return
  end

  it('descriptors run out (soft limit 64 with 100 daemons): EMFILE per entry, backoff, recovery',
    function()
      exhaust({
        name = 'nofile 64',
        n = 100,
        -- orch raises its soft limit to the hard one at start (orch.cli.limits), so the soft
        -- limit is lowered once every daemon runs, on the running orch, and every daemon is
        -- killed: their restarts need new pipes. The hard limit stays, so that the soft one can
        -- be raised again without CAP_SYS_RESOURCE.
        exhaust = function(p, status)
          F.wait_ready(status, 100, 30000, 'every entry up before the limit is lowered')
          local inner = F.inner_pid(p.pid)
          assert(os.execute(('prlimit --pid %d --nofile=64:'):format(inner)))
          for _, pid in ipairs(F.find('sleep 100003')) do
            os.execute('kill -KILL ' .. pid)
          end
        end,
        pattern = 'too many open files',
        min_failed = 30,
        lift = function(p)
          local inner = F.inner_pid(p.pid)
          assert(os.execute(('prlimit --pid %d --nofile=4096:'):format(inner)))
        end,
      })
    end)

  it('RLIMIT_NPROC (ulimit -u) for an unprivileged orch: fork fails, backoff, recovery',
    function()
      -- root ignores RLIMIT_NPROC: run orch as nobody; it may own 6 processes (itself included)
      local owned = tonumber((R.capture('ps -u 65534 --no-headers | wc -l'):match('%d+')))
      local hard = R.capture('prlimit --nproc --output HARD --noheadings'):match('%S+')
      exhaust({
        name = 'nproc',
        n = 10,
        -- the hard limit stays as it is (raising it needs CAP_SYS_RESOURCE)
        prefix = ('prlimit --nproc=%d:%s %s'):format(owned + 6, hard, AS_NOBODY),
        args = { '--no-contain' },
        pattern = 'resource temporarily unavailable',
        min_failed = 3,
        lift = function(p)
          -- as nobody: another user's limits need CAP_SYS_RESOURCE
          assert(os.execute(('%s prlimit --pid %d --nproc=%s'):format(AS_NOBODY, p.pid, hard)))
        end,
      })
    end)

  it('pids.max of the pids cgroup orch runs in: fork fails, backoff, recovery', function()
    local parent = '/sys/fs/cgroup/pids'
    if not F.exists(parent .. '/cgroup.procs') then
      pending('no cgroup v1 pids hierarchy here')
      return
    end
    local cg = ('%s/orch-fault-%d'):format(parent, math.random(1, 1e9))
    assert(os.execute('mkdir ' .. cg))
    R.write_file(cg .. '/pids.max', '8')
    local ok, e = pcall(exhaust, {
      name = 'pids.max 8',
      n = 10,
      prefix = ("sh -c 'echo $$ >%s/cgroup.procs && exec \"$@\"' sh"):format(cg),
      pattern = 'resource temporarily unavailable',
      min_failed = 3,
      lift = function()
        R.write_file(cg .. '/pids.max', 'max')
      end,
    })
    R.wait_until(function()
      return os.execute('rmdir ' .. cg .. ' 2>/dev/null')
    end, 5000, 'the test cgroup to empty')
    if not ok then
      error(e, 0)
    end
  end)
end)
