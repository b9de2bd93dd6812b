--- bench/subcontainer_cycle.lua: what one subcontainer costs orch, run by bench/subcontainer.py
-- under lua5.4 with orch's library and core module (no `orch run` start-up in the figures).
--
--   lua5.4 bench/subcontainer_cycle.lua DATA IMAGE N
--
-- N times: SubContainer.eager (the leader up, the copy-on-write layer mounted), exec of
-- /bin/true in it (joins its namespaces, waits for the exit), destroy (the leader gone, the
-- layer unmounted). Prints one JSON object: the per-iteration times in ms, and each step's,
-- and `cpu_ms`: the CPU time of this process and every child it reaped (the leaders, the
-- processes run in them) per iteration, which the machine's load inflates far less.
local orch = require 'orch'
local core = require 'orch.core'
local sched = require 'orch.runtime.sched'
local json = require 'orch.runtime.json'

local data, image, n = arg[1], arg[2], math.tointeger(tonumber(arg[3] or '50'))
local effects = { dataDir = data, log = function(level, msg)
  io.stderr:write(('bench: %s: %s\n'):format(level, msg))
end }

local function ms(t0, t1)
  return (t1 - t0) / 1e6
end

-- utime + stime + cutime + cstime of this process, in clock ticks (/proc/self/stat).
local function cpu_ticks()
  local f = assert(io.open('/proc/self/stat'))
  local stat = f:read('a')
  f:close()
  local rest = stat:match('%) (.*)$')
  local fields = {}
  for x in rest:gmatch('%S+') do
    fields[#fields + 1] = x
  end
  -- after the command: state is field 3 of stat, utime 14 ... cstime 17
  local t = 0
  for i = 12, 15 do
    t = t + tonumber(fields[i])
  end
  return t
end

local res = { total = {}, create = {}, exec = {}, destroy = {} }
local hz = tonumber(io.popen('getconf CLK_TCK'):read('l')) or 100
local ticks0 = cpu_ticks()
sched.run(function()
  for i = 1, n do
    local t0 = core.hrtime()
    local sub = orch.SubContainer.eager(effects, { imageId = image }, nil, 'bench')
    local t1 = core.hrtime()
    local r = sub:exec({ '/bin/true' })
    local t2 = core.hrtime()
    sub:destroy()
    local t3 = core.hrtime()
    assert(r.exitCode == 0, 'exec /bin/true: exit ' .. tostring(r.exitCode) .. ' ' .. r.stderr)
    res.total[i], res.create[i] = ms(t0, t3), ms(t0, t1)
    res.exec[i], res.destroy[i] = ms(t1, t2), ms(t2, t3)
  end
end, { timeout = 600000 })
local cpu_ms = (cpu_ticks() - ticks0) * 1000 / hz / n
for k, v in pairs(res) do
  res[k] = json.array(v)
end
res.cpu_ms = cpu_ms
io.stdout:write(json.encode(res), '\n')
