--- Helpers for the fault-injection specs (spec/faults_*_spec.lua): processes as the host sees
-- them, orch's own resource use, the status file. Built on spec/fixtures/cli/runner.lua (real
-- build/bin/orch, deadlines everywhere).
local R = require 'fixtures.cli.runner'
local cjson = require 'cjson'

local M = {}

M.R = R
M.FIX = R.ROOT .. '/spec/fixtures/faults'

local function exists(path)
  local f = io.open(path)
  if f then
    f:close()
  end
  return f ~= nil
end
M.exists = exists

--- A python3 that starts fast (the system one) and that other users can run.
M.PY = exists('/usr/bin/python3') and '/usr/bin/python3' or 'python3'

--- Whether orch is the AddressSanitizer build (`make sanitize`): memory figures are not those
-- of the real binary there (shadow memory, quarantine), so memory bounds are reported only.
function M.sanitized()
  return os.getenv('ASAN_OPTIONS') ~= nil
end

--- Whether we run as root (most fault specs need it: namespaces, cgroups, other users).
function M.is_root()
  return (R.capture('id -u'):gsub('%s', '')) == '0'
end

--- Every process: pid -> {pid, ppid, pgid, sid, state, args}.
function M.procs()
  local out = {}
  local text = R.capture('ps -e -o pid=,ppid=,pgid=,sid=,stat=,args= 2>/dev/null')
  for line in text:gmatch('[^\n]+') do
    local pid, ppid, pgid, sid, stat, args = line:match(
      '^%s*(%d+)%s+(%d+)%s+(%d+)%s+(%d+)%s+(%S+)%s*(.*)$')
    if pid then
      pid = tonumber(pid)
      out[pid] = { pid = pid, ppid = tonumber(ppid), pgid = tonumber(pgid), sid = tonumber(sid),
        state = stat:sub(1, 1), args = args }
    end
  end
  return out
end

--- The descendants of `pid` (not itself), as records of `procs()`.
function M.descendants(pid, procs)
  procs = procs or M.procs()
  local kids = {}
  for _, p in pairs(procs) do
    kids[p.ppid] = kids[p.ppid] or {}
    table.insert(kids[p.ppid], p)
  end
  local out, queue = {}, { pid }
  while #queue > 0 do
    local cur = table.remove(queue)
    for _, k in ipairs(kids[cur] or {}) do
      out[#out + 1] = k
      queue[#queue + 1] = k.pid
    end
  end
  return out
end

--- Pids whose command line is exactly `args`.
function M.find(args, procs)
  local out = {}
  for pid, p in pairs(procs or M.procs()) do
    if p.args == args then
      out[#out + 1] = pid
    end
  end
  table.sort(out)
  return out
end

--- The orch that supervises: the contained child of the relay `pid`, or `pid` itself.
function M.inner_pid(pid)
  for _, p in pairs(M.procs()) do
    if p.ppid == pid and p.args:find('orch', 1, true) then
      return p.pid
    end
  end
  return pid
end

--- Fields of /proc/<pid>/status in kB (VmRSS, VmHWM, ...) or as text.
function M.proc_status(pid)
  local text = R.read_file(('/proc/%d/status'):format(pid))
  if not text then
    return nil
  end
  local out = {}
  for k, v in text:gmatch('([%w_]+):%s*([^\n]*)') do
    out[k] = tonumber(v:match('^(%d+) kB')) or v
  end
  return out
end

--- How many descriptors `pid` has open.
function M.fd_count(pid)
  return tonumber((R.capture(('ls /proc/%d/fd 2>/dev/null | wc -l'):format(pid)):match('%d+')))
end

--- The status file (nil while it does not parse).
function M.status_file(path)
  local s = R.read_file(path)
  if not s or s == '' then
    return nil
  end
  local ok, doc = pcall(cjson.decode, s)
  return ok and doc or nil
end

--- Wait until the status file says every entry (at least `n`) is ready; returns it.
function M.wait_ready(path, n, ms, what)
  return R.wait_until(function()
    local doc = M.status_file(path)
    return doc and doc.total >= n and doc.ready == doc.total and doc
  end, ms or 10000, what or ('all %d entries ready'):format(n))
end

--- Zombies among `pids` (records).
function M.zombies(list)
  local out = {}
  for _, p in ipairs(list) do
    if p.state == 'Z' then
      out[#out + 1] = p
    end
  end
  return out
end

--- A unique-enough number for marker command lines (`sleep <n>`).
function M.unique()
  return ('%d.%d'):format(math.random(100000, 999999), math.random(1000, 9999))
end

--- Occurrences of plain `needle` in `text`.
function M.count(text, needle)
  local n, pos = 0, 1
  while true do
    local s, e = text:find(needle, pos, true)
    if not s then
      return n
    end
    n, pos = n + 1, e + 1
  end
end

math.randomseed(os.time() + tonumber(tostring({}):match('0x(%x+)'), 16) % 100000)

--- Run `body()` against the started orch `p`, then stop it with SIGTERM: it must exit 0 and
-- leave no process whose command line holds `marker`. `p` and `dir` are cleaned up whatever
-- happened; a failure is raised again afterwards.
function M.with_orch(p, dir, marker, body)
  local ok, e = pcall(function()
    body()
    p:signal('TERM')
    require('luassert').equal(0, p:wait(20000))
    require('luassert').same({}, M.find(marker))
  end)
  p:cleanup()
  R.cleanup(dir)
  if not ok then
    error(e, 0)
  end
end

return M
