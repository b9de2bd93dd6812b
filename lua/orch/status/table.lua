--- The state of every entry as an aligned table (the SIGQUIT/SIGUSR1 dump of `orch run`).
-- Takes a sink snapshot (orch.status): `uptime` in milliseconds.
-- @module orch.status.table

local M = {}

local function fmt_duration(ms)
  if not ms then
    return '-'
  end
  local s = ms // 1000
  if s < 60 then
    return ('%ds'):format(s)
  elseif s < 3600 then
    return ('%dm%02ds'):format(s // 60, s % 60)
  end
  return ('%dh%02dm'):format(s // 3600, (s % 3600) // 60)
end

local function fmt_exit(x)
  if not x then
    return '-'
  end
  if x.error then
    return 'spawn error'
  end
  if x.signal then
    return tostring(x.signal)
  end
  return 'code ' .. tostring(x.code)
end

--- Render a snapshot as an aligned table (for the SIGQUIT dump and `orch status`).
function M.format(snap)
  local rows = { { 'ID', 'KIND', 'STATE', 'PID', 'UPTIME', 'RESTARTS', 'LAST EXIT', 'MESSAGE' } }
  for _, s in ipairs(snap) do
    local msg = s.message or ''
    if s.result == 'waiting' and #s.waitingOn > 0 and msg == '' then
      msg = 'waiting for ' .. table.concat(s.waitingOn, ', ')
    end
    rows[#rows + 1] = {
      s.id,
      s.kind or '-',
      s.result or 'none',
      s.pid and tostring(s.pid) or '-',
      fmt_duration(s.uptime),
      tostring(s.restarts or 0),
      fmt_exit(s.lastExit),
      (msg:gsub('\n', ' ')),
    }
  end
  local widths = {}
  for _, row in ipairs(rows) do
    for i, cell in ipairs(row) do
      widths[i] = math.max(widths[i] or 0, #cell)
    end
  end
  local lines = {}
  for _, row in ipairs(rows) do
    local cells = {}
    for i, cell in ipairs(row) do
      cells[i] = i < #row and (cell .. string.rep(' ', widths[i] - #cell)) or cell
    end
    lines[#lines + 1] = (table.concat(cells, '  '):gsub('%s+$', ''))
  end
  return table.concat(lines, '\n') .. '\n'
end

return M
