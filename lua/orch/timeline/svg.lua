--- The timeline as SVG: a self-contained picture a browser opens. One row per entry: a band
-- coloured by result, under it a line while a process runs, ticks for spawns, exits, signals,
-- restarts; arrows where a requirement became ready; orch's messages on a row of their own; a
-- time axis above and below, and a legend. Everything has a tooltip (`<title>`).
--
-- Spans and ticks narrower than a pixel or two are merged (the more alarming result wins), so
-- an hour of a crash loop stays a picture, and a file of reasonable size.
-- @module orch.timeline.svg
local axis = require 'orch.timeline.axis'
local model = require 'orch.timeline.model'

local M = {}

--- The colour of each result.
M.COLORS = {
  success = '#2da44e',
  starting = '#e3a008',
  waiting = '#8fb3de',
  failure = '#d1242f',
  loading = '#a371f7',
  disabled = '#afb8c1',
}

local ROW, BAND_TOP, BAND_H, PROC_Y = 32, 5, 12, 20
local CHAR_W = 7.3
local FONT = 'ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace'

local function esc(s)
  return (tostring(s):gsub('[&<>"]', { ['&'] = '&amp;', ['<'] = '&lt;', ['>'] = '&gt;',
    ['"'] = '&quot;' }))
end

local function num(x)
  return (('%.1f'):format(x):gsub('%.0$', ''))
end

-- "22:30:19.557 (+1.2 s)"
local function at(m, t)
  return ('%s (+%s)'):format(model.clock(t), model.duration(t - m.t0))
end

local Canvas = {}
Canvas.__index = Canvas

