-- The fake core (spec/support/fake_core.lua) against the real one (build/lib/orch/core.so), so
-- they cannot drift: every function of orch.core and every method of its timer, process and
-- probe handles exists in the fake with the same parameters, and fails the same way (nil, msg,
-- CODE); a real function without a fake counterpart is listed below with the reason none is
-- needed. The parameters are written once here and checked against the C doc comments
-- (`/* core.name(a, b[, c]) ...`), so a change in C that is not made in the fake fails here.

-- Parameters of each real function (optional ones included), methods without self.
local PARAMS = {
  active_count = 0, cgroup_find = 1, cgroup_kill = 1, cgroup_mkdir = 1,
  cgroup_pids = 1, cgroup_rmdir = 1, cgroup_subdirs = 1, chmod = 2,
  contain = 1, cwd = 0, environ = 0, exepath = 0, fd_holders = 1, fd_pipe = 1, getpgid = 1,
  getpid = 0,
  getpwnam = 1,
  getuid = 0, host_alive = 1, hrtime = 0, http_get = 3, isatty = 1, kill = 2, lstat = 1,
  mkdir = 2, notify = 2, notify_listen = 2, now = 0, orphans_reaped = 0, outbuf = 2,
  port_listening = 2,
  preempt = 3, preempt_lines = 2,
  preempted = 1, proc_list = 1, random = 1, readdir = 1, run = 1, set_subreaper = 0,
  signal = 0, signame = 1, signum = 1, spawn = 3, stop = 0, stop_guard = 0,
  stop_guard_ack = 0, stop_guard_count = 0, stop_guard_stopping = 0, tcp_connect = 4,
  getrlimit = 1, setrlimit = 4, time = 0, timer = 0,
  tty = 1, tty_reset = 0, unblock_signals = 0, unix_connect = 2, unix_listen = 2,
  update_time = 0, watch = 1, watch_cgroup = 2, watch_tag = 1, write_new = 3, fs_watch = 2,
}
local METHODS = {
  timer = { start = 3, stop = 0, close = 0, active = 0, unref = 0 },
  proc = { pid = 0, host_pid = 0, pgid = 0, kill = 1, pipes = 0, close_pipes = 0, close = 0 },
  probe = { close = 0, active = 0 },
}

-- Real functions the fake leaves out on purpose: nothing that runs on the fake core calls them.
local NO_FAKE = {
  -- the `orch run` process itself (cli/run.lua), exercised by the CLI and fault specs
  contain = 'PID namespace of orch run (cli/run.lua)',
  set_subreaper = 'orch run only (cli/run.lua); a subcontainer without root (real core only)',
  exepath = 'where orch-init is, for a subcontainer (real processes only)',
  orphans_reaped = 'orch run only (cli/run.lua)',
  outbuf = 'orch run only: its own stdout (cli/run_stdout.lua), cli_slow_reader_spec',
  unblock_signals = 'orch run only (cli.lua, cli/run.lua)',
  notify = 'sd_notify socket; orch.notify takes a send function, cli_notify_spec passes one',
  fd_pipe = 'ready.notifyFd pipe (entries/pushed.lua), tested on the real core by '
    .. 'ready_integration_spec',
  -- the terminal of orch ui (cli/ui/terminal.lua), driven in tmux by ui_tmux_spec
  tty = 'orch ui, the progress line of orch run (cli/ui/terminal.lua, cli/run.lua)',
  tty_reset = 'orch ui (cli/ui/terminal.lua)',
  -- the control socket (control.lua), tested on the real core by control_server_spec
  chmod = 'control socket directory (control.lua)',
  lstat = 'control socket path (control.lua)',
  readdir = 'control socket directory (control.lua)',
  cwd = 'control socket default name (control.lua)',
  unix_listen = 'control socket server (control.lua)',
  unix_connect = 'control socket client (control.lua, cli/remote.lua)',
  -- the watcher and the stop guard of an uncontained orch run (watch.c, signal.c)
  watch = 'the watcher of orch run (cli/run.lua)',
  watch_cgroup = 'the watcher of orch run (cli/run.lua)',
  watch_tag = 'the watcher of orch run (cli/run.lua)',
  stop_guard = 'orch run only: the C fallback of a second SIGINT (cli/run.lua)',
  stop_guard_ack = 'orch run only (cli/run.lua)',
  stop_guard_stopping = 'orch run only (cli/run.lua)',
  stop_guard_count = 'orch run only: read by a long build (cli/run.lua), cli_limits_spec',
  -- orch's own limits (cli/limits.lua, from cli/run.lua's cmd_run), tested by cli_limits_spec
  getrlimit = 'orch run only (cli/limits.lua)',
  setrlimit = 'orch run only (cli/limits.lua)',
  -- the status file (status_file.lua), tested on the real core by status_file_spec
  write_new = 'status file (status_file.lua)',
  fs_watch = 'orch run --watch only (cli/watch_files.lua); core_fs_spec tests it',
}

