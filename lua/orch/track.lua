--- Process tracking: every process an entry's incarnation started, not only its process group.
-- A daemon that double-forks a grandchild which calls `setsid` leaves the process group orch
-- signals; tracking finds it anyway, so that `term()` leaves nothing behind. Mechanisms, tried in
-- this order by `setup` (the first the kernel allows wins; `ORCH_TRACKING` forces one):
--
-- * `cgroup2`: a cgroup v2 directory per incarnation under orch's own cgroup
--   (`<orch cgroup>/orch-<pid>/<n>-<id>`); the child joins it before exec; stopping uses
--   `cgroup.kill`, which reaches every member at once, forks in flight included.
-- * `cgroup1`: the same in the cgroup v1 `pids` hierarchy; stopping sets `pids.max` to 0 (nothing
--   new can fork) and SIGKILLs every member.
-- * `proc`: no cgroup: every child carries `ORCH_INVOCATION_ID=<orch>.<n>` in its environment;
--   stopping scans /proc for processes that carry it, the descendants of the leader through the
--   ppid chain, and processes found before (pid + start time). A process that double-forks
--   before `term()` *and* execs with a new environment escapes this one (the other two catch
--   it); orch still reaps it as a subreaper, and kills it with the namespace when contained.
-- * `off`: the process group only (library use without `orch run`).
--
-- Every process of an incarnation gets the SIGTERM of `term()` (the group at once, the others
-- one by one), and whatever is left when the leader exits is SIGKILLed by the core (process.c);
-- `release` then waits until nothing is left and removes the cgroup.
-- @module orch.track
local core = require 'orch.core'
local sched = require 'orch.sched'

local M = {}

