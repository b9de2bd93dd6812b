--- The leader of a subcontainer: bubblewrap (Debian's `bwrap`, the packaged runtime) builds the
-- container and execs orch-init as its PID 1. orch spawns bwrap with `overlay` (src/spawn_ns.c):
-- in a private mount namespace a tmpfs holds the overlay's upper and work directories and the
-- overlay of the image on `<tmp>/root`, which bwrap makes the container's `/`; so the image is
-- never written and nothing of the container exists outside its namespaces. orch-init comes in
-- as bwrap's stdin (`/proc/self/fd/0`): nothing of orch is visible in the container.
-- Isolation as 2.12 and a runtime's defaults: PID, mount, UTS and IPC namespaces (network
-- shared), its own /proc with the paths OCI runtimes mask bound to /dev/null or a tmpfs, a
-- minimal /dev, /sys read-only, the OCI default capability set (also the bounding set of every
-- process orch later starts in it).
-- @module orch.subcontainer.leader
local core = require 'orch.core'
local sched = require 'orch.runtime.sched'
local process = require 'orch.runtime.process'

local M = {}

--- How long the leader may take to be ready (ms).
M.READY_MS = 10000

--- The capabilities processes keep in a subcontainer: the default set of OCI runtimes (runc,
-- crun, Docker), by name and number.
M.CAPS = { CAP_CHOWN = 0, CAP_DAC_OVERRIDE = 1, CAP_FOWNER = 3, CAP_FSETID = 4, CAP_KILL = 5,
  CAP_SETGID = 6, CAP_SETUID = 7, CAP_SETPCAP = 8, CAP_NET_BIND_SERVICE = 10, CAP_NET_RAW = 13,
  CAP_SYS_CHROOT = 18, CAP_MKNOD = 27, CAP_AUDIT_WRITE = 29, CAP_SETFCAP = 31 }
