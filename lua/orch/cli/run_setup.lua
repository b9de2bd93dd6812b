--- How `orch run` sets up the process it runs in (`prepare`): containment in a PID namespace,
-- the watcher of an uncontained orch, process tracking, and the `--log-dir` directory.
-- @module orch.cli.run_setup
local core = require 'orch.core'
local track = require 'orch.runtime.track'
local cli_args = require 'orch.cli.args'
local err, usage_error = cli_args.err, cli_args.usage_error
local message_of = require('orch.cli.evaluate').message_of

local M = {}

--- Containment: orch becomes PID 1 of a PID namespace of its own (core.contain), so that when it
-- dies, even by SIGKILL, the kernel kills everything it started, grandchildren that left their
-- process group included. Skipped when orch already is PID 1 (a container), under systemd
-- (NOTIFY_SOCKET: the unit's cgroup already contains the service, and notifications must come
-- from the main pid), and on request. Without privileges it says so and goes on uncontained.
-- Returns whether orch is contained, and the relay's pid.
function M.contain(opts)
  if opts['no-contain'] or os.getenv('ORCH_CONTAIN') == '0' or os.getenv('NOTIFY_SOCKET')
    or core.getpid() == 1 or not core.contain then
    return false
  end
  -- arg[-2] is orch-relay beside the binary (main.c): the relay execs it, not a copy of orch
  local relay, msg = core.contain(arg and arg[-2])
  if relay then
    return true, relay
  end
  err(('orch: notice: not contained (%s): a process that leaves its process group can '
    .. 'outlive a SIGKILL of orch\n'):format(tostring(msg)))
  return false
end

--- Uncontained (and not PID 1, whose death ends its namespace), PR_SET_PDEATHSIG reaches only
-- orch's direct children: a watcher outside orch (core.watch, orch-relay --watch) kills the
-- process groups and the cgroups orch made once orch is gone, even by SIGKILL. Started before
-- orch becomes a subreaper, so that it is not orch's child.
function M.watch()
  if core.getpid() == 1 or not core.watch then
    return
  end
  local ok, msg = core.watch(arg and arg[-2])
  if not ok then
    err(('orch: notice: no watcher (%s): the process groups orch starts can outlive a '
      .. 'SIGKILL of orch\n'):format(tostring(msg)))
  end
end

--- Process tracking (orch.track): a cgroup per incarnation when the kernel allows it, else a
-- /proc scan; says so on stderr when it had to fall back. ORCH_TRACKING forces a mechanism.
function M.setup_tracking(orch_pid)
  local mode = os.getenv('ORCH_TRACKING')
  local ok, tracker = pcall(track.setup, { name = 'orch-' .. orch_pid(), mode = mode })
  if not ok then
    err(('orch: warning: ORCH_TRACKING: %s; using the default\n'):format(message_of(tracker)))
    tracker = track.setup({ name = 'orch-' .. orch_pid() })
  end
  if tracker.mode == 'proc' and #tracker.refused > 0 then
    local why = {}
    for i, r in ipairs(tracker.refused) do
      why[i] = ('%s: %s'):format(r.mode, r.reason)
    end
    err(('orch: notice: no cgroup for process tracking (%s); using the /proc scan: a process '
      .. 'that double-forks and execs with a new environment before term() can escape it\n')
      :format(table.concat(why, '; ')))
  end
  return tracker
end

--- The directory of `--log-dir` (without trailing slashes), made when missing (one level).
-- A usage error when it is empty or not a directory; one that cannot be made or written is
-- reported per entry at run time, and orch runs on.
function M.log_dir(dir)
  if dir == '' or dir == true then
    usage_error('run', '--log-dir needs a directory')
  end
  dir = dir:gsub('(.)/+$', '%1')
  local st = core.lstat and core.lstat(dir)
  if st and st.type ~= 'directory' and st.type ~= 'link' then
    usage_error('run', "--log-dir '%s' is not a directory", dir)
  elseif not st and core.mkdir then
    local ok, merr = core.mkdir(dir, tonumber('755', 8))
    if not ok then
      err(('orch: warning: --log-dir: %s\n'):format(tostring(merr)))
    end
  end
  return dir
end

--- Set the process up before the run: containment (or the watcher of an uncontained orch), the
-- subreaper, process tracking, and what the watcher kills besides the process groups. Returns
-- the relay's pid (nil when not contained) and the tracker.
function M.prepare(opts)
  local contained, relay = M.contain(opts)
  if not contained then
    M.watch()
  end
  if core.set_subreaper then
    local ok, serr = core.set_subreaper()
    if not ok and core.getpid() == 1 then
      err(('orch: warning: %s\n'):format(tostring(serr)))
    end
  end
  local tracker = M.setup_tracking(function()
    return relay or core.getpid() -- the pid users see for orch
  end)
  -- What the watcher (if any) kills besides the process groups: orch's cgroup, and the
  -- processes tagged for the /proc scan (which the tracker may fall back to later).
  if core.watch_cgroup and not relay and tracker.mode ~= 'off' then
    if tracker.base then
      core.watch_cgroup(tracker.base, tracker.mode == 'cgroup1')
    end
    core.watch_tag(track.ENV .. '=' .. tracker.name .. '.')
  end
  return relay, tracker
end

return M
