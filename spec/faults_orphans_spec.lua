-- Fault: processes that escape their process group, and orch itself killed.
-- A daemon double-forks a grandchild that calls setsid and ignores SIGTERM
-- (spec/fixtures/faults/double_fork.sh). After term() of its entry nothing of it is left while
-- orch keeps running, with every tracking mechanism (orch.track: cgroup v2, cgroup v1 pids, the
-- /proc scan), contained or not, and unprivileged. A SIGKILL of orch takes everything within 1 s.
-- Runs the real build/bin/orch (tagged #integration).
local F = require 'spec.support.faults'
local R = F.R

local SCRIPT = F.FIX .. '/double_fork.lua'

local session = R.session() -- what the specs start and make, cleaned up after each
local start = session.start

local function tmpdir()
  local d = session.tmpdir()
  os.execute('chmod 777 ' .. R.quote(d))
  return d
end

-- Start double_fork.lua; returns the orch handle, the dir, and the grandchild's host pid.
local function start_df(opts)
  local dir = tmpdir()
  local sleep = F.unique()
  local env = { FAULT_DIR = dir, FAULT_SLEEP = sleep, ORCH_TRACKING = opts.mode }
  local args = { 'run' }
  if opts.no_contain then
    args[#args + 1] = '--no-contain'
  end
  args[#args + 1] = SCRIPT
  local p = start(args, { env = env, prefix = opts.prefix })
  p:wait_for('df: starting %-> success', 10000)
  local gpid = R.wait_until(function()
    return F.find('sleep ' .. sleep)[1]
  end, 5000, 'the grandchild')
  -- it really left: a session and process group of its own, and its parent exited
  local procs_now = F.procs()
  local g = procs_now[gpid]
  assert.equal(gpid, g.sid)
  assert.equal(gpid, g.pgid)
  local daemon = F.find(F.FIX .. '/double_fork.sh', procs_now)[1]
    or F.find('sleep 100000', procs_now)[1]
  assert.is_not_nil(daemon, 'the daemon')
  assert.are_not.equal(procs_now[daemon].pgid, g.pgid)
  return p, dir, gpid, sleep
end

local function gone_within(pid, ms, what)
  R.wait_until(function()
    return not R.alive(pid)
  end, ms, what)
end

-- Reload without the entry: term() of `df` while orch and `other` keep running.
local function drop_df(p, dir)
  R.write_file(dir .. '/drop', '')
  p:signal('HUP')
  p:wait_for('reloaded: 1 entry', 10000)
end

describe('faults: escaped processes #integration', function()
  after_each(session.cleanup)

  if not F.is_root() then
    it('needs root (cgroups, PID namespaces, other users)', function()
      pending('not root')
    end)
    return
  end

  for _, mode in ipairs({ 'auto', 'cgroup2', 'cgroup1', 'proc' }) do
    local m = mode ~= 'auto' and mode or nil
    describe('tracking ' .. mode, function()
      it('term() of the entry leaves nothing of its setsid grandchild, orch keeps running',
        function()
          local p, dir, gpid, sleep = start_df({ mode = m })
          drop_df(p, dir)
          gone_within(gpid, 2000, 'the setsid grandchild that ignores SIGTERM')
          assert.same({}, F.find('sleep ' .. sleep))
          assert.is_false(p:exited())
          -- the new graph runs (a reload starts every entry from scratch)
          local other = R.wait_until(function()
            return F.find('sleep 100001')[1]
          end, 5000, 'the other entry of the new graph')
          assert.matches('df: stopping %(SIGTERM to pid %d+%)', p:out())
          assert.matches('df: stopped by SIGTERM', p:out())
          p:signal('TERM')
          assert.equal(0, p:wait(10000))
          assert.is_false(R.alive(other))
        end)

      it('an orderly shutdown without a PID namespace leaves nothing either', function()
        local p, _, gpid = start_df({ mode = m, no_contain = true })
        p:signal('TERM')
        assert.equal(0, p:wait(10000))
        -- nothing but tracking could have reached it: no namespace dies with orch here
        gone_within(gpid, 1000, 'the setsid grandchild')
        assert.matches('orch  | stopped\n$', p:out())
      end)
    end)
  end

  it('unprivileged (no namespace, no cgroup): says so, and the /proc scan still gets it',
    function()
      local prefix = 'setpriv --reuid=65534 --regid=65534 --clear-groups'
      local p, dir, gpid = start_df({ prefix = prefix })
      local err = p:err()
      assert.matches('orch: notice: not contained %(contain: new PID namespace: operation not '
        .. 'permitted%): a process that leaves its process group can outlive a SIGKILL of orch',
        err)
      assert.matches('orch: notice: no cgroup for process tracking %(cgroup2: mkdir [^;]+: '
        .. 'permission denied; cgroup1: mkdir [^)]+: permission denied%); using the /proc scan',
        err)
      drop_df(p, dir)
      gone_within(gpid, 2000, 'the setsid grandchild of an unprivileged orch')
      assert.is_false(p:exited())
      p:signal('TERM')
      assert.equal(0, p:wait(10000))
    end)

  for _, which in ipairs({ 'the relay (the pid users see)', 'the contained orch (PID 1)' }) do
    it('SIGKILL of ' .. which .. ': every process it started is gone within 1 s', function()
      local p, _, gpid = start_df({})
      local inner = F.inner_pid(p.pid)
      assert.are_not.equal(p.pid, inner, 'contained')
      local all = F.descendants(p.pid)
      assert.is_true(#all >= 4, 'relay > orch > other, df, grandchild')
      local target = which:find('relay') and p.pid or inner
      os.execute('kill -KILL ' .. target)
      local t0 = R.now()
      R.wait_until(function()
        for _, d in ipairs(all) do
          if R.alive(d.pid) then
            return false
          end
        end
        return true
      end, 1000, 'every descendant to be gone within 1 s')
      -- real clock: the kernel's PID-namespace teardown, which only real processes show
      assert.is_true(R.now() - t0 <= 1.0)
      assert.is_false(R.alive(gpid))
    end)
  end
  -- Without a PID namespace (--no-contain as root; any unprivileged user) PR_SET_PDEATHSIG
  -- reaches only orch's direct children. The watcher (orch-relay --watch, outside orch) kills
  -- the process groups orch made, its cgroup, and the processes carrying its tag once orch is
  -- gone: a background child that never left its group, and the setsid grandchild, die too.
  for _, case in ipairs({ { 'root, --no-contain', '--no-contain' },
    { 'unprivileged (setpriv to nobody)', nil,
      'setpriv --reuid=65534 --regid=65534 --clear-groups' } }) do
    it(('SIGKILL of an uncontained orch (%s): everything it started is gone within 1 s')
      :format(case[1]), function()
        local dir = tmpdir()
        local member, escaped = F.unique(), F.unique()
        local args = { 'run' }
        args[#args + 1] = case[2]
        args[#args + 1] = F.FIX .. '/groups.lua'
        local p = start(args, { prefix = case[3],
          env = { FAULT_DIR = dir, FAULT_SLEEP = member, FAULT_SLEEP2 = escaped } })
        p:wait_for('esc: starting %-> success', 10000)
        local mpid = R.wait_until(function()
          return F.find('sleep ' .. member)[1]
        end, 5000, 'the group member')
        local gpid = R.wait_until(function()
          return F.find('sleep ' .. escaped)[1]
        end, 5000, 'the setsid grandchild')
        local procs = F.procs()
        assert.equal(p.pid, procs[procs[mpid].ppid].ppid, 'a grandchild of orch')
        assert.are_not.equal(procs[gpid].pgid, procs[mpid].pgid)
        local all = F.descendants(p.pid, procs)
        assert.is_true(#all >= 4, 'grp > member, esc, grandchild')
        os.execute('kill -KILL ' .. p.pid)
        R.wait_until(function()
          for _, d in ipairs(all) do
            if R.alive(d.pid) then
              return false
            end
          end
          return true
        end, 1000, 'every descendant to be gone within 1 s')
        assert.is_false(R.alive(mpid))
        assert.is_false(R.alive(gpid))
      end)
  end
end)
