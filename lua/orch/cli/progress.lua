--- The start-up progress line of `orch run` on a terminal: entries ready out of total and
-- what is still being waited on, on one line below the log that every log write moves down
-- (cleared, written, drawn again) and that is cleared for good once everything is ready.
-- @module orch.cli.progress
local M = {}

local CLEAR = '\r\27[K'

--- The line for a sink snapshot (orch.status `Sink:snapshot()`), at most `cols - 1` columns
-- (the last column would wrap on some terminals).
function M.text(snap, cols)
  local ready, waiting = 0, {}
  for _, e in ipairs(snap) do
    if e.result == 'success' then
      ready = ready + 1
    else
      local what = tostring(e.id) .. ' (' .. tostring(e.result or 'pending')
      if e.waitingOn and #e.waitingOn > 0 then
        what = what .. ': ' .. table.concat(e.waitingOn, ',')
      end
      waiting[#waiting + 1] = what .. ')'
    end
  end
  local s = ('orch: starting, %d/%d ready; waiting on %s'):format(ready, #snap,
    table.concat(waiting, ', '))
  s = s:gsub('[%c]', ' ')
  local max = math.max(10, (cols or 80) - 1)
  if #s > max then
    s = s:sub(1, max - 3) .. '...'
  end
  return s
end

--- A progress line over `put(s)` (the terminal) for `sink`; `cols()` gives the width.
-- `p.write(s)` is what the log writes through; `p.update()` after a change; `p.finish()`
-- clears it for good.
function M.new(put, sink, cols)
  local p = { line = nil, done = false }
  function p.write(s)
    if p.line then
      put(CLEAR)
    end
    put(s)
    if p.line then
      put('\27[2m' .. p.line .. '\27[0m')
    end
  end
  function p.finish()
    if p.line then
      put(CLEAR)
    end
    p.line, p.done = nil, true
  end
  function p.update()
    if p.done then
      return
    end
    local ready, total = sink:counts()
    if total > 0 and ready == total then
      return p.finish()
    end
    local new = M.text(sink:snapshot(), cols())
    if new ~= p.line then
      p.line = new
      put(CLEAR .. '\27[2m' .. new .. '\27[0m')
    end
  end
  return p
end

return M
