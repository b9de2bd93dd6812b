--- Health-check helpers for `ready.fn` (the SDK's `sdk.healthCheck`), on the C probes.
-- Each returns a result table `{result = 'success'|'failure', message = ...}`; `runHealthScript`
-- raises `{result = 'failure', message = errorMessage}` on failure, as upstream. The SDK's
-- leading `effects` argument is accepted and ignored, so TypeScript code ports line for line.
-- The probes that wait (`checkWebUrl`, `runHealthScript`) yield, and their handles are
-- `<close>` variables: when the probe task is cancelled (the entry stopped) they are closed at
-- once.
-- @module orch.healthCheck
local core = require 'orch.core'
local sched = require 'orch.runtime.sched'
local process = require 'orch.runtime.process'
local util = require 'orch.runtime.util'
local subcontainer = require 'orch.subcontainer'

local M = {}

--- `checkWebUrl`'s default timeout (ms), as upstream; the core has none of its own.
M.WEB_TIMEOUT = 1000
--- `runHealthScript`'s default timeout (ms), as upstream.
M.SCRIPT_TIMEOUT = 30000

local function check_keys(fname, opts, valid, level)
  if opts == nil then
    return {}
  end
  if type(opts) ~= 'table' then
    util.bad_argument(2, fname, 'table expected, got ' .. type(opts), level + 1)
  end
  for k in pairs(opts) do
    if not util.contains(valid, k) then
      local near = util.nearest(k, valid)
      util.bad_argument(2, fname, ('unknown option %s%s'):format(tostring(k),
        near and (' (did you mean ' .. near .. '?)') or ''), level + 1)
    end
  end
  return opts
end

-- Drop a leading effects table (the SDK passes it first).
local function args(first, ...)
  if type(first) == 'table' and getmetatable(first) == nil and select('#', ...) >= 1
    and (type(first.setHealth) == 'function' or next(first) == nil
      or first.onState ~= nil) then
    return ...
  end
  return first, ...
end

-- `orch export` describes a ready.fn by calling it in a task whose scope holds a recorder
-- (`describe_probe`): a helper then hands the recorder what it would check and returns the
-- recorder's result at once, probing nothing. Outside export nothing changes.
local function recorder()
  local scope = sched.scope()
  return type(scope) == 'table' and scope.describe_probe or nil
end

local function check_ms(fname, v, level)
  local bad = v ~= nil and util.check_ms(v, 1)
  if bad == 'type' then
    util.bad_argument(2, fname, 'timeout must be a positive integer (ms)', level + 1)
  elseif bad then
    util.bad_argument(2, fname, ('timeout must be at most %d ms'):format(util.MAX_MS), level + 1)
  end
end

--- Whether something listens on `port`: a TCP socket in LISTEN state or a bound UDP socket, on
-- any IPv4 or IPv6 address (DECISIONS). The check reads `/proc/net` synchronously, so it cannot
-- hang; `timeout`/`timeoutMessage` are accepted for compatibility.
-- @int port
-- @tparam[opt] table opts `{successMessage, errorMessage, timeoutMessage, timeout}`
-- @treturn table result
function M.checkPortListening(...)
  local port, opts = args(...)
  if math.type(port) ~= 'integer' or port < 1 or port > 65535 then
    util.bad_argument(1, 'checkPortListening', 'port 1..65535 expected, got ' .. tostring(port))
  end
  opts = check_keys('checkPortListening', opts,
    { 'successMessage', 'errorMessage', 'timeoutMessage', 'timeout' }, 2)
  check_ms('checkPortListening', opts.timeout, 2)
  local rec = recorder()
  if rec then
    return rec({ helper = 'checkPortListening', port = port })
  end
  local ok = core.port_listening(port)
  if ok then
    return { result = 'success', message = opts.successMessage or ('Port %d is listening'):format(
      port) }
  end
  return { result = 'failure', message = opts.errorMessage or ('Port %d is not listening'):format(
    port) }
end

local HOLDER = { __close = function(self)
  if self.probe then
    self.probe:close()
  end
end }

local function status_matches(expect, status)
  if expect == nil then
    return true
  end
  if type(expect) == 'number' then
    return status == expect
  end
  for _, s in ipairs(expect) do
    if s == status then
      return true
    end
  end
  return false
end

--- GET `url` (yields): any HTTP response is a success (upstream), unless `expectStatus` (a
-- status or a list of statuses) says otherwise; a network error or the timeout is a failure.
-- @string url http or https
-- @tparam[opt] table opts `{timeout = 1000, successMessage = 'Reached <url>',
--   errorMessage = 'Error while fetching URL: <url>', expectStatus, insecure = false}`
-- @treturn table result
-- @async
function M.checkWebUrl(...)
  local url, opts = args(...)
  if type(url) ~= 'string' or url == '' then
    util.bad_argument(1, 'checkWebUrl', 'URL string expected, got ' .. type(url))
  end
  opts = check_keys('checkWebUrl', opts,
    { 'timeout', 'successMessage', 'errorMessage', 'expectStatus', 'insecure' }, 2)
  check_ms('checkWebUrl', opts.timeout, 2)
  local expect = opts.expectStatus
  if expect ~= nil and math.type(expect) ~= 'integer' and not util.is_sequence(expect) then
    util.bad_argument(2, 'checkWebUrl', 'expectStatus must be a status or a list')
  end
  local rec = recorder()
  if rec then
    return rec({ helper = 'checkWebUrl', url = url, expectStatus = util.deep_copy(expect),
      timeout = opts.timeout or M.WEB_TIMEOUT, insecure = opts.insecure or false })
  end
  local err_msg = opts.errorMessage or ('Error while fetching URL: ' .. url)
  -- the probe handle lives in `holder`, closed with it when the task ends or is cancelled
  local holder <close> = setmetatable({}, HOLDER)
  local status = sched.await(function(done)
    local h, msg, code = core.http_get(url, {
      timeout = opts.timeout or M.WEB_TIMEOUT,
      insecure = opts.insecure or false,
    }, done)
    if not h then
      done(nil, 0, msg, code)
    else
      holder.probe = h
    end
  end, 'checkWebUrl')
  if not status then
    return { result = 'failure', message = err_msg }
  end
  if not status_matches(expect, status) then
    return { result = 'failure', message = ('%s (HTTP %d)'):format(err_msg, status) }
  end
  return { result = 'success', message = opts.successMessage or ('Reached ' .. url) }
end

--- Run a command (yields); exit 0 within `timeout` is a success whose message is
-- `message(stdout)`; otherwise raise `{result = 'failure', message = errorMessage}`.
-- `runHealthScript(argv, [subcontainer,] opts)`: a SubContainer runs it inside (its `exec`); a
-- plain subcontainer table gives env/user/workdir.
-- @tparam string|{string,...} argv a string runs under /bin/sh -c
-- @tparam[opt] table opts `{timeout = 30000, errorMessage = 'Error while running command: <argv>',
--   message = function(stdout) return 'Have ran script <argv> and the result: ' .. stdout end}`
-- @treturn table result
-- @raise `{result = 'failure', message = errorMessage}`
-- @async
function M.runHealthScript(...)
  local argv, a, b = args(...)
  local sub, opts = nil, a
  if b ~= nil or (type(a) == 'table' and getmetatable(a) ~= nil) then
    sub, opts = a, b
  end
  if not (type(argv) == 'string' and argv ~= '') and not (util.is_sequence(argv) and #argv > 0) then
    util.bad_argument(1, 'runHealthScript', 'command string or list expected')
  end
  opts = check_keys('runHealthScript', opts, { 'timeout', 'errorMessage', 'message' }, 2)
  check_ms('runHealthScript', opts.timeout, 2)
  local shown = util.js_join(argv)
  local err_msg = opts.errorMessage or ('Error while running command: ' .. shown)
  local env
  if sub and type(sub.env) == 'table' then
    env = sub.env
  end
  local rec = recorder()
  if rec then
    local inside = subcontainer.is(sub) -- runs in that subcontainer's image
    return rec({ helper = 'runHealthScript', command = util.deep_copy(argv),
      timeout = opts.timeout or M.SCRIPT_TIMEOUT, env = util.deep_copy(env),
      user = not inside and sub and sub.user or nil,
      workdir = not inside and sub and sub.workdir or nil,
      image = inside and sub:describe().imageId or nil })
  end
  local res
  if subcontainer.is(sub) then -- inside it, as its exec
    local ok, r = pcall(sub.exec, sub, argv, {}, opts.timeout or M.SCRIPT_TIMEOUT)
    res = ok and { exitCode = r.exitCode, timedOut = r.exitSignal == 'SIGKILL',
      stdout = r.stdout } or nil
  else
    res = process.exec(argv, {
      timeout = opts.timeout or M.SCRIPT_TIMEOUT,
      env = env,
      user = sub and sub.user or nil,
      cwd = sub and sub.workdir or nil,
    })
  end
  if not res or res.timedOut or res.exitCode ~= 0 then
    error({ result = 'failure', message = err_msg }, 0)
  end
  local message
  if type(opts.message) == 'function' then
    message = opts.message(res.stdout)
  elseif type(opts.message) == 'string' then
    message = opts.message
  else
    message = ('Have ran script %s and the result: %s'):format(shown, res.stdout)
  end
  return { result = 'success', message = message }
end

return M
