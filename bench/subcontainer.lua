#!/usr/bin/env lua5.4
--- bench/subcontainer.lua: the start latency of a subcontainer (issue 15), side by side with the
-- raw runtimes. As root, from the source tree after `make build`:
--
--   lua5.4 bench/subcontainer.lua [N]          (N runs per case, default 50; medians in ms)
--
-- Cases, each `/bin/true` in a busybox-static image (spec/support/images.lua), the wall time of
-- create + first process + destroy, every process started the same way (orch.process: the same
-- spawn path, so only the runtime differs):
--   orch      SubContainer.of + exec{'true'} + destroy: the leader (bwrap + overlay on a private
--             tmpfs + orch-init) is ready, a joined process runs, the leader is SIGTERMed
--   bwrap     bwrap with the same namespaces, /proc, /dev, /sys (no overlay: bwrap 0.8 has none)
--             running /bin/true as its command
--   crun      `crun run` of an OCI bundle (`crun spec` defaults) on the same rootfs
-- and orch's split: create (leader ready), the first exec, destroy; and the CPU time per run of
-- this process and every child (what a loaded machine does not inflate, unlike wall time).
package.path = './lua/?.lua;./lua/?/init.lua;./spec/?.lua;' .. package.path
package.cpath = './build/lib/?.so;' .. package.cpath
local core = require 'orch.core'
local sched = require 'orch.runtime.sched'
local process = require 'orch.runtime.process'
local images = require 'spec.support.images'
local SubContainer = require 'orch.subcontainer'

local N = tonumber(arg[1]) or 50

local function ms(t0)
  return (core.hrtime() - t0) / 1e6
end

-- CPU time (ms) of this process and its reaped children so far (/proc/self/stat, in ticks of
-- 10 ms: only a total over many runs means anything), which a loaded machine does not inflate.
local function cpu_ms()
  local f = assert(io.open('/proc/self/stat'))
  local stat = f:read('a')
  f:close()
  local rest = stat:match('%) (.*)$')
  local fields = {}
  for x in rest:gmatch('%S+') do
    fields[#fields + 1] = tonumber(x)
  end
  -- after the comm: state is 1, utime 12, stime 13, cutime 14, cstime 15
  return (fields[12] + fields[13] + fields[14] + fields[15]) * 10
end

local function median(list)
  table.sort(list)
  return list[(#list + 1) // 2]
end

local dir = os.tmpname()
os.remove(dir)
assert(os.execute('mkdir -p ' .. dir))
local data = dir .. '/data'
local rootfs = images.busybox(data, 'main', {})

local function run(argv)
  local r = assert(process.exec(argv, { timeout = 10000 }))
  assert(r.exitCode == 0, table.concat(argv, ' ') .. ': ' .. tostring(r.stderr))
end

local results = {}
sched.run(function()
  local total, create, first, destroy = {}, {}, {}, {}
  local c0 = cpu_ms()
  for i = 1, N do
    local t0 = core.hrtime()
    local sub = SubContainer.of({ dataDir = data }, { imageId = 'main' })
    sub:_ensure()
    local t1 = core.hrtime()
    local r = sub:exec({ 'true' })
    assert(r.exitCode == 0, r.stderr)
    local t2 = core.hrtime()
    sub:destroy()
    total[i], create[i] = ms(t0), (t1 - t0) / 1e6
    first[i], destroy[i] = (t2 - t1) / 1e6, ms(t2)
  end
  local orch_cpu = (cpu_ms() - c0) / N
  results[#results + 1] = { 'orch (create + first process + destroy)', median(total) }
  results[#results + 1] = { '  orch CPU per run (orch + all children)', orch_cpu }
  results[#results + 1] = { '  orch create (leader ready)', median(create) }
  results[#results + 1] = { '  orch first process (joined)', median(first) }
  results[#results + 1] = { '  orch destroy', median(destroy) }

  local bwrap = { 'bwrap', '--unshare-pid', '--unshare-uts', '--unshare-ipc', '--die-with-parent',
    '--bind', rootfs, '/', '--proc', '/proc', '--dev', '/dev', '--ro-bind', '/sys', '/sys',
    '--', '/bin/true' }
  local t = {}
  c0 = cpu_ms()
  for i = 1, N do
    local t0 = core.hrtime()
    run(bwrap)
    t[i] = ms(t0)
  end
  results[#results + 1] = { 'bwrap (raw, same namespaces, no overlay)', median(t) }
  results[#results + 1] = { '  bwrap CPU per run (orch + all children)', (cpu_ms() - c0) / N }
  table.insert(bwrap, 2, '--as-pid-1')
  t = {}
  c0 = cpu_ms()
  for i = 1, N do
    local t0 = core.hrtime()
    run(bwrap)
    t[i] = ms(t0)
  end
  results[#results + 1] = { 'bwrap --as-pid-1 (no reaper of its own)', median(t) }
  results[#results + 1] = { '  bwrap --as-pid-1 CPU per run', (cpu_ms() - c0) / N }

  if os.execute('command -v crun >/dev/null') then
    local bundle = dir .. '/bundle'
    assert(os.execute(('mkdir -p %s && cd %s && ln -s %s rootfs && crun spec')
      :format(bundle, bundle, rootfs)))
    -- the process: /bin/true without a terminal, as the generated spec otherwise asks for one
    local f = assert(io.open(bundle .. '/config.json'))
    local cfg = f:read('a'):gsub('"terminal": true', '"terminal": false')
      :gsub('"sh"', '"/bin/true"')
    f:close()
    f = assert(io.open(bundle .. '/config.json', 'w'))
    f:write(cfg)
    f:close()
    local probe = process.exec({ 'crun', 'run', '--bundle', bundle, 'orch-bench-probe' },
      { timeout = 10000 })
    if probe and probe.exitCode == 0 then
      t = {}
      for i = 1, N do
        local t0 = core.hrtime()
        run({ 'crun', 'run', '--bundle', bundle, 'orch-bench-' .. i })
        t[i] = ms(t0)
      end
      results[#results + 1] = { 'crun run (raw OCI runtime)', median(t) }
    else
      print(('crun cannot run here: %s'):format(probe and probe.stderr:gsub('%s+$', '') or '?'))
    end
  end
end, { timeout = 600000 })
os.execute('rm -rf ' .. dir)

print(('subcontainer start, median of %d (ms)'):format(N))
for _, r in ipairs(results) do
  print(('%-44s %7.2f'):format(r[1], r[2]))
end
