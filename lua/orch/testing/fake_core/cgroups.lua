--- A simulated cgroup v2 tree for the fake core (orch.testing.fake_core): the `core.cgroup_*`
-- calls of process tracking (orch.runtime.track) and the control files that
-- orch.runtime.cgroup_limits reads and writes (`memory.max`, `memory.events`...), kept in
-- memory under a root that exists only in the simulated world. A process spawned into a cgroup
-- whose `memory.max` is below its behaviour's `memory` (MiB) is killed as the kernel's OOM
-- killer would: SIGKILL, and `oom_kill` counted in `memory.events`.
-- @module orch.testing.fake_core.cgroups
local M = {}

-- The control files of a new cgroup, with the kernel's defaults.
local FILES = {
  ['memory.max'] = 'max\n', ['memory.swap.max'] = 'max\n', ['memory.events'] = 'oom_kill 0\n',
  ['cpu.max'] = 'max 100000\n', ['pids.max'] = 'max\n', ['cgroup.subtree_control'] = '',
}

--- Add the cgroup functions to `fake`, and the hooks its spawns call (`_cgroup_join`,
-- `_cgroup_add`, `_memory_check`). The tree is kept here, not in the shared state:
-- `fake.reset()` leaves it alone (`cgroup_root` starts a new one).
function M.install(fake)
  local cg = { dirs = {}, files = {}, procs = {} }

  local function parent_of(path)
    return path:match('^(.*)/[^/]+$')
  end

  --- Give the world a cgroup v2 tree rooted at `dir` (nil: none; cgroup_find fails).
  function fake.cgroup_root(dir)
    cg = { root = dir, dirs = {}, files = {}, procs = {} }
    if dir then
      cg.dirs[dir] = true
      cg.files[dir .. '/cgroup.subtree_control'] = ''
    end
  end

  function fake.cgroup_find(kind)
    if cg.root and kind == 'cgroup2' then
      return cg.root
    end
    return nil, ('cgroup_find %s: no such cgroup in the simulated world'):format(tostring(kind)),
      'ENOENT'
  end

  function fake.cgroup_mkdir(path)
    if cg.dirs[path] then
      return nil, ('mkdir %s: file exists'):format(path), 'EEXIST'
    end
    if not cg.dirs[parent_of(path) or ''] then
      return nil, ('mkdir %s: no such file or directory'):format(path), 'ENOENT'
    end
    cg.dirs[path] = true
    for name, text in pairs(FILES) do
      cg.files[path .. '/' .. name] = text
    end
    return true
  end

  -- The live processes of `dir`, in spawn order (the dead are dropped from its list).
  local function members(dir)
    local list, out, keep = cg.procs[dir] or {}, {}, {}
    for _, p in ipairs(list) do
      if p.alive then
        out[#out + 1] = p
        keep[#keep + 1] = p
      end
    end
    cg.procs[dir] = keep
    return out
  end

  local function subdirs(path)
    local out = {}
    for d in pairs(cg.dirs) do
      if parent_of(d) == path then
        out[#out + 1] = d:match('[^/]+$')
      end
    end
    table.sort(out)
    return out
  end

  function fake.cgroup_subdirs(path)
    if not cg.dirs[path] then
      return nil, ('opendir %s: no such file or directory'):format(path), 'ENOENT'
    end
    return subdirs(path)
  end

  function fake.cgroup_rmdir(path)
    if not cg.dirs[path] then
      return nil, ('rmdir %s: no such file or directory'):format(path), 'ENOENT'
    end
    if #subdirs(path) > 0 or #members(path) > 0 then
      return nil, ('rmdir %s: device or resource busy'):format(path), 'EBUSY'
    end
    cg.dirs[path], cg.procs[path] = nil, nil
    for name in pairs(FILES) do
      cg.files[path .. '/' .. name] = nil
    end
    return true
  end

  function fake.cgroup_pids(dir)
    if not cg.dirs[dir] then
      return nil, ('%s/cgroup.procs: no such file or directory'):format(tostring(dir)), 'ENOENT'
    end
    local out = {}
    for _, p in ipairs(members(dir)) do
      out[#out + 1] = p.pid
    end
    return out
  end

  function fake.cgroup_kill(dir)
    if not cg.dirs[dir] then
      return nil, ('%s/cgroup.kill: no such file or directory'):format(tostring(dir)), 'ENOENT'
    end
    local list = members(dir)
    for _, p in ipairs(list) do
      fake.kill(p.pid, 'SIGKILL')
    end
    return #list
  end

  function fake.host_alive(pid)
    return fake.getpgid(pid) ~= nil
  end

  --- Whether a spawn may join `dir`: nil, or a failure (msg, code).
  function fake._cgroup_join(dir)
    if dir ~= nil and not cg.dirs[dir] then
      return ('spawn: cgroup %s: no such file or directory'):format(dir), 'ENOENT'
    end
    return nil
  end

  --- Process `p` was spawned in its `cgroup`.
  function fake._cgroup_add(p)
    if p.cgroup then
      cg.procs[p.cgroup] = cg.procs[p.cgroup] or {}
      table.insert(cg.procs[p.cgroup], p)
    end
  end

  --- The OOM killer: process `p` (in a cgroup, with a behaviour's `memory`) is killed when its
  -- memory is above the cgroup's `memory.max`.
  function fake._memory_check(p, after)
    local max = p.cgroup and tonumber((cg.files[p.cgroup .. '/memory.max'] or ''):match('^%d+'))
    if not (max and p.memory and p.memory * 1048576 > max) then
      return
    end
    p:after(after or 0, function()
      local path = p.cgroup .. '/memory.events'
      local n = tonumber((cg.files[path] or ''):match('oom_kill (%d+)')) or 0
      cg.files[path] = ('oom_kill %d\n'):format(n + 1)
      p:exit(nil, 'SIGKILL')
    end)
  end

  -- A file of the tree, as io.open returns one.
  local File = {}
  File.__index = File

  function File:read(fmt)
    local text = cg.files[self.path] or ''
    if self.pos > #text then
      return nil
    end
    if fmt == 'a' or fmt == '*a' then
      local rest = text:sub(self.pos)
      self.pos = #text + 1
      return rest
    end
    local line, stop = text:match('^([^\n]*)\n?()', self.pos)
    self.pos = stop
    return line
  end

  function File:lines()
    return function()
      return self:read('l')
    end
  end

  function File:write(s)
    if self.path:match('/cgroup%.subtree_control$') then
      cg.files[self.path] = (cg.files[self.path] or '') .. tostring(s) .. ' '
    else
      cg.files[self.path] = tostring(s)
    end
    return self
  end

  function File.close()
    return true
  end

  --- io.open for a path of the tree: a file, or nil and a message; false when `path` is not
  -- under the tree's root (the real io.open serves it).
  function fake.open(path, mode)
    if not cg.root or type(path) ~= 'string' or path:sub(1, #cg.root + 1) ~= cg.root .. '/' then
      return false
    end
    if cg.files[path] == nil then
      local code = cg.dirs[parent_of(path)] and 13 or 2
      return nil, ('%s: %s'):format(path, code == 13 and 'Permission denied'
        or 'No such file or directory'), code
    end
    return setmetatable({ path = path, pos = 1, mode = mode or 'r' }, File)
  end
end

return M
