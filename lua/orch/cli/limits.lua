--- orch's own descriptor and process limits (RLIMIT_NOFILE, RLIMIT_NPROC), raised as far as the
-- graph needs. Every running entry holds two descriptors in orch (the read ends of its stdout
-- and stderr pipes, one more with a log file), so 10,000 entries need about 20,000 where most
-- systems start a process with a soft limit of 1024.
--
-- At start (`raise`): the soft descriptor limit goes up to the hard one, as systemd and the Go
-- runtime do (libuv polls with epoll, so nothing in orch breaks above 1024), and every child gets
-- back the soft limit orch started with (a program that still uses select() breaks above 1024)
-- unless its `exec.limits.nofile` says otherwise. Once the entries are known (`ensure`): when the
-- graph needs more than the hard limit, orch raises that too (root with CAP_SYS_RESOURCE, up to
-- fs.nr_open); when the system refuses, an error in the log says how many descriptors the graph
-- needs and what to raise, before the first spawn fails, and orch starts anyway: as for any
-- spawn failure, entries beyond the limit fail with EMFILE, are retried with the backoff, and
-- come up once the limit is lifted (README "Failures are reported, retried, and survived").
-- @module orch.cli.limits
local M = {}

--- Descriptors orch holds per running entry, with and without a log file per entry.
M.FDS_PER_ENTRY = 2
--- Descriptors kept for orch itself: the loop, the control socket and its clients, probes.
M.FDS_RESERVE = 64

local function unlimited(v)
  return v == -1
end

--- Raise orch's soft descriptor limit to the hard one. Returns the limits object for `ensure`.
function M.raise(core)
  local self = { core = core }
  local soft, hard, ceiling = core.getrlimit('nofile')
  self.child_soft = soft and not unlimited(soft) and soft or 0
  -- an unlimited hard limit still stops at the kernel's ceiling (fs.nr_open)
  local to = unlimited(hard) and ceiling or hard
  if soft and not unlimited(soft) and not unlimited(to) and soft < to then
    core.setrlimit('nofile', to, hard, soft)
  end
  return setmetatable(self, { __index = M })
end

--- How many descriptors a graph of `n` entries needs in orch.
function M.fds_needed(n, log_files)
  return n * (M.FDS_PER_ENTRY + (log_files and 1 or 0)) + M.FDS_RESERVE
end

local HOW = 'raise the hard limit of the user or service that starts orch (`ulimit -Hn`, '
  .. 'LimitNOFILE= in a systemd unit, `docker run --ulimit nofile=N:N`)'

--- Make room for `n` entries. `log(msg, level)` reports a raise of the hard limit, or, when the
-- system refuses it, an error that says what to raise: orch still starts (entries that find no
-- descriptor fail with EMFILE, are retried with the backoff, and come up once the limit is
-- lifted, as `prlimit --pid` can do on the running orch).
function M:ensure(n, log_files, log)
  local core = self.core
  local need = M.fds_needed(n, log_files)
  local soft, hard, ceiling = core.getrlimit('nofile')
  if not soft or unlimited(soft) or soft >= need then
    return self:ensure_procs(n, log)
  end
  local why
  if not unlimited(ceiling) and need > ceiling then
    why = ('above the kernel\'s ceiling fs.nr_open = %d'):format(ceiling)
  else
    -- never lower a hard limit that is above the need (the soft one may have stayed low)
    local ok, serr = core.setrlimit('nofile', need,
      (unlimited(hard) or hard > need) and hard or need, self.child_soft)
    if ok then
      log(('raised the descriptor limit from %d to %d for %d entries'):format(hard, need, n))
      return self:ensure_procs(n, log)
    end
    why = ('raising it was refused: %s'):format(tostring(serr))
  end
  log(('%d entries need about %d file descriptors (%d per entry and %d for orch), but the '
    .. 'limit is %d and %s: entries beyond it fail with "too many open files" until it is '
    .. 'raised; %s'):format(n, need, M.FDS_PER_ENTRY + (log_files and 1 or 0), M.FDS_RESERVE,
      soft, why, HOW), 'error')
  return self:ensure_procs(n, log)
end

--- Processes: RLIMIT_NPROC counts every process of orch's user, not only the graph's (and binds
-- no root), so a per-user cap the administrator set is not orch's to raise: warn when the soft
-- limit leaves the graph no room. Spawns beyond it fail with EAGAIN, are retried with the
-- backoff, and recover once the limit is lifted.
function M:ensure_procs(n, log)
  local core = self.core
  local soft = core.getrlimit('nproc')
  if soft and not unlimited(soft) and core.getuid() ~= 0 and soft < n + M.FDS_RESERVE then
    log(('the process limit of this user is %d and the graph alone has %d entries: spawns may '
      .. 'fail with EAGAIN (raise `ulimit -u`, LimitNPROC=)'):format(soft, n), 'warning')
  end
  return true
end

return M
