--- orch.testing: test a main.lua in a simulated world, in milliseconds of CPU for hours of
-- virtual time. `orch test` runs specs with busted; a spec loads its main.lua into a world:
--
--     local testing = require 'orch.testing'
--     local w = testing.world('main.lua', { args = { '8080' }, behaviours = {
--       db = { crash_on = { 1, 2 } }, web = { listen = 8080, listen_after = 300 } } })
--     w:advance(10 * 60 * 1000)
--     w:restarted('db', 2)
--     w:ready_within('web', 5000)
--     w:stop()
--     w:stopped_before('web', 'db')
--
-- The world is `orch run` itself (orch.cli.run, the entries, graph and scheduler modules) on a
-- simulated core (orch.testing.fake_core); see orch.testing.world for driving it and
-- orch.testing.history for what it records. The assertion helpers below raise an error whose
-- message ends with the timeline of the entries involved.
-- @module orch.testing
local world = require 'orch.testing.world'
local history = require 'orch.testing.history'

local M = {}

M.fake_core = require 'orch.testing.fake_core'
M.history = history

-- Every world made since the last `forget_worlds` (orch test writes their logs when a test
-- fails).
local made = {}

local function exists(path)
  local f = io.open(path, 'r')
  if f then
    f:close()
    return true
  end
  return false
end

--- A new simulated world for `script` (see orch.testing.world `new` for `opts`), started:
-- main.lua is evaluated and its graph built at virtual time 0. A relative `script` not found
-- from the current directory is looked for next to the spec that calls this.
function M.world(script, opts)
  if type(script) == 'string' and script:sub(1, 1) ~= '/' and not exists(script) then
    local src = debug.getinfo(2, 'S').source
    local dir = src:sub(1, 1) == '@' and src:sub(2):match('^(.*)/[^/]*$')
    if dir and exists(dir .. '/' .. script) then
      script = dir .. '/' .. script
    end
  end
  local w = world.new(script, opts)
  made[#made + 1] = w
  local ok, err = pcall(w.start, w)
  if not ok then
    w:close() -- its data directory; the log so far stays readable
    error(err, 0)
  end
  return w
end

--- The worlds made since the last call, oldest first (and forget them).
function M.forget_worlds()
  local out = made
  made = {}
  return out
end

local World = world.World

-- Raise an assertion failure at the spec's line (a busted failure, not an error, under busted),
-- with the timeline of `ids`.
local function fail(w, ids, fmt, ...)
  local at = debug.getinfo(3, 'Sl')
  local msg = ('%s%s\ntimeline of %s:\n%s'):format(
    at and at.currentline > 0 and ('%s:%d: '):format(at.short_src, at.currentline) or '',
    fmt:format(...), table.concat(ids, ', '), w.history:table(ids))
  local busted = package.loaded['busted']
  if type(busted) == 'table' and type(busted.fail) == 'function' then
    busted.fail(msg, 0)
  end
  error(msg, 0)
end

--- The results of `id` over time (see orch.testing.history).
function World:results(id)
  return self.history:result_names(id)
end

--- The current result of `id` (its last logged state), or nil.
function World:result(id)
  return self.history:result(id)
end

--- The restarts of `id`: `{t, pid, delay}` per spawn after the first.
function World:restarts(id)
  return self.history:restarts(id)
end

--- The virtual time at which `id` first became `success`, or nil.
function World:ready_at(id)
  for _, r in ipairs(self.history:results(id)) do
    if r.result == 'success' then
      return r.t
    end
  end
  return nil
end

--- Assert that `id` became ready (`success`) within `ms` of virtual time from the start.
function World:ready_within(id, ms)
  local t = self:ready_at(id)
  if not t or t > ms then
    fail(self, { id }, '%s was not ready within %d ms (%s)', id, ms,
      t and ('ready at ' .. t .. ' ms') or 'never ready')
  end
  return t
end

--- Assert that `id` was restarted exactly `n` times (`{at_least = true}`: at least).
function World:restarted(id, n, opts)
  local got = #self:restarts(id)
  if got ~= n and not (opts and opts.at_least and got >= n) then
    fail(self, { id }, '%s was restarted %d times, expected %s%d', id, got,
      opts and opts.at_least and 'at least ' or '', n)
  end
  return got
end

--- Assert that `a` was stopped before `b`: the last process of `a` exited before orch sent
-- `b` its stop signal (or, when `b` was not running, before `b`'s last exit). Both must have
-- had a process (a health check has none: its stop is not observable).
function World:stopped_before(a, b)
  local ea, eb = self.history:exits(a), self.history:exits(b)
  for _, x in ipairs({ { a, ea }, { b, eb } }) do
    if #x[2] == 0 then
      fail(self, { a, b }, '%s was not stopped before %s: %s never had a process that exited',
        a, b, x[1])
    end
  end
  local a_gone = ea[#ea] and ea[#ea].t
  local terms = self.history:of(b, 'term')
  local b_stop = terms[#terms] and terms[#terms].t or (eb[#eb] and eb[#eb].t)
  if not a_gone or not b_stop or a_gone > b_stop then
    fail(self, { a, b }, '%s was not stopped before %s (%s gone at %s ms, %s stopped at %s ms)',
      a, b, a, tostring(a_gone), b, tostring(b_stop))
  end
  return true
end

--- Assert that no process of `id` was ever spawned.
function World:never_started(id)
  local s = self.history:spawns(id)
  if #s > 0 then
    fail(self, { id }, '%s was started %d times (first at %d ms)', id, #s, s[1].t)
  end
  return true
end

--- The timeline of `ids` (every entry when nil) as a text table.
function World:timeline(ids)
  return self.history:table(ids)
end

return M
