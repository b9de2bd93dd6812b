--- An `orch.core` look-alike with a virtual clock and scripted processes: the simulated world
-- of `orch test` (orch.testing) and of the project's own unit specs (spec/support/fake_core.lua
-- returns this module). Install it before any orch module is required (sched requires
-- orch.core at load):
--
--     insulate('...', function()
--       local fake = require('orch.testing.fake_core').new()
--       package.loaded['orch.core'] = fake
--       local orch = require 'orch'
--       ...
--
-- Time is virtual: `run()` fires timers in due order (ties in start order) and jumps the clock,
-- so a 30 s backoff costs nothing. Callbacks (timers, exits, output, probes) are delivered from
-- `run()`, never synchronously from the call that caused them, as libuv does.
--
-- The parts, each installed into every new fake (under orch.testing.fake_core.*):
--   clock     timers, run/step/stop, now/hrtime
--   preempt   core.preempt, the hook that stands in for src/preempt.c
--   system    environment, users, time, signals (signame, raise), random, mkdir, sd_notify
--   programs  the scripts of processes: `fake:program(name, behaviour)` and the behaviours
--   procs     spawn, the process handle, kill, and the listings specs read
--   probes    port_listening, http_get, tcp_connect and their scripts
--   cgroups   the cgroup v2 tree of process tracking and exec.limits (none until cgroup_root)
-- @module orch.testing.fake_core
local cgroups = require 'orch.testing.fake_core.cgroups'
local clock = require 'orch.testing.fake_core.clock'
local preempt = require 'orch.testing.fake_core.preempt'
local probes = require 'orch.testing.fake_core.probes'
local procs = require 'orch.testing.fake_core.procs'
local programs = require 'orch.testing.fake_core.programs'
local system = require 'orch.testing.fake_core.system'

local M = {}

--- The port of an http(s) URL (explicit, else 80/443), or nil.
M.url_port = probes.url_port

-- Empty `state` and give it the fields of a fresh world, in place: every part holds this one
-- table. Fields a part creates when first needed (default, on_receive, dirs, spawn_errors,
-- port_checks) start absent.
local function fresh(state)
  for k in pairs(state) do
    state[k] = nil
  end
  -- clock: the armed timers by (due, seq) in a heap (stale entries are skipped)
  state.now, state.seq, state.timers, state.stopped = 0, 0, {}, false
  state.heap, state.hn = {}, 0
  state.limit, state.max_events = 12 * 3600 * 1000, 300000
  -- programs and procs
  state.programs, state.by_entry, state.patterns = {}, {}, {}
  state.procs, state.by_pid, state.counts, state.pid, state.ports = {}, {}, {}, 1000, {}
  -- probes
  state.port_override, state.http, state.tcp, state.probes = {}, {}, {}, {}
  -- system
  state.notify, state.signals, state.random, state.env = {}, {}, 0x2545F491, {}
  for k, v in pairs(system.DEFAULT_ENV) do
    state.env[k] = v
  end
end

-- The test's controls, callable as functions or as methods (`fake.program(...)`,
-- `fake:program(...)`); orch.core's own functions are only ever called as functions.
local CONTROLS = { 'program', 'program_entry', 'program_pattern', 'program_default', 'procs',
  'spawn_times', 'on_receive', 'set_port', 'set_http', 'set_tcp', 'setenv', 'raise',
  'cgroup_root' }

-- `f` taking the same arguments whether it is called as `fake.f(...)` or `fake:f(...)`.
local function either(fake, f)
  return function(a, ...)
    if a == fake then
      return f(...)
    end
    return f(a, ...)
  end
end

--- A new simulated core: the functions of `orch.core` and the test's controls (`program`,
-- `procs`, `set_http`, `reset`...), on a world of its own.
function M.new()
  local fake = {}
  local state = {}

  --- Forget everything: clock to 0, no timers, no processes, no scripts.
  function fake.reset()
    fresh(state)
  end
  fake.reset()

  clock.install(fake, state) -- first: the other parts schedule with fake._at
  preempt.install(fake)
  system.install(fake, state)
  programs.install(fake, state)
  procs.install(fake, state)
  probes.install(fake, state)
  cgroups.install(fake)
  for _, name in ipairs(CONTROLS) do
    fake[name] = either(fake, fake[name])
  end

  fake.is_fake = true
  return fake
end

return M
