--- The timeline for a terminal: one line of Unicode blocks per entry (a cell per slice of
-- time, coloured by result on a TTY, a block shape per result otherwise), a line of marks under
-- it for spawns, exits, signals, restarts and requirements becoming ready, the time axis above
-- and a legend below. It fits `width` columns.
-- @module orch.timeline.term
local axis = require 'orch.timeline.axis'
local model = require 'orch.timeline.model'

local M = {}

-- Per result: the block without colour, and the ANSI colour.
local BLOCK = { success = '█', starting = '▓', loading = '▒', waiting = '░', failure = '╳',
  disabled = '─' }
local COLOR = { success = '32', starting = '33', loading = '35', waiting = '34', failure = '31',
  disabled = '90' }

-- Marks on the line under a row, by priority (the highest of a cell is shown).
local MARK = {
  ['gave-up'] = { '■', '1;31', 7 },
  crash = { '✗', '31', 6 },
  ['spawn-error'] = { '✗', '31', 6 },
  restart = { '↻', '35', 5 },
  signal = { '↯', '33', 4 },
  spawn = { '▲', '32', 3 },
  exit = { '▽', '90', 2 },
  ready = { '◆', '36', 1 },
}

local function paint(color, on, s)
  if not on or not color then
    return s
  end
  return '\27[' .. color .. 'm' .. s .. '\27[0m'
end

-- `s` cut or padded to `n` columns (ids are mostly ASCII: one column per code point).
local function fit(s, n)
  local len = utf8.len(s) or #s
  if len > n then
    local cut = utf8.offset(s, n) or n
    return s:sub(1, cut - 1) .. '…'
  end
  return s .. string.rep(' ', n - len)
end

-- The result shown in cell [a, b): failure when there is any, else the longest.
local function cell_result(spans, a, b)
  local cover, any_failure = {}, false
  for _, s in ipairs(spans) do
    if s.t1 > a and s.t0 < b then
      local d = math.min(s.t1, b) - math.max(s.t0, a)
      cover[s.result] = (cover[s.result] or 0) + d
      if s.result == 'failure' then
        any_failure = true
      end
    end
  end
  if any_failure then
    return 'failure'
  end
  local best, bd = nil, 0
  for r, d in pairs(cover) do
    if d > bd or (d == bd and best and r < best) then
      best, bd = r, d
    end
  end
  return best
end

-- `parts` joined by two spaces on lines of at most `width` visible columns.
local function wrap(parts, width, out)
  local line, len = {}, 0
  for _, p in ipairs(parts) do
    local plen = utf8.len((p:gsub('\27%[[%d;]*m', ''))) or #p
    if len > 0 and len + 2 + plen > width then
      out[#out + 1] = table.concat(line, '  ')
      line, len = {}, 0
    end
    line[#line + 1] = p
    len = len + (len > 0 and 2 or 0) + plen
  end
  if #line > 0 then
    out[#out + 1] = table.concat(line, '  ')
  end
end

--- The text of a model (orch.timeline.model). `opts`: `width` (columns, default 80), `color`
-- (ANSI colours).
function M.render(m, opts)
  opts = opts or {}
  local width = math.max(40, math.floor(opts.width or 80))
  local color = opts.color and true or false
  local longest = 4
  for _, row in ipairs(m.rows) do
    longest = math.max(longest, utf8.len(row.id) or #row.id)
  end
  local lw = math.min(longest, math.max(8, width // 4))
  local cols = width - lw - 2
  local t0, t1 = m.t0, m.t1
  local dt = (t1 - t0) / cols
  local function col(t) -- 1-based cell of time t
    return math.max(1, math.min(cols, math.floor((t - t0) / dt) + 1))
  end
  local out = {}
  local head = ('%s to %s UTC, %s, %d %s, %d restart%s'):format(model.clock(t0),
    model.clock(t1), model.duration(t1 - t0), #m.rows, #m.rows == 1 and 'entry' or 'entries',
    m.restarts, m.restarts == 1 and '' or 's')
  local long = 'orch timeline: ' .. os.date('!%Y-%m-%d ', math.floor(t0)) .. head
  head = #long <= width and long or fit(head, width):gsub('%s+$', '')
  out[#out + 1] = paint('1', color, head)
  -- the axis: labels where they fit, a tick mark under each
  local step = axis.step(t1 - t0, math.max(1, cols // 10))
  local labels, marks = {}, {}
  for i = 1, cols do
    labels[i], marks[i] = ' ', '─'
  end
  local free = 1
  for _, tk in ipairs(axis.ticks(t1 - t0, step)) do
    local c = col(t0 + tk.d)
    marks[c] = '┬'
    if c >= free and c + #tk.label - 1 <= cols then
      for k = 1, #tk.label do
        labels[c + k - 1] = tk.label:sub(k, k)
      end
      free = c + #tk.label + 1
    end
  end
  out[#out + 1] = (string.rep(' ', lw + 2) .. table.concat(labels)):gsub('%s+$', '')
  out[#out + 1] = string.rep(' ', lw + 2) .. paint('90', color, table.concat(marks))
  -- arrows become marks on the dependent's line
  local ready = {}
  for _, a in ipairs(m.arrows) do
    ready[a.to] = ready[a.to] or {}
    ready[a.to][#ready[a.to] + 1] = { t = a.t, kind = 'ready' }
  end
  for _, row in ipairs(m.rows) do
    local cells = {}
    for i = 1, cols do
      local r = cell_result(row.spans, t0 + (i - 1) * dt, t0 + i * dt)
      if not r then
        cells[i] = ' '
      elseif color then
        cells[i] = paint(COLOR[r], true, '█')
      else
        cells[i] = BLOCK[r] or '?'
      end
    end
    out[#out + 1] = fit(row.id, lw) .. '  ' .. table.concat(cells)
    local best = {}
    local function mark(t, kind)
      local c = col(t)
      if MARK[kind] and (not best[c] or MARK[kind][3] > MARK[best[c]][3]) then
        best[c] = kind
      end
    end
    for _, tk in ipairs(row.ticks) do
      mark(tk.t, tk.kind)
    end
    for _, a in ipairs(ready[row.id] or {}) do
      mark(a.t, 'ready')
    end
    if next(best) then
      local line = {}
      for i = 1, cols do
        local k = best[i]
        line[i] = k and paint(MARK[k][2], color, MARK[k][1]) or ' '
      end
      out[#out + 1] = string.rep(' ', lw + 2) .. table.concat(line):gsub('%s+$', '')
    end
  end
  -- legend
  local parts = {}
  for _, r in ipairs(model.RESULTS) do
    parts[#parts + 1] = (color and paint(COLOR[r], true, '█') or BLOCK[r]) .. ' ' .. r
  end
  wrap(parts, width, out)
  parts = {}
  for _, k in ipairs({ { 'spawn', 'spawn' }, { 'exit', 'exit' }, { 'crash', 'failed' },
    { 'signal', 'signal sent' }, { 'restart', 'liveness restart' }, { 'gave-up', 'gave up' },
    { 'ready', 'requirement ready' } }) do
    parts[#parts + 1] = paint(MARK[k[1]][2], color, MARK[k[1]][1]) .. ' ' .. k[2]
  end
  wrap(parts, width, out)
  return table.concat(out, '\n') .. '\n'
end

return M
