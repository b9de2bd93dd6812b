--- The scripts of the fake core's processes (orch.testing.fake_core). Processes are scripted
-- per command with `fake:program(name, behaviour)`; `name` matches the whole argv joined by
-- spaces, else argv[1], else the script of `/bin/sh -c <script>`. Before that,
-- `fake:program_entry(id, behaviour)` scripts the processes of one entry (the `name` of the
-- spawn: orch.process passes the entry id), and after it `fake:program_pattern(pat, behaviour)`
-- (a Lua pattern on the argv joined by spaces, first added first), then
-- `fake:program_default(behaviour)`; without any a process runs until signalled.
-- A behaviour is a function `(p)` (p: a process, see orch.testing.fake_core.procs) or a table:
--   exit = ms, code = n, signal = 'SIGX'   exit after ms (nil: run until signalled)
--   stdout = string|{...}, stderr = ...     written at spawn, or `output_after` ms later
--   listen = port, listen_after = ms        the port counts as listening while alive
--   on_term = 'die' (default) | 'ignore' | ms   reaction to SIGTERM; with ms, exit ms later
--     with `term_code` (default 0), or by SIGTERM when term_code is nil and term_signal is set
--   spawn_error = {msg, code}              core.spawn fails
--   runs = {b1, b2, ...}                    one behaviour per spawn of this name (last repeats)
--   crash_on = n | {n, ...}, crash_after = ms   the nth spawn(s) exit 1 after ms (default 100)
--   http = status                           what an HTTP GET to a port it listens on answers
--                                           (default 200 while listening)
--   notify = ms, notify_message = text      send sd_notify (default READY=1) after ms to the
--                                           NOTIFY_SOCKET of its environment
--   memory = MiB, memory_after = ms         its memory use: above the `memory.max` of its
--                                           cgroup (exec.limits.memory), the OOM killer
--                                           SIGKILLs it (ms after the spawn)
-- @module orch.testing.fake_core.programs
local M = {}

--- The function `(p)` that plays behaviour `b` on a new process `p` (a function stays itself;
-- nil: none, the process runs until signalled).
function M.compile(b)
  if type(b) == 'function' or b == nil then
    return b
  end
  return function(p)
    if b.runs then
      local sub = b.runs[math.min(p.n, #b.runs)]
      local f = M.compile(sub)
      if f then
        f(p)
      end
      return
    end
    local function output()
      for _, stream in ipairs { 'stdout', 'stderr' } do
        local out = b[stream]
        if type(out) == 'string' then
          p:write(stream, out)
        elseif type(out) == 'table' then
          for _, c in ipairs(out) do
            p:write(stream, c)
          end
        end
      end
    end
    if (b.output_after or 0) > 0 then
      p:after(b.output_after, output)
    else
      output()
    end
    if b.listen then
      if b.listen_after and b.listen_after > 0 then
        p:after(b.listen_after, function()
          p:listen(b.listen)
        end)
      else
        p:listen(b.listen)
      end
    end
    p.http, p.memory = b.http, b.memory
    if b.notify then
      p:after(b.notify, function()
        p:notify(b.notify_message or 'READY=1')
      end)
    end
    local crash = b.crash_on
    if type(crash) == 'number' then
      crash = { crash }
    end
    for _, k in ipairs(crash or {}) do
      if k == p.n then
        p:after(b.crash_after or 100, function()
          p:exit(1, nil)
        end)
      end
    end
    if b.exit then
      p:after(b.exit, function()
        p:exit(b.code or (b.signal == nil and 0 or nil), b.signal)
      end)
    end
    local on_term = b.on_term or 'die'
    if on_term ~= 'die' then
      p.on_signal = function(q, sig)
        if sig ~= 'SIGTERM' then
          q:exit(nil, sig)
        elseif type(on_term) == 'number' and not q.term_pending then
          q.term_pending = true
          q:after(on_term, function()
            if b.term_code == nil and b.term_signal then
              q:exit(nil, b.term_signal)
            else
              q:exit(b.term_code or 0, nil)
            end
          end)
        end
      end
    end
  end
end

-- The name `argv` is scripted under, else the name it counts its spawns under.
local function key_of(state, argv)
  local joined = table.concat(argv, ' ')
  if state.programs[joined] then
    return joined
  end
  if state.programs[argv[1]] then
    return argv[1]
  end
  if (argv[1] == '/bin/sh' or argv[1] == 'sh') and argv[2] == '-c' and argv[3]
    and state.programs[argv[3]] then
    return argv[3]
  end
  if (argv[1] == '/bin/sh' or argv[1] == 'sh') and argv[2] == '-c' and argv[3] then
    return argv[3]
  end
  return argv[1]
end

--- The key and behaviour of a spawn (`argv`, `opts`) in the scripts of `state`: by entry, by
-- command, by pattern, the default.
function M.behaviour_of(state, argv, opts)
  if opts.name ~= nil and state.by_entry[opts.name] ~= nil then
    return 'entry:' .. opts.name, state.by_entry[opts.name]
  end
  local key = key_of(state, argv)
  if state.programs[key] ~= nil then
    return key, state.programs[key]
  end
  local joined = table.concat(argv, ' ')
  for _, pb in ipairs(state.patterns) do
    if joined:find(pb[1]) then
      return 'pattern:' .. pb[1], pb[2]
    end
  end
  return key, state.default
end

--- Add the scripting calls to `fake`; `state` is the fake's shared state (its fields here:
-- programs, by_entry, patterns, default).
function M.install(fake, state)
  --- Script the processes started as `name` (see the module doc).
  function fake.program(name, behaviour)
    state.programs[name] = behaviour
  end

  --- Script the processes of entry `id` (the `name` a spawn carries).
  function fake.program_entry(id, behaviour)
    state.by_entry[id] = behaviour
  end

  --- Script the processes whose argv, joined by spaces, matches the Lua pattern `pat`.
  function fake.program_pattern(pat, behaviour)
    for _, pb in ipairs(state.patterns) do
      if pb[1] == pat then
        pb[2] = behaviour
        return
      end
    end
    state.patterns[#state.patterns + 1] = { pat, behaviour }
  end

  --- The behaviour of a process nothing else scripts.
  function fake.program_default(behaviour)
    state.default = behaviour
  end
end

return M