function Canvas:put(s, ...)
  self.out[#self.out + 1] = select('#', ...) > 0 and s:format(...) or s
end

function Canvas:x(t)
  return self.x0 + (t - self.m.t0) / (self.m.t1 - self.m.t0) * self.pw
end

-- The result drawn in pixel [ta, tb) of a row: failure when there is any (a blip must show),
-- else the result that covers most of it; and the first and last span of that result there.
local function pixel(spans, j, ta, tb)
  local cover, first, last = {}, {}, {}
  local k = j
  while spans[k] and spans[k].t0 < tb do
    local s = spans[k]
    if s.t1 > ta then
      local r = s.result
      cover[r] = (cover[r] or 0) + math.min(s.t1, tb) - math.max(s.t0, ta)
      first[r] = first[r] or k
      last[r] = k
    end
    k = k + 1
  end
  local best, bd = nil, -1
  if cover.failure then
    best = 'failure'
  else
    for r, d in pairs(cover) do
      if d > bd or (d == bd and r < best) then
        best, bd = r, d
      end
    end
  end
  return best, best and first[best], best and last[best]
end

-- The tooltip of a run of pixels of result `r` over spans a..b of `row`.
function Canvas:span_title(row, r, a, b)
  local same, others, message = {}, {}, nil
  for k = a, b do
    local s = row.spans[k]
    if s.result == r then
      same[#same + 1] = s
      message = s.message or message
    else
      others[s.result] = (others[s.result] or 0) + 1
    end
  end
  if #same == 1 then
    local s = same[1]
    return ('%s: %s from %s for %s%s'):format(row.id, r, at(self.m, s.t0),
      model.duration(s.t1 - s.t0), s.message and (': ' .. s.message) or '')
  end
  local total = 0
  for _, s in ipairs(same) do
    total = total + (s.t1 - s.t0)
  end
  local also = {}
  for _, o in ipairs(model.RESULTS) do
    if others[o] then
      also[#also + 1] = ('%s x%d'):format(o, others[o])
    end
  end
  return ('%s: %s %d times from %s to %s (%s in all)%s%s'):format(row.id, r, #same,
    at(self.m, same[1].t0), model.clock(same[#same].t1), model.duration(total),
    message and ('; last: ' .. message) or '',
    #also > 0 and ('; in between: ' .. table.concat(also, ', ')) or '')
end

-- The spans of `row` as rectangles, one pixel at a time: runs of pixels of one result are one
-- rectangle (exact at the edges of the spans), so an hour of a crash loop is a few rectangles.
function Canvas:spans(row, y)
  local spans = row.spans
  if #spans == 0 then
    return
  end
  local span_t = (self.m.t1 - self.m.t0) / self.pw
  local n = math.ceil(self.pw)
  local j, run = 1, nil
  local function flush()
    if not run then
      return
    end
    local x0 = math.max(run.x0, self:x(spans[run.a].t0))
    local x1 = math.min(run.x1, self:x(spans[run.b].t1))
    self:put('<rect class="s" x="%s" y="%s" width="%s" height="%d" fill="%s"><title>%s</title>'
      .. '</rect>', num(x0), num(y + BAND_TOP), num(math.max(0.6, x1 - x0)), BAND_H,
      M.COLORS[run.r] or '#000', esc(self:span_title(row, run.r, run.a, run.b)))
    run = nil
  end
  for i = 0, n - 1 do
    local ta = self.m.t0 + i * span_t
    local tb = ta + span_t
    while spans[j] and spans[j].t1 <= ta do
      j = j + 1
    end
    if not spans[j] then
      break
    end
    local r, a, b = pixel(spans, j, ta, tb)
    if run and (r ~= run.r) then
      flush()
    end
    if r then
      if run then
        run.x1, run.b = self.x0 + i + 1, b
      else
        run = { r = r, a = a, b = b, x0 = self.x0 + i, x1 = self.x0 + i + 1 }
      end
    end
  end
  flush()
end

function Canvas:procs(row, y)
  for _, p in ipairs(row.procs) do
    local x0, x1 = self:x(p.t0), self:x(p.t1)
    self:put('<rect x="%s" y="%d" width="%s" height="3" fill="#57606a"><title>%s: pid %s running'
      .. ' from %s for %s%s</title></rect>', num(x0), y + PROC_Y - 1, num(math.max(1, x1 - x0)),
      esc(row.id), esc(p.pid or '?'), at(self.m, p.t0), model.duration(p.t1 - p.t0),
      p.open and ' (still running)' or '')
  end
end

-- The shape of a tick of `kind` at x, in a row at y.
local SHAPES = {
  spawn = function(x, y)
    return ('<path d="M%s %s l-4 7 h8 z" fill="#1a7f37"'):format(num(x), num(y + PROC_Y + 2))
  end,
  exit = function(x, y)
    return ('<rect x="%s" y="%s" width="2" height="8" fill="#57606a"'):format(num(x - 1),
      num(y + PROC_Y - 5))
  end,
  crash = function(x, y)
    return ('<path d="M%s %s l7 7 m0 -7 l-7 7" stroke="#a40e26" stroke-width="2.2" '
      .. 'fill="none"'):format(num(x - 3.5), num(y + PROC_Y - 5))
  end,
  ['spawn-error'] = function(x, y)
    return ('<circle cx="%s" cy="%s" r="3.5" fill="#fff" stroke="#a40e26" stroke-width="2"')
      :format(num(x), num(y + PROC_Y - 1.5))
  end,
  signal = function(x, y)
    return ('<path d="M%s %s l4 4 l-4 4 l-4 -4 z" fill="#bc4c00"'):format(num(x), num(y))
  end,
  restart = function(x, y)
    return ('<circle cx="%s" cy="%s" r="3.5" fill="#8250df"'):format(num(x), num(y + 4))
  end,
  ['gave-up'] = function(x, y)
    return ('<rect x="%s" y="%s" width="8" height="8" fill="#24292f"'):format(num(x - 4),
      num(y + BAND_TOP + 2))
  end,
}

-- The vertical centre of each shape, from the top of its row (to align the legend).
local CENTER = { spawn = PROC_Y + 5.5, exit = PROC_Y - 1, crash = PROC_Y - 1.5,
  ['spawn-error'] = PROC_Y - 1.5, signal = 4, restart = 4, ['gave-up'] = BAND_TOP + 6 }

--- The legend of the tick kinds, in order.
M.TICKS = { { 'spawn', 'spawn' }, { 'exit', 'exit' }, { 'crash', 'failed exit' },
  { 'spawn-error', 'failed to start' }, { 'signal', 'signal sent' },
  { 'restart', 'liveness restart' }, { 'gave-up', 'gave up' } }

function Canvas:ticks(row, y)
  -- ticks of one kind closer than 2 px are one, with every text in its tooltip (at most 6)
  local groups, by_kind = {}, {}
  for _, tk in ipairs(row.ticks) do
    local x = self:x(tk.t)
    local g = by_kind[tk.kind]
    if g and x - g.x < 2 then
      g.n = g.n + 1
      if g.n <= 6 then
        g.texts[#g.texts + 1] = ('%s %s'):format(model.clock(tk.t), tk.text)
      end
    else
      g = { x = x, kind = tk.kind, n = 1, texts = { ('%s %s'):format(at(self.m, tk.t),
        tk.text) } }
      by_kind[tk.kind] = g
      groups[#groups + 1] = g
    end
  end
  for _, g in ipairs(groups) do
    local shape = SHAPES[g.kind]
    if shape then
      local title = esc(row.id) .. ': ' .. esc(table.concat(g.texts, '\n'))
      if g.n > 6 then
        title = title .. esc(('\n... and %d more'):format(g.n - 6))
      end
      self:put('%s><title>%s</title></%s>', shape(g.x, y), title,
        shape(g.x, y):match('^<(%a+)'))
    end
  end
end

function Canvas:arrows(rows_y)
  for _, a in ipairs(self.m.arrows) do
    local yf, yt = rows_y[a.from], rows_y[a.to]
    if yf and yt then
      local x = num(self:x(a.t))
      local y1, y2
      if yf < yt then
        y1, y2 = yf + BAND_TOP + BAND_H, yt + BAND_TOP - 1
      else
        y1, y2 = yf + BAND_TOP, yt + BAND_TOP + BAND_H + 1
      end
      self:put('<path class="a" d="M%s %s V%s" marker-end="url(#arrow)"><title>%s ready at %s:'
        .. ' %s may start</title></path>', x, num(y1), num(y2), esc(a.from), at(self.m, a.t),
        esc(a.to))
    end
  end
end

function Canvas:axis(y, ticks, below)
  for _, tk in ipairs(ticks) do
    local x = num(self.x0 + tk.d / (self.m.t1 - self.m.t0) * self.pw)
    self:put('<text x="%s" y="%d" class="ax" text-anchor="middle">%s</text>', x,
      below and y + 14 or y, esc(tk.label))
  end
  self:put('<path d="M%s %d H%s" class="axl"/>', num(self.x0), below and y or y + 5,
    num(self.x0 + self.pw))
end

local function label_of(id, max_chars)
  if #id <= max_chars then
    return id
  end
  return id:sub(1, max_chars - 1) .. '…'
end

--- The SVG of a model (orch.timeline.model). `opts.width`: pixels (default 1200);
-- `opts.title`: the heading (default "orch timeline").
function M.render(m, opts)
  opts = opts or {}
  local width = math.max(500, math.floor(opts.width or 1200))
  local longest = 4
  for _, row in ipairs(m.rows) do
    longest = math.max(longest, utf8.len(row.id) or #row.id)
  end
  local max_chars = math.min(longest, 32)
  local label_w = math.floor(max_chars * CHAR_W + 24)
  local self = setmetatable({ m = m, out = {}, x0 = label_w + 8 }, Canvas)
  self.pw = width - self.x0 - 24
  local has_orch = #m.marks > 0
  local axis_y = 56
  local rows_top = axis_y + 12 + (has_orch and 20 or 0)
  local rows_bottom = rows_top + #m.rows * ROW
  local legend_y = rows_bottom + 44
  local height = legend_y + 46
  local duration = m.t1 - m.t0
  local step = axis.step(duration, math.max(2, math.floor(self.pw / 90)))
  local ticks = axis.ticks(duration, step)

  self:put('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
    .. 'font-family=\'%s\' font-size="12">', width, height, width, height, FONT)
  self:put('<title>%s</title>', esc(opts.title or 'orch timeline'))
  self:put('<style>.ax{fill:#57606a;font-size:11px}.axl{stroke:#8c959f;stroke-width:1}'
    .. '.g{stroke:#d8dee4;stroke-width:1}.a{stroke:#24292f;stroke-width:1.2;fill:none;'
    .. 'opacity:.65}.s:hover{stroke:#000;stroke-width:1}.lbl{fill:#24292f}'
    .. '.sub{fill:#57606a}</style>')
  self:put('<defs><marker id="arrow" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="6" '
    .. 'markerHeight="6" orient="auto-start-reverse"><path d="M0 0 L8 4 L0 8 z" '
    .. 'fill="#24292f"/></marker></defs>')
  self:put('<rect width="100%%" height="100%%" fill="#ffffff"/>')
  -- heading
  self:put('<text x="12" y="22" font-size="15" font-weight="bold" class="lbl">%s</text>',
    esc(opts.title or 'orch timeline'))
  self:put('<text x="12" y="40" class="sub">%s</text>', esc(('%s to %s UTC, %s; %d %s, %d '
    .. 'restart%s'):format(os.date('!%Y-%m-%d ', math.floor(m.t0)) .. model.clock(m.t0),
    model.clock(m.t1),
    model.duration(duration), #m.rows, #m.rows == 1 and 'entry' or 'entries', m.restarts,
    m.restarts == 1 and '' or 's')))
  -- grid and rows' background
  for i = 1, #m.rows do
    if i % 2 == 0 then
      self:put('<rect x="0" y="%d" width="%d" height="%d" fill="#f6f8fa"/>',
        rows_top + (i - 1) * ROW, width, ROW)
    end
  end
  for _, tk in ipairs(ticks) do
    local x = num(self.x0 + tk.d / duration * self.pw)
    self:put('<path class="g" d="M%s %d V%d"/>', x, axis_y + 6, rows_bottom)
  end
  self:axis(axis_y, ticks, false)
  self:axis(rows_bottom + 6, ticks, true)
  -- orch's own messages
  if has_orch then
    local y = axis_y + 10
    self:put('<text x="8" y="%d" class="sub" font-style="italic">orch</text>', y + 12)
    local colors = { info = '#57606a', warning = '#bf8700', error = '#d1242f' }
    local rank = { error = 3, warning = 2 }
    -- messages closer than 3 px are one dot (the worst level's colour), listed in its tooltip
    local groups = {}
    for _, mk in ipairs(m.marks) do
      local x, g = self:x(mk.t), groups[#groups]
      local text = ('%s %s%s'):format(model.clock(mk.t), mk.id and (mk.id .. ': ') or '',
        mk.text)
      if g and x - g.x < 3 then
        g.n = g.n + 1
        if g.n <= 8 then
          g.texts[#g.texts + 1] = text
        end
        if (rank[mk.level] or 1) > (rank[g.level] or 1) then
          g.level = mk.level
        end
      else
        groups[#groups + 1] = { x = x, n = 1, level = mk.level, texts = { text } }
      end
    end
    for _, g in ipairs(groups) do
      self:put('<circle cx="%s" cy="%d" r="3" fill="%s"><title>%s%s</title></circle>', num(g.x),
        y + 8, colors[g.level] or '#57606a', esc(table.concat(g.texts, '\n')),
        g.n > 8 and esc(('\n... and %d more'):format(g.n - 8)) or '')
    end
  end
  -- the entries
  local rows_y = {}
  for i, row in ipairs(m.rows) do
    local y = rows_top + (i - 1) * ROW
    rows_y[row.id] = y
    local about = row.id .. (row.kind and (' (' .. row.kind .. ')') or '')
    if row.name then
      about = about .. ': ' .. row.name
    end
    if #row.requires > 0 then
      about = about .. '; requires ' .. table.concat(row.requires, ', ')
    end
    self:put('<text x="8" y="%d" class="lbl" data-id="%s">%s<title>%s</title></text>', y + 16,
      esc(row.id), esc(label_of(row.id, max_chars)), esc(about))
    self:spans(row, y)
    self:procs(row, y)
  end
  for i, row in ipairs(m.rows) do
    self:ticks(row, rows_top + (i - 1) * ROW)
  end
  self:arrows(rows_y)
  -- legend
  local x = 12
  for _, r in ipairs(model.RESULTS) do
    self:put('<rect x="%d" y="%d" width="14" height="10" fill="%s"/><text x="%d" y="%d" '
      .. 'class="lbl">%s</text>', x, legend_y - 9, M.COLORS[r], x + 19, legend_y, r)
    x = x + 19 + math.floor(#r * CHAR_W) + 18
  end
  self:put('<rect x="%d" y="%d" width="18" height="3" fill="#57606a"/><text x="%d" y="%d" '
    .. 'class="lbl">process running</text>', x, legend_y - 5, x + 23, legend_y)
  x, legend_y = 12, legend_y + 22
  for _, k in ipairs(M.TICKS) do
    local shape = SHAPES[k[1]](x + 4, legend_y - 4 - CENTER[k[1]])
    self:put('%s/><text x="%d" y="%d" class="lbl">%s</text>', shape, x + 14, legend_y, k[2])
    x = x + 14 + math.floor(#k[2] * CHAR_W) + 18
  end
  self:put('<path class="a" d="M%d %d H%d" marker-end="url(#arrow)"/><text x="%d" y="%d" '
    .. 'class="lbl">requirement ready</text>', x, legend_y - 4, x + 20, x + 26, legend_y)
  self:put('</svg>\n')
  return table.concat(self.out, '\n')
end

return M