-- Compared by presence and parameters only (nothing is left out now).
local NOT_COMPARED = {}

-- The parameters of `core.name(...)` / `type:name(...)` in the C doc comments of src/*.c.
local function c_params()
  local out = {}
  local p = assert(io.popen('cat src/*.c'))
  for line in p:lines() do
    -- a doc comment opens with the call: `/* core.name(...)`, and may name a second one after
    -- a `;` (`/* core.signame(n) -> ...; core.signum('TERM') -> 15`)
    local head = line:match('^/%*%s(.*)$') or ''
    if head:match('^[%w_]+%.c:') then
      head = '' -- a file's header comment, not a function's
    end
    for kind, name, args in ('; ' .. head):gmatch(';%s+(%a+)[.:]([%w_]+)(%b())') do
      do
        local inner = args:sub(2, -2):gsub('%b{}', 'x'):gsub('[%[%]]', '')
        local n = 0
        for _ in inner:gmatch('[^,]+') do
          n = n + 1
        end
        if inner:match('^%s*$') then
          n = 0
        end
        local key = kind == 'core' and name or (kind .. ':' .. name)
        out[key] = out[key] or n
      end
    end
  end
  p:close()
  return out
end

local function nparams(fn)
  local info = debug.getinfo(fn, 'u')
  return info.nparams, info.isvararg
end

local function sorted_keys(t)
  local out = {}
  for k in pairs(t) do
    out[#out + 1] = k
  end
  table.sort(out)
  return out
end

insulate('the fake core and the real one', function()
  local real = require 'orch.core' -- build/lib/orch/core.so (busted --cpath)
  local fake = require('spec.support.fake_core').new()

  it('the real core is the C module', function()
    assert.is_string(real.version)
    assert.is_nil(real.program) -- a fake has its scripting functions
  end)

  it('lists every real function: compared, or without a fake for a stated reason', function()
    local unlisted = {}
    for _, name in ipairs(sorted_keys(real)) do
      if type(real[name]) == 'function' and not NOT_COMPARED[name]
        and PARAMS[name] == nil then
        unlisted[#unlisted + 1] = name
      end
    end
    assert.same({}, unlisted, 'new functions of orch.core: add them to PARAMS (and the fake)')
    local stale = {}
    for _, name in ipairs(sorted_keys(PARAMS)) do
      if real[name] == nil then
        stale[#stale + 1] = name
      end
    end
    assert.same({}, stale, 'gone from orch.core: remove them from PARAMS (and NO_FAKE)')
  end)

  it('PARAMS agrees with the C doc comments', function()
    local c = c_params()
    local differ = {}
    for name, n in pairs(PARAMS) do
      if c[name] and c[name] ~= n then
        differ[#differ + 1] = ('core.%s: %d here, %d in src'):format(name, n, c[name])
      end
    end
    for kind, methods in pairs(METHODS) do
      for name, n in pairs(methods) do
        local k = kind .. ':' .. name
        if c[k] and c[k] ~= n then
          differ[#differ + 1] = ('%s: %d here, %d in src'):format(k, n, c[k])
        end
      end
    end
    table.sort(differ)
    assert.same({}, differ)
  end)

  it('the fake has every other function, with the same parameters', function()
    local wrong = {}
    for _, name in ipairs(sorted_keys(PARAMS)) do
      local f = fake[name]
      if NO_FAKE[name] then
        if f ~= nil then
          wrong[#wrong + 1] = name .. ': the fake has it now; remove it from NO_FAKE'
        end
      elseif type(f) ~= 'function' then
        wrong[#wrong + 1] = name .. ': missing in the fake'
      else
        local n, vararg = nparams(f)
        if n ~= PARAMS[name] and not (vararg and n <= PARAMS[name]) then
          wrong[#wrong + 1] = ('%s: %d parameters in the fake, %d in the core'):format(name, n,
            PARAMS[name])
        end
      end
    end
    assert.same({}, wrong)
  end)

  it('the handles have the same methods, with the same parameters', function()
    local function methods(obj)
      local mt = getmetatable(obj)
      local idx = type(mt.__index) == 'table' and mt.__index or mt
      return idx
    end
    local rt = real.timer()
    local rp = assert(real.spawn({ 'true' }, {}, function() end))
    local rpr = assert(real.tcp_connect('127.0.0.1', 1, 100, function() end))
    local ft = fake.timer()
    local fp = assert(fake.spawn({ 'true' }, {}, function() end))
    local fpr = assert(fake.tcp_connect('127.0.0.1', 1, 100, function() end))
    local wrong = {}
    for kind, pair in pairs({ timer = { rt, ft }, proc = { rp, fp }, probe = { rpr, fpr } }) do
      local rm, fm = methods(pair[1]), methods(pair[2])
      for _, name in ipairs(sorted_keys(rm)) do
        if not name:match('^__') and type(rm[name]) == 'function' then
          local want = METHODS[kind][name]
          if want == nil then
            wrong[#wrong + 1] = ('%s:%s: not in METHODS'):format(kind, name)
          elseif type(fm[name]) ~= 'function' then
            wrong[#wrong + 1] = ('%s:%s: missing in the fake'):format(kind, name)
          else
            local n, vararg = nparams(fm[name])
            n = n - 1 -- self
            if n ~= want and not (vararg and n <= want) then
              wrong[#wrong + 1] = ('%s:%s: %d parameters in the fake, %d in the core'):format(
                kind, name, n, want)
            end
          end
        end
      end
    end
    rt:close()
    rp:close()
    rpr:close()
    fp:close()
    fpr:close()
    real.run() -- reap `true` and close the handles
    table.sort(wrong)
    assert.same({}, wrong)
  end)

  -- The same failure through both: nil, a message, an errno-style CODE, and the same CODE.
  local function same_failure(name, f_real, f_fake)
    local r = table.pack(f_real())
    local f = table.pack(f_fake())
    for which, v in pairs({ real = r, fake = f }) do
      assert.is_nil(v[1], ('%s (%s): not a failure'):format(name, which))
      assert.is_string(v[2], ('%s (%s): no message'):format(name, which))
      assert.matches('^E[A-Z]+$', v[3], nil, nil, ('%s (%s): a CODE'):format(name, which))
      -- spawn adds the step that failed (`stage`)
      assert.equal(name == 'spawn' and 4 or 3, v.n, ('%s (%s): nil, msg, CODE'):format(name,
        which))
    end
    assert.equal(r[3], f[3], name .. ': the same CODE')
  end

  it('fails the same way: nil, msg, CODE (and the stage, for spawn)', function()
    same_failure('getpwnam', function()
      return real.getpwnam('orch-no-such-user')
    end, function()
      return fake.getpwnam('orch-no-such-user')
    end)
    same_failure('kill', function()
      return real.kill(4000000, 'SIGTERM')
    end, function()
      return fake.kill(4000000, 'SIGTERM')
    end)
    -- the fake fails a spawn the way it is scripted to; the shape must still be the real one's
    fake.program('/nonexistent/orch-x', { spawn_error = {
      "spawn '/nonexistent/orch-x': no such file or directory", 'ENOENT' } })
    same_failure('spawn', function()
      return real.spawn({ '/nonexistent/orch-x' }, {}, function() end)
    end, function()
      return fake.spawn({ '/nonexistent/orch-x' }, {}, function() end)
    end)
  end)

  it('answers the same where the answer does not depend on the machine', function()
    for _, core in ipairs({ real, fake }) do
      assert.equal('SIGTERM', core.signame(15))
      assert.equal('SIGKILL', core.signame(9))
      assert.is_nil(core.signame(16))
      assert.equal(15, core.signum('TERM'))
      assert.equal(1, core.signum('SIGHUP'))
      assert.equal(9, core.signum(9))
      assert.has_error(function()
        core.signum('hup')
      end)
      assert.is_false(core.port_listening(1))
      assert.is_number(core.time())
      assert.is_number(core.getuid())
      assert.is_boolean(core.isatty(99))
      assert.is_table(core.environ())
    end
    assert.same({ 'SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGKILL', 'SIGUSR1', 'SIGUSR2', 'SIGTERM',
      'SIGCHLD', 'SIGSTOP', 'SIGWINCH' }, (function()
      local out = {}
      for _, n in ipairs({ 1, 2, 3, 9, 10, 12, 15, 17, 19, 28 }) do
        assert.equal(real.signame(n), fake.signame(n))
        out[#out + 1] = fake.signame(n)
      end
      return out
    end)())
  end)
end)
