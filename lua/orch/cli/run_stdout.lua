--- orch run's own stdout (the log, the progress line), written by a thread of the core
-- (core.outbuf) through a buffer of `BUFFER` bytes, so that a consumer that stops reading never
-- stops orch's loop and with it the reading of every daemon's output. A full buffer waits for
-- a consumer that reads, however slowly (back-pressure, nothing lost); one that took nothing
-- for `STALL_MS` is stalled: lines are dropped whole and counted, without waiting, until it
-- reads again, and then a warning says how many were lost (on stdout and in orch.log).
-- Installed as methods of orch.cli.run's Run.
-- @module orch.cli.run_stdout
local util = require 'orch.runtime.util'
local core = require 'orch.core'

local M = {}

--- Bytes of orch's stdout held while its consumer does not keep up.
M.BUFFER = 4 * 1024 * 1024

--- A consumer that takes nothing for this long while the buffer is full is stalled (ms).
M.STALL_MS = 250

--- How long orch waits at exit for what is still held to be written (ms).
M.CLOSE_MS = 2000

-- The methods this file adds (`install` copies them onto the class).
local Run = {}

--- Open the writer of fd 1. Without one (no core.outbuf, or no thread: a seccomp filter that
-- fails clone3, as spawn_cgroup_spec sets up) orch writes its stdout itself, blocking, and says
-- so on stderr.
function Run:open_stdout()
  if not core.outbuf then
    return
  end
  local ob, why = core.outbuf(1, M.BUFFER)
  if not ob then
    io.stderr:write(('orch: warning: %s: stdout is written directly (a reader that stops '
      .. 'reading stops orch)\n'):format(tostring(why)))
    return
  end
  self.stdout, self.told_lines, self.told_bytes = ob, 0, 0
end

-- Say once, when there is room again, how much was dropped since the last time.
function Run:_tell_dropped(st)
  local lines, bytes = st.dropped_lines - self.told_lines, st.dropped_bytes - self.told_bytes
  self.told_lines, self.told_bytes = st.dropped_lines, st.dropped_bytes
  self.dropping = nil
  self:log(('stdout was not read fast enough: %d lines (%d bytes) of output dropped'):format(
    lines, bytes), 'warning')
end

--- Write `s` (whole lines, or the progress line) to orch's stdout; never blocks.
function Run:put_stdout(s)
  local ob = self.stdout
  if not ob then
    pcall(io.stdout.write, io.stdout, s)
    pcall(io.stdout.flush, io.stdout)
    return
  end
  if self.dropping then
    local st = ob:stats()
    if st.error then
      return ob:write(s) -- nobody reads any more: counted, never said
    elseif st.queued + #s + 256 > M.BUFFER then
      ob:write(s, M.STALL_MS) -- queued if it reads again, else dropped and counted at once
      return
    end
    self:_tell_dropped(st)
  end
  if not ob:write(s, M.STALL_MS) then
    self.dropping = true
  end
end

--- Write what is held (waiting up to `CLOSE_MS`), then stop the writer.
function Run:close_stdout()
  local ob = self.stdout
  self.stdout = nil
  if ob then
    ob:close(M.CLOSE_MS)
  end
end

--- Add the methods (`open_stdout`, `put_stdout`, `close_stdout`) to the class `Run`.
function M.install(class)
  util.assign(class, Run)
end

return M
