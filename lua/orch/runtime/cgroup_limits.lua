--- `exec.limits` in an incarnation's cgroup v2: `memory.max`, `cpu.max`, `pids.max` (written
-- before the child is born in it), and the OOM kills counted in `memory.events` afterwards.
-- @module orch.runtime.cgroup_limits
local M = {}

local CONTROLLER = { memory = 'memory', cpu = 'cpu', pids = 'pids' }
local FILE = { memory = 'memory.max', cpu = 'cpu.max', pids = 'pids.max' }
M.KEYS = { 'memory', 'cpu', 'pids' }

--- The cgroup keys `limits` sets (a list, possibly empty).
function M.wanted(limits)
  local out = {}
  for _, k in ipairs(M.KEYS) do
    if limits and limits[k] ~= nil then
      out[#out + 1] = k
    end
  end
  return out
end

local function write(path, text)
  local f, err = io.open(path, 'w')
  if not f then
    return nil, err
  end
  local ok, werr = f:write(text)
  local cok, cerr = f:close()
  if not ok then
    return nil, werr
  end
  if not cok then
    return nil, cerr
  end
  return true
end

local function exists(path)
  local f = io.open(path, 'r')
  if f then
    f:close()
    return true
  end
  return false
end

local function value(key, v)
  if key == 'cpu' then
    return ('%d 100000'):format(math.max(1000, math.floor(v * 100000 + 0.5)))
  end
  return tostring(v)
end

--- Write `limits` into cgroup `dir` (its parent must delegate the controllers: they are
-- enabled in the parent's `cgroup.subtree_control` when missing). true, or nil and a message
-- naming the key.
function M.apply(dir, limits)
  local parent = dir:match('^(.*)/[^/]+$')
  for _, key in ipairs(M.wanted(limits)) do
    local file = dir .. '/' .. FILE[key]
    if not exists(file) and parent then
      write(parent .. '/cgroup.subtree_control', '+' .. CONTROLLER[key])
    end
    if not exists(file) then
      return nil, ("exec.limits.%s: the %s controller is not available in %s (cgroup v2 with "
        .. 'it delegated is needed)'):format(key, CONTROLLER[key], parent or dir)
    end
    local ok, err = write(file, value(key, limits[key]))
    if not ok then
      return nil, ('exec.limits.%s: cannot write %s: %s'):format(key, file, tostring(err))
    end
    if key == 'memory' and exists(dir .. '/memory.swap.max') then
      write(dir .. '/memory.swap.max', '0') -- the limit is the memory: no swapping around it
    end
  end
  return true
end

--- The number of OOM kills in cgroup `dir` (0 when unknown).
function M.oom_kills(dir)
  local f = io.open(dir .. '/memory.events', 'r')
  if not f then
    return 0
  end
  local text = f:read('a') or ''
  f:close()
  return tonumber(text:match('oom_kill (%d+)')) or 0
end

return M
