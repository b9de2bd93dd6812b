--- The table `orch status` prints, from a `status` reply of the control socket (or anything of
-- its shape: `orch` with `name`, `pid`, `phase`, `uptime`, `ready`, `total`, and `entries` as
-- in `orch.status.json_view`). Every duration is in milliseconds.
-- @module orch.control.render
local core = require 'orch.core'
local time = require 'orch.runtime.time'

local M = {}

--- A duration in ms, shortly: `42s`, `3m07s`, `2h05m`, `3d04h`; `-` for nil.
function M.duration(ms)
  if not ms then
    return '-'
  end
  local s = math.max(0, math.floor(ms / 1000))
  if s < 60 then
    return ('%ds'):format(s)
  elseif s < 3600 then
    return ('%dm%02ds'):format(s // 60, s % 60)
  elseif s < 86400 then
    return ('%dh%02dm'):format(s // 3600, (s % 3600) // 60)
  end
  return ('%dd%02dh'):format(s // 86400, (s % 86400) // 3600)
end

-- The last exit, with its age when `now_ms` (wall clock) is known.
local function last_exit(x, now_ms)
  if type(x) ~= 'table' then
    return '-'
  end
  local what
  if x.error then
    what = 'spawn error'
  elseif x.signal then
    what = tostring(x.signal)
  elseif x.code then
    what = 'code ' .. tostring(x.code)
  else
    what = 'exited'
  end
  local t = time.parse_iso(x.time)
  if t and now_ms then
    what = what .. ', ' .. M.duration(now_ms - t * 1000) .. ' ago'
  end
  return what
end

local STATE_COLORS = {
  success = '32', failure = '31', starting = '33', loading = '33', waiting = '36',
  disabled = '2',
}

local function one_line(s)
  return (tostring(s or ''):gsub('[%c]+', ' '))
end

local function row_of(e, now, elapsed)
  local state = e.result or 'none'
  if e.failed then -- gave up restarting (issue 14): stays down until orch restart
    state = 'failed'
  elseif e.blocked then
    state = 'blocked'
  end
  local health = type(e.health) == 'table' and e.health or nil
  if health and health.result and health.result ~= (e.result or 'none') then
    state = ('%s (%s)'):format(state, health.result)
  end
  local waiting = '-'
  if (e.result == 'waiting' or e.result == 'starting') and type(e.waitingOn) == 'table'
    and #e.waitingOn > 0 then
    waiting = table.concat(e.waitingOn, ', ')
  elseif type(e.blocked) == 'string' then
    waiting = e.blocked .. ' (failed)'
  end
  return {
    one_line(e.id),
    one_line(e.kind or '-'),
    one_line(state),
    e.pid and tostring(e.pid) or '-',
    e.uptime and M.duration(e.uptime + elapsed) or '-',
    tostring(e.restarts or 0),
    last_exit(e.lastExit, now),
    one_line(waiting),
    one_line((health and health.message) or e.message or ''),
  }
end

--- Render a `status` reply as an aligned table. `opts`: `color` (bool), `now` (wall clock in
-- ms since the epoch, for the age of last exits; default now), `elapsed` (ms since the reply
-- came, added to uptimes), `header` (default true).
function M.status(reply, opts)
  opts = opts or {}
  local now = opts.now or core.time() * 1000
  local elapsed = opts.elapsed or 0
  local color = opts.color
  local function paint(code, s)
    if color and code then
      return '\27[' .. code .. 'm' .. s .. '\27[0m'
    end
    return s
  end
  local out = {}
  local o = reply.orch or {}
  if opts.header ~= false then
    local up = o.uptime and M.duration(o.uptime + elapsed) or '?'
    out[#out + 1] = paint('1', ('orch %s (pid %s): %s, up %s, %s/%s ready'):format(
      tostring(o.name or '?'), tostring(o.pid or '?'), tostring(o.phase or '?'), up,
      tostring(o.ready or '?'), tostring(o.total or '?'))) .. '\n'
    local lr = type(o.lastReload) == 'table' and o.lastReload
    if lr then
      local msg = tostring(lr.message or ''):match('^[^\n]*')
      out[#out + 1] = (lr.ok and 'last reload: %s\n' or paint('31', 'last reload failed: %s')
        .. '\n'):format(msg)
    end
  end
  local rows = { { 'ID', 'KIND', 'STATE', 'PID', 'UPTIME', 'RESTARTS', 'LAST EXIT', 'WAITING ON',
    'MESSAGE' } }
  local states = {}
  for _, e in ipairs(reply.entries or {}) do
    rows[#rows + 1] = row_of(e, now, elapsed)
    states[#rows] = e.result
  end
  local widths = {}
  for _, row in ipairs(rows) do
    for i, cell in ipairs(row) do
      widths[i] = math.max(widths[i] or 0, utf8.len(cell) or #cell)
    end
  end
  for r, row in ipairs(rows) do
    local cells = {}
    for i, cell in ipairs(row) do
      local pad = i < #row and string.rep(' ', widths[i] - (utf8.len(cell) or #cell)) or ''
      if r == 1 then
        cell = paint('1', cell)
      elseif i == 3 then
        cell = paint(STATE_COLORS[states[r]], cell)
      end
      cells[i] = cell .. pad
    end
    out[#out + 1] = (table.concat(cells, '  '):gsub('%s+$', '')) .. '\n'
  end
  return table.concat(out)
end

return M