--- The environment variable naming the incarnation (set in every entry's processes).
M.ENV = 'ORCH_INVOCATION_ID'

--- How long `release` waits for the tracked processes to be gone (ms).
M.RELEASE_MS = 3000

--- The mechanisms, in the order `setup` tries them.
M.MODES = { 'cgroup2', 'cgroup1', 'proc' }

-- Error codes meaning "the kernel (or its configuration) does not allow it": fall back.
local REFUSED = {
  EACCES = true, EPERM = true, EROFS = true, ENOENT = true, ENOTDIR = true, EOPNOTSUPP = true,
  ENOTSUP = true, EBUSY = true, EINVAL = true, ENODEV = true, ENOSYS = true, ENOSPC = true,
}
M.REFUSED = REFUSED

local current

local Tracker = {}
Tracker.__index = Tracker

-- Whether a host pid exists (orch may be PID 1 of a namespace of its own).
local function alive(pid)
  if core.host_alive then
    return core.host_alive(pid)
  end
  local ok, _, code = core.kill(pid, 0)
  return ok or code == 'EPERM'
end

-- Remove `dir` and its (empty) sub-cgroups; true when it is gone.
local function remove_tree(dir)
  for _, name in ipairs(core.cgroup_subdirs(dir) or {}) do
    core.cgroup_rmdir(dir .. '/' .. name)
  end
  return core.cgroup_rmdir(dir) ~= nil
end

-- Remove the empty leftovers of orch instances that died without cleaning up (SIGKILL).
local function remove_stale(parent, own)
  for _, name in ipairs(core.cgroup_subdirs(parent) or {}) do
    local pid = tonumber(name:match('^orch%-(%d+)$'))
    if pid and name ~= own and not alive(pid) then
      remove_tree(parent .. '/' .. name)
    end
  end
end

-- Try a cgroup mechanism: the base directory, or nil and why not.
local function try_cgroup(mode, name)
  local parent, err = core.cgroup_find(mode == 'cgroup2' and 'cgroup2' or 'pids')
  if not parent then
    return nil, err
  end
  remove_stale(parent, name)
  local base = parent .. '/' .. name
  local ok, merr, code = core.cgroup_mkdir(base)
  if not ok and code == 'EEXIST' then -- ours from an earlier run with the same pid: reuse
    remove_tree(base)
    ok, merr, code = core.cgroup_mkdir(base)
  end
  if not ok then
    return nil, merr, code
  end
  return base
end

--- Set up tracking for this orch (`orch run` calls it once).
-- `opts`: `name` (unique on the host, e.g. `orch-<pid>`), `mode` (force one of `cgroup2`,
-- `cgroup1`, `proc`, `off`; nil tries them in order), `log(msg, level)` (later notices).
-- @treturn Tracker with `mode`, `base` and `refused` (`{mode, reason}` of each mechanism
-- that was not allowed, in order)
function M.setup(opts)
  opts = opts or {}
  local name = opts.name or ('orch-' .. core.getpid())
  local self = setmetatable({ name = name, seq = 0, refused = {}, pending = {}, log = opts.log },
    Tracker)
  local modes = M.MODES
  if opts.mode and opts.mode ~= '' then
    if opts.mode ~= 'off' and opts.mode ~= 'proc' and opts.mode ~= 'cgroup2'
      and opts.mode ~= 'cgroup1' then
      error(("unknown tracking mode '%s' (cgroup2, cgroup1, proc or off)"):format(opts.mode), 2)
    end
    modes = { opts.mode }
  end
  for _, mode in ipairs(modes) do
    if mode == 'proc' or mode == 'off' then
      self.mode = mode
      break
    end
    local base, why = try_cgroup(mode, name)
    if base then
      self.mode, self.base = mode, base
      break
    end
    self.refused[#self.refused + 1] = { mode = mode, reason = tostring(why) }
  end
  self.mode = self.mode or 'proc'
  current = self
  return self
end

--- The tracker of this orch, or nil (no `orch run`: process groups only).
function M.current()
  return current
end

--- Forget the current tracker (specs).
function M.reset()
  current = nil
end

--- A one-line description of the mechanism in use and of what was refused.
function Tracker:describe()
  local s = self.mode
  if self.base then
    s = s .. ' ' .. self.base
  end
  if #self.refused > 0 then
    local parts = {}
    for i, r in ipairs(self.refused) do
      parts[i] = ('%s: %s'):format(r.mode, r.reason)
    end
    s = s .. ' (refused: ' .. table.concat(parts, '; ') .. ')'
  end
  return s
end

-- Fall back to the /proc scan after the kernel refused a cgroup operation.
function Tracker:_downgrade(why)
  self.refused[#self.refused + 1] = { mode = self.mode, reason = why }
  local old = self.mode
  self.mode = 'proc'
  if self.log then
    self.log(('process tracking: %s refused (%s); using the /proc scan from now on'):format(old,
      why), 'warning')
  end
end

--- A new group for one incarnation of entry `id`: `{id = <ORCH_INVOCATION_ID value>,
-- cgroup = dir|nil, tag = 'ORCH_INVOCATION_ID=...'|nil}`; or nil, message, code when the
-- cgroup cannot be made for a reason that is not a refusal (the spawn fails with it).
function Tracker:group(id)
  self.seq = self.seq + 1
  local inv = ('%s.%d'):format(self.name, self.seq)
  local g = { id = inv, tag = M.ENV .. '=' .. inv, tracker = self }
  if self.mode == 'off' then
    g.tag = nil
    return g
  end
  if self.base then
    if self.mode == 'cgroup2' or self.mode == 'cgroup1' then
      local safe = tostring(id):gsub('[^%w_.-]', '_'):sub(1, 64)
      local dir = ('%s/%d-%s'):format(self.base, self.seq, safe)
      local ok, err, code = core.cgroup_mkdir(dir)
      if ok then
        g.cgroup, g.tag = dir, nil -- the tag only serves the /proc scan
        return g
      end
      if not REFUSED[code] then
        return nil, err, code
      end
      self:_downgrade(tostring(err))
    end
  end
  return g
end

--- The spawn of a group failed with `msg`/`code`: forget the group; true when the failure was
-- the kernel refusing the cgroup join (the tracker fell back to /proc: spawn again).
function Tracker:spawn_failed(g, msg, code)
  if g.cgroup then
    core.cgroup_rmdir(g.cgroup)
    if REFUSED[code] and tostring(msg):find('join cgroup', 1, true) then
      self:_downgrade(tostring(msg))
      return true
    end
  end
  return false
end

-- SIGKILL what is tracked until nothing is (a failed look, e.g. out of descriptors, is
-- retried until the deadline).
local function poll_gone(proc, deadline)
  while true do
    local n, err = proc:tracked('SIGKILL')
    if n == 0 then
      return true
    end
    if sched.now() >= deadline then
      return false, n or err
    end
    sched.sleep(10)
  end
end

local function release_now(self, g, proc)
  local deadline = sched.now() + M.RELEASE_MS
  local ok, left = poll_gone(proc, deadline)
  if not ok then
    if self.log then
      self.log(('%s: %s process(es) still there %d ms after SIGKILL (uninterruptible?)')
        :format(g.entry or g.id, tostring(left), M.RELEASE_MS), 'warning')
    end
    self.pending[#self.pending + 1] = g
    return
  end
  if g.cgroup then
    -- The members are gone; the kernel may need a moment before the directory can go.
    while not core.cgroup_rmdir(g.cgroup) and sched.now() < deadline do
      sched.sleep(5)
    end
  end
end

--- Wait until nothing tracked of the incarnation is left (yields; SIGKILLs stragglers), then
-- remove its cgroup. Runs once per group in a task of its own, so a cancelled caller does not
-- cut it short; later callers wait for the same release.
-- @async
function Tracker:release(g, proc)
  if not g.released then
    g.released = sched.event()
    sched.spawn('release:' .. g.id, function()
      local ok, err = pcall(release_now, self, g, proc)
      if not ok and self.log then
        self.log(('%s: release failed: %s'):format(g.id, tostring(err)), 'error')
      end
      g.released:set()
    end)
  end
  g.released:wait()
end

--- At exit: remove every cgroup left (SIGKILLing what is still in them) and the base.
function Tracker:close()
  for _, g in ipairs(self.pending) do
    if g.cgroup then
      core.cgroup_kill(g.cgroup)
    end
  end
  if self.base then
    remove_tree(self.base)
  end
  if current == self then
    current = nil
  end
end

M.Tracker = Tracker
return M
