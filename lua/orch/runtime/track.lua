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
-- The core (src/track.c) only gives facts: cgroup members, the processes of /proc with their
-- ppid, group, start time and whether they carry the tag. `Members` decides from them what
-- belongs to one incarnation; `orch.process` signals it with the group and, once the leader is
-- gone, gives what is left the rest of the stop's timeout (DECISIONS "Processes").
-- `release` then removes the cgroup.
-- @module orch.runtime.track
local core = require 'orch.core'
local sched = require 'orch.runtime.sched'

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

--- What belongs to one incarnation besides its leader.
-- @type Members
local Members = {}
Members.__index = Members

--- The members of an incarnation: `opts.cgroup` (its cgroup directory), or `opts.tag` (the
-- `NAME=value` its processes carry: the /proc scan), or neither (its process group only);
-- `opts.pgid`, the process group its leader leads.
function M.members(opts)
  return setmetatable({ cgroup = opts.cgroup, tag = opts.tag, pgid = opts.pgid }, Members)
end

-- The cgroup's processes but the leader and orch, each with its process group.
local function cgroup_list(self, leader, own)
  local pids, err, code = core.cgroup_pids(self.cgroup)
  if not pids then
    return nil, err, code
  end
  local out = {}
  for _, pid in ipairs(pids) do
    if pid ~= leader and pid > 1 and pid ~= own then
      out[#out + 1] = { pid = pid, pgrp = core.getpgid(pid) } -- pgrp nil: gone meanwhile
    end
  end
  return out
end

-- The /proc decision: a live process belongs when it carries the tag, was found before (same pid
-- and start time: a recycled pid is never taken), is the leader or in its process group, or
-- descends from one that belongs (through the ppid chain, while it is intact).
local function scan_list(self, leader, own)
  local list, err, code = core.proc_list(self.tag)
  if not list then
    return nil, err, code
  end
  local seen = self.seen
  if not seen then
    seen = {} -- made on the first scan: most incarnations never need one
    self.seen = seen
  end
  local kids, mark, queue, pgid = {}, {}, {}, self.pgid
  for _, p in ipairs(list) do
    if p.state ~= 'Z' then
      local k = kids[p.ppid]
      if not k then
        k = {}
        kids[p.ppid] = k
      end
      k[#k + 1] = p
      if p.tagged or seen[p.pid] == p.start or p.pid == leader or (pgid and p.pgrp == pgid) then
        mark[p.pid] = p
        queue[#queue + 1] = p
      end
    end
  end
  local i = 1
  while queue[i] do
    for _, c in ipairs(kids[queue[i].pid] or {}) do
      if not mark[c.pid] then
        mark[c.pid] = c
        queue[#queue + 1] = c
      end
    end
    i = i + 1
  end
  local out = {}
  for pid, p in pairs(mark) do
    if pid ~= leader and pid > 1 and pid ~= own then
      seen[pid] = p.start
      out[#out + 1] = p
    end
  end
  table.sort(out, function(a, b)
    return a.pid < b.pid
  end)
  return out
end

--- The live processes of the incarnation except `leader` (its pid while it runs, or nil):
-- a list of `{pid =, pgrp =}`, or nil, message, code when the kernel would not say.
function Members:list(leader)
  local own = core.getpid()
  if self.cgroup then
    return cgroup_list(self, leader, own)
  end
  if self.tag then
    return scan_list(self, leader, own)
  end
  if not self.pgid then
    return {}
  end
  return scan_list(self, leader, own) -- the process group (and what it forked)
end

--- Send `sig` to the members outside process group `skip_pgid` (the caller signals that
-- group itself); SIGKILL reaches a cgroup at once. Returns how many there were, or nil,
-- message, code.
function Members:signal(sig, leader, skip_pgid)
  if sig == 'SIGKILL' and self.cgroup then
    return core.cgroup_kill(self.cgroup)
  end
  local list, err, code = self:list(leader)
  if not list then
    return nil, err, code
  end
  for _, p in ipairs(list) do
    if sig == 'SIGKILL' or p.pgrp ~= skip_pgid then
      core.kill(p.pid, sig)
    end
  end
  return #list
end

M.Members = Members

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
  return self
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
        g.v2 = self.mode == 'cgroup2' or nil -- limits (orch.runtime.cgroup_limits) need v2
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

--- The spawn of a group failed with `msg`/`code` at `stage` (the 4th result of
-- `process.spawn`): forget the group; true when the failure was the kernel refusing the cgroup
-- join (the tracker fell back to /proc: spawn again).
function Tracker:spawn_failed(g, msg, code, stage)
  if g.cgroup then
    core.cgroup_rmdir(g.cgroup)
    if REFUSED[code] and stage == 'cgroup' then
      self:_downgrade(tostring(msg))
      return true
    end
  end
  return false
end

-- Remove the cgroup of `g` once it is empty (the kernel may need a moment after the last member
-- left); kept for `close` when it cannot go.
local function release_now(self, g)
  if not g.cgroup then
    return
  end
  local deadline = sched.now() + M.RELEASE_MS
  while true do
    local left = core.cgroup_pids(g.cgroup)
    if not left or (#left == 0 and core.cgroup_rmdir(g.cgroup)) then
      return -- removed (or already gone)
    end
    if sched.now() >= deadline then
      if #left > 0 then
        if self.log then
          self.log(('%s: %d process(es) still there %d ms after SIGKILL (uninterruptible?)')
            :format(g.entry or g.id, #left, M.RELEASE_MS), 'warning')
        end
        self.pending[#self.pending + 1] = g
      end
      return
    end
    if #left > 0 then
      core.cgroup_kill(g.cgroup)
    end
    sched.sleep(5)
  end
end

--- Remove the cgroup of an incarnation that has ended (`orch.process` waited until nothing of
-- it was left; a straggler is SIGKILLed). Runs once per group in a task of its own, so a
-- cancelled caller does not cut it short; later callers wait for the same release (yields).
-- @async
function Tracker:release(g)
  if not g.released then
    g.released = sched.event()
    sched.spawn('release:' .. g.id, function()
      local ok, err = pcall(release_now, self, g)
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
end

M.Tracker = Tracker
return M