M.CAP_NUMBERS = {}
local cap_names = {}
for name, n in pairs(M.CAPS) do
  M.CAP_NUMBERS[#M.CAP_NUMBERS + 1] = n
  cap_names[#cap_names + 1] = name
end
table.sort(M.CAP_NUMBERS)
table.sort(cap_names)

--- What OCI runtimes mask in /proc and /sys: files bound to /dev/null, directories covered by
-- an empty tmpfs (only those the host has).
M.MASKED_FILES = { '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug' }
M.MASKED_DIRS = { '/proc/acpi', '/proc/scsi', '/sys/firmware' }

-- An executable named `name` on PATH, or nil.
local function on_path(name)
  for dir in (os.getenv('PATH') or '/usr/bin:/bin'):gmatch('[^:]+') do
    local p = dir .. '/' .. name
    local st = core.lstat(p)
    if st then
      return p
    end
  end
end

--- The orch-init program: `$ORCH_INIT`, in libexec/orch or beside the orch binary, in the
-- build tree of the core module, in /usr(/local)/libexec/orch, or on PATH.
function M.find_init()
  local env = os.getenv('ORCH_INIT')
  if env and env ~= '' then
    return env
  end
  local exe = core.exepath and core.exepath()
  local dir = exe and exe:match('^(.*)/orch$')
  -- installed: <prefix>/bin/orch and <prefix>/libexec/orch/orch-init; a build tree: bin/
  for _, p in ipairs(dir and { dir .. '/../libexec/orch/orch-init', dir .. '/orch-init' } or {}) do
    if core.lstat(p) then
      return p
    end
  end
  -- a build tree: build/lib/orch/core.so beside build/bin/orch-init
  local so = package.searchpath('orch.core', package.cpath)
  local p = so and so:match('^(.*)/lib/orch/core%.so$')
  if p and core.lstat(p .. '/bin/orch-init') then
    return p .. '/bin/orch-init'
  end
  for _, q in ipairs({ '/usr/libexec/orch/orch-init', '/usr/local/libexec/orch/orch-init' }) do
    if core.lstat(q) then -- the library used from lua5.4
      return q
    end
  end
  return on_path('orch-init')
end

--- bubblewrap: `$ORCH_BWRAP` or `bwrap` on PATH.
function M.find_bwrap()
  local env = os.getenv('ORCH_BWRAP')
  return env and env ~= '' and env or on_path('bwrap')
end

--- The argv of bwrap for the options `o` (see `start`).
function M.argv(bwrap, o)
  local a = { bwrap, '--unshare-pid', '--unshare-uts', '--unshare-ipc', '--hostname',
    o.hostname, '--die-with-parent', '--as-pid-1', '--cap-drop', 'ALL' }
  for _, name in ipairs(cap_names) do
    a[#a + 1] = '--cap-add'
    a[#a + 1] = name
  end
  for _, x in ipairs({ '--bind', o.tmp .. '/root', '/', '--proc', '/proc', '--dev', '/dev',
    '--ro-bind', '/sys', '/sys' }) do
    a[#a + 1] = x
  end
  for _, p in ipairs(M.MASKED_FILES) do
    if core.lstat(p) then
      table.move({ '--ro-bind', '/dev/null', p }, 1, 3, #a + 1, a)
    end
  end
  for _, p in ipairs(M.MASKED_DIRS) do
    if core.lstat(p) then
      table.move({ '--tmpfs', p, '--remount-ro', p }, 1, 4, #a + 1, a)
    end
  end
  if o.shared_run then
    table.move({ '--bind', '/run', '/run' }, 1, 3, #a + 1, a)
  end
  table.move(o.binds or {}, 1, #(o.binds or {}), #a + 1, a)
  table.move({ '--info-fd', '1', '--', '/proc/self/fd/0' }, 1, 4, #a + 1, a)
  return a
end

--- Start a leader (yields until it is ready). `o`: `userns` (not root: first a user namespace
-- where uid 0 is orch's user), `lower` (the image's root filesystem),
-- `tmp` (an empty directory the private tmpfs goes on), `hostname`, `shared_run`, `binds`
-- (bwrap arguments of the mounts), `log(level, msg)`.
-- @treturn table|nil `{cmd = orch.process Command (bwrap), pid = the leader (PID 1 inside)}`
-- @treturn string why not
-- @async
function M.start(o)
  local bwrap = M.find_bwrap()
  if not bwrap then
    return nil, 'subcontainers need bubblewrap: no bwrap on PATH (apt-get install bubblewrap)'
  end
  local init = M.find_init()
  if not init then
    return nil, 'subcontainers need orch-init (installed beside orch): not found (set ORCH_INIT)'
  end
  local out, err, ev = {}, {}, sched.event()
  local function check() -- ready once both arrived
    if table.concat(err):find('ready\n', 1, true)
      and table.concat(out):find('"child%-pid"%s*:%s*%d+') then
      ev:set()
    end
  end
  local cmd, msg = process.spawn(M.argv(bwrap, o), {
    overlay = { tmp = o.tmp, lower = o.lower, userns = o.userns },
    stdin_file = init,
    sigterm_timeout = 5000,
    name = 'subcontainer ' .. o.hostname,
    log = o.log,
    stdout = function(chunk) -- bwrap's --info-fd: {"child-pid": N, ...}
      out[#out + 1] = chunk
      check()
    end,
    stderr = function(chunk) -- bwrap's errors, then orch-init's "ready"
      err[#err + 1] = chunk
      check()
    end,
  })
  if not cmd then
    return nil, msg
  end
  cmd:on_exit(function()
    ev:set()
  end)
  local ok = ev:wait(M.READY_MS)
  local text = table.concat(out)
  local pid = math.tointeger(tonumber(text:match('"child%-pid"%s*:%s*(%d+)')))
  if ok and not cmd.exited.is_set and pid then
    return { cmd = cmd, pid = pid, userns = o.userns }
  end
  if cmd.exited.is_set and not cmd.pipes_done then -- its last words
    sched.sleep(process.PIPE_GRACE_MS)
  end
  local why = table.concat(err):gsub('%s+$', '')
  if not ok then
    why = ('not ready within %d ms'):format(M.READY_MS)
  end
  cmd:term({ signal = 'SIGKILL' })
  return nil, ('the subcontainer could not start: %s'):format(why ~= '' and why
    or cmd:describe_exit())
end

return M
