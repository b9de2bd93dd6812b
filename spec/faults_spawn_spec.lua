-- Fault: entries that cannot start (spec/fixtures/faults/spawn.lua): a missing binary (by path
-- and through PATH), a file that is not executable, a missing cwd, an unknown user, and
-- permission denied for the target user (a program it may not run, a cwd it may not enter).
-- Each reports the OS reason (log and status file), is retried with the growing backoff, and
-- orch keeps running its healthy entry. Runs the real build/bin/orch (tagged #integration).
local F = require 'spec.support.faults'
local R = F.R

local function ts_seconds(iso)
  local h, m, s = iso:match('T(%d+):(%d+):([%d.]+)Z$')
  return tonumber(h) * 3600 + tonumber(m) * 60 + tonumber(s)
end

describe('faults: spawn failures #integration', function()
  if not F.is_root() then
    it('needs root (another user)', function()
      pending('not root')
    end)
    return
  end

  it('each entry reports the OS reason, backs off, and orch survives', function()
    local dir = R.tmpdir()
    os.execute(('chmod 755 %s && mkdir -m 700 %s/private'):format(R.quote(dir), R.quote(dir)))
    R.write_file(dir .. '/not-exec.sh', '#!/bin/sh\nexec sleep 100006\n')
    R.write_file(dir .. '/secret.sh', '#!/bin/sh\nexec sleep 100006\n')
    os.execute(('chmod 644 %s/not-exec.sh; chmod 700 %s/secret.sh'):format(dir, dir))
    local status = dir .. '/status.json'
    local p = R.start({ 'run', '--log-format', 'json', '--status-file', status,
      F.FIX .. '/spawn.lua' }, { env = { FAULT_DIR = dir } })
    local ok, e = pcall(function()
      local want = {
        missing = "spawn '/nonexistent/orch-fault/daemon': no such file or directory",
        ['missing-path'] = "spawn 'orch-fault-no-such-command': no such file or directory",
        ['not-exec'] = ("spawn '%s/not-exec.sh': permission denied"):format(dir),
        ['no-cwd'] = "spawn 'sleep': cwd '/nonexistent/orch-fault': no such file or directory",
        ['no-user'] = "spawn 'sleep': unknown user 'orch-fault-nobody'",
        denied = ("spawn '%s/secret.sh': permission denied"):format(dir),
        ['denied-cwd'] = ("spawn 'sleep': cwd '%s/private': permission denied"):format(dir),
      }
      -- four attempts each: at once, then after 0, 1 and 2 s of backoff
      local events
      R.wait_until(function()
        events = {}
        for _, ev in ipairs(R.json_lines(p:out())) do
          if ev.event == 'spawn-error' then
            events[ev.id] = events[ev.id] or {}
            table.insert(events[ev.id], ev)
          end
        end
        for id in pairs(want) do
          if not events[id] or #events[id] < 4 then
            return false
          end
        end
        return true
      end, 10000, 'four attempts of every failing entry')
      for id, msg in pairs(want) do
        local evs = events[id]
        for _, ev in ipairs(evs) do
          assert.equal(msg, ev.message, id)
        end
        -- the backoff grows: 0, then 1 s, then 2 s between attempts. To the ms that is
        -- daemons_restart_spec ('spawn errors ...', virtual clock); the real binary is held to
        -- lower bounds only (a timer is never early; 0.1 s for the timestamps' rounding)
        local t = {}
        for i, ev in ipairs(evs) do
          t[i] = ts_seconds(ev.ts)
        end
        assert.is_true(t[3] - t[2] >= 0.9, id)
        assert.is_true(t[4] - t[3] >= 1.9, id)
      end
      assert.is_false(p:exited())
      local doc = F.status_file(status)
      for _, en in ipairs(doc.entries) do
        if want[en.id] then
          assert.equal('failure', en.result, en.id)
          assert.equal(('%s failed to start: %s'):format(en.id, want[en.id]), en.message)
          assert.equal(want[en.id], en.lastExit.error, en.id)
          assert.is_true(en.restarts >= 3, en.id)
        else
          assert.equal('ok', en.id)
          assert.equal('success', en.result)
        end
      end
      p:signal('TERM')
      assert.equal(0, p:wait(10000))
      assert.same({}, F.find('sleep 100005'))
      assert.same({}, F.find('sleep 100006'))
    end)
    p:cleanup()
    R.cleanup(dir)
    if not ok then
      error(e, 0)
    end
  end)
end)
