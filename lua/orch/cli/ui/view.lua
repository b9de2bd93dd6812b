--- The screen of `orch ui`, drawn from its state as one string of ANSI sequences: the header,
-- the table of entries (or the dependency tree, or the help), the log pane and the key line.
-- Pure: no terminal, no clock (the caller passes both), so specs can draw it at any size.
-- @module orch.cli.ui.view
local render = require 'orch.control.render'
local time = require 'orch.runtime.time'

local M = {}

local STATE_COLORS = { success = '32', failure = '31', starting = '33', loading = '33',
  waiting = '36', disabled = '2' }

M.HELP = {
  'up/down       select an entry        pgup/pgdn  scroll the log pane',
  'enter, l      logs: selected entry / all entries',
  'r             restart the entry (and what requires it)',
  's / S         stop / start the entry (and what requires it)',
  'k             send a signal to the entry (asks for its name)',
  '/             filter by text (id, kind, state, message); esc clears',
  'h             show / hide hidden entries (no display name)',
  't             dependency tree / table',
  '?             this help (any key closes it)',
  'q, ctrl-c     quit' .. ' (orch run --ui: stop orch too)',
  'ctrl-z        suspend',
}

-- Printable text on one line.
local function clean(s)
  return (tostring(s or ''):gsub('[%c]', ' '))
end

local function width(s)
  return utf8.len(s) or #s
end

--- `s` cut or padded to `w` display columns (one column per code point).
function M.fit(s, w, pad)
  if w <= 0 then
    return ''
  end
  local n = width(s)
  if n > w then
    if utf8.len(s) then
      s = s:sub(1, utf8.offset(s, w) - 1) .. '~' -- the first w-1 code points
    else
      s = s:sub(1, w - 1) .. '~'
    end
  elseif pad and n < w then
    s = s .. string.rep(' ', w - n)
  end
  return s
end

local function paint(code, s)
  if code and code ~= '' then
    return '\27[' .. code .. 'm' .. s .. '\27[0m'
  end
  return s
end

local function last_exit(x, wall_ms)
  if type(x) ~= 'table' then
    return '-'
  end
  local what = x.error and 'spawn error' or x.signal and tostring(x.signal)
    or x.code and ('code ' .. tostring(x.code)) or 'exited'
  local t = time.parse_iso(x.time)
  if t and wall_ms then
    what = what .. ' ' .. render.duration(wall_ms - t * 1000) .. ' ago'
  end
  return what
end

local function state_of(e)
  local s = e.result or 'none'
  local h = type(e.health) == 'table' and e.health or nil
  if h and h.result and h.result ~= s then
    s = ('%s (%s)'):format(s, h.result)
  end
  return s
end

local function message_of(e)
  local h = type(e.health) == 'table' and e.health or nil
  return clean((h and h.message) or e.message or '')
end

--- The cells of entry `e`'s row.
function M.row(e, elapsed, wall_ms)
  local req = type(e.requires) == 'table' and table.concat(e.requires, ',') or ''
  return {
    clean(e.id), clean(e.kind or '-'), clean(state_of(e)), e.pid and tostring(e.pid) or '-',
    e.uptime and render.duration(e.uptime + elapsed) or '-', tostring(e.restarts or 0),
    last_exit(e.lastExit, wall_ms), req == '' and '-' or clean(req), message_of(e),
  }
end

local HEAD = { 'ID', 'KIND', 'STATE', 'PID', 'UPTIME', 'RST', 'LAST EXIT', 'REQUIRES', 'MESSAGE' }
local CAP = { 24, 8, 22, 7, 6, 3, 18, 20 }
local MIN = { 6, 4, 7, 3, 6, 3, 6, 6 }
local SHRINK = { 8, 7, 1, 3, 2 } -- which columns give way first when the screen is narrow

-- Column widths for `rows` on `cols` columns (the message takes what is left).
local function widths(rows, cols)
  local w = {}
  for i = 1, 8 do
    w[i] = #HEAD[i]
    for _, r in ipairs(rows) do
      w[i] = math.min(CAP[i], math.max(w[i], width(r[i])))
    end
  end
  local function total()
    local t = 0
    for i = 1, 8 do
      t = t + w[i] + 1
    end
    return t + 10 -- the message gets at least 10
  end
  for _, i in ipairs(SHRINK) do
    while total() > cols and w[i] > MIN[i] do
      w[i] = w[i] - 1
    end
  end
  local used = 0
  for i = 1, 8 do
    used = used + w[i] + 1
  end
  w[9] = math.max(0, cols - used)
  return w
end

local function table_line(cells, w, state)
  local out = {}
  for i = 1, 9 do
    local c = M.fit(cells[i], w[i], i < 9)
    if i == 3 and state then
      c = paint(STATE_COLORS[state], c)
    end
    out[i] = c
  end
  return table.concat(out, ' ')
end

--- The dependency tree of `entries` as lines `{text, entry}`: each entry under what it
-- requires (an entry requiring several appears under each), roots first in declared order.
function M.tree(entries)
  local by_id, dependents, lines = {}, {}, {}
  for _, e in ipairs(entries) do
    by_id[e.id] = e
    dependents[e.id] = {}
  end
  for _, e in ipairs(entries) do
    for _, r in ipairs(type(e.requires) == 'table' and e.requires or {}) do
      if dependents[r] then
        table.insert(dependents[r], e)
      end
    end
  end
  local function walk(e, prefix, last, depth)
    local branch = depth == 0 and '' or (last and '`-- ' or '|-- ')
    lines[#lines + 1] = { prefix .. branch, e }
    local kids = dependents[e.id]
    for i, k in ipairs(kids) do
      walk(k, depth == 0 and '' or (prefix .. (last and '    ' or '|   ')), i == #kids,
        depth + 1)
    end
  end
  for _, e in ipairs(entries) do
    local req = type(e.requires) == 'table' and e.requires or {}
    local root = true
    for _, r in ipairs(req) do
      if by_id[r] then
        root = false
      end
    end
    if root then
      walk(e, '', true, 0)
    end
  end
  return lines
end

-- The header line.
local function header(st, elapsed)
  local o = st.orch or {}
  local up = o.uptime and render.duration(o.uptime + elapsed) or '?'
  local s = ('orch %s (pid %s): %s, up %s, %s/%s ready'):format(clean(o.name or '?'),
    tostring(o.pid or '?'), clean(o.phase or '?'), up, tostring(o.ready or '?'),
    tostring(o.total or '?'))
  local extra = {}
  if st.filter and st.filter ~= '' then
    extra[#extra + 1] = 'filter: ' .. clean(st.filter)
  end
  if st.hidden_count and st.hidden_count > 0 then
    extra[#extra + 1] = ('%d hidden %s (h)'):format(st.hidden_count,
      st.show_hidden and 'shown' or 'not shown')
  end
  if #extra > 0 then
    s = s .. '  [' .. table.concat(extra, ', ') .. ']'
  end
  return s
end

-- The entry lines of the top pane (table, tree) for `height` rows, keeping the selection in
-- view; returns the lines.
local function top_pane(st, list, cols, height, elapsed, wall_ms)
  local lines = {}
  if st.mode == 'tree' then
    local selected = list[st.selected]
    local tree = M.tree(list)
    local sel_line = 1
    for i, t in ipairs(tree) do
      if selected and t[2].id == selected.id then
        sel_line = i
        break
      end
    end
    local first = math.max(1, math.min(sel_line - height + 1, #tree - height + 1))
    first = math.max(1, math.min(first, sel_line))
    for i = first, math.min(#tree, first + height - 1) do
      local prefix, e = tree[i][1], tree[i][2]
      local text = M.fit(prefix .. clean(e.id) .. '  ' .. state_of(e) .. '  ' .. message_of(e),
        cols, true)
      if i == sel_line then
        text = '\27[7m' .. text .. '\27[0m'
      else
        text = paint(STATE_COLORS[e.result], text)
      end
      lines[#lines + 1] = text
    end
    return lines
  end
  local rows = {}
  for i, e in ipairs(list) do
    rows[i] = M.row(e, elapsed, wall_ms)
  end
  local w = widths(rows, cols)
  lines[1] = '\27[1m' .. M.fit(table_line(HEAD, w), cols) .. '\27[0m'
  local room = height - 1
  local first = st.scroll or 1
  if st.selected < first then
    first = st.selected
  elseif st.selected > first + room - 1 then
    first = st.selected - room + 1
  end
  first = math.max(1, math.min(first, math.max(1, #list - room + 1)))
  st.scroll = first
  for i = first, math.min(#list, first + room - 1) do
    local e = list[i]
    if i == st.selected then
      lines[#lines + 1] = '\27[7m' .. M.fit(table_line(rows[i], w), cols, true) .. '\27[0m'
    else
      local line = table_line(rows[i], w, e.result)
      if e.visible == false then
        line = '\27[2m' .. line .. '\27[0m' -- hidden entries dimmed
      end
      lines[#lines + 1] = line
    end
  end
  if #list == 0 then
    lines[#lines + 1] = st.filter and st.filter ~= '' and '(no entry matches the filter)'
      or '(no entries)'
  end
  return lines
end

--- The frame for state `st` on `cols` x `rows`. `st`: `orch`, `list` (the entries shown),
-- `selected`, `mode` ('table', 'tree', 'help'), `logs` (lines `{id, line, stream}` of the
-- pane, oldest first), `log_title`, `log_scroll`, `prompt`, `message`, `filter`,
-- `show_hidden`, `hidden_count`, `id_width` (of the log prefixes), `elapsed` (ms since the
-- status came), `wall_ms`.
function M.frame(st, cols, rows)
  local list = st.list or {}
  local elapsed = st.elapsed or 0
  local out = {}
  local function put(s)
    out[#out + 1] = s
  end
  put(paint('1', M.fit(header(st, elapsed), cols)))
  local body = rows - 2 -- the header and the key line
  local lines = {}
  if st.mode == 'help' then
    lines[1] = paint('1', 'orch ui: keys')
    for i, h in ipairs(M.HELP) do
      lines[i + 1] = M.fit(h, cols)
    end
  else
    -- the top pane gets what the entries need, up to about half (at least 4 rows)
    local want = (st.mode == 'tree' and #M.tree(list) or #list + 1)
    local top = math.max(math.min(want, body - 4), math.min(4, body))
    top = math.min(top, math.max(2, (body * 3) // 5), body)
    if want <= top then
      top = want
    end
    lines = top_pane(st, list, cols, top, elapsed, st.wall_ms)
    local pane = body - #lines - 1
    if pane >= 0 then
      local title = ' logs: ' .. (st.log_title or 'all') .. ' '
      local tail = st.log_scroll and st.log_scroll > 0 and (' +' .. st.log_scroll .. ' ') or ''
      local rule = M.fit('-- ' .. title .. tail, cols)
      lines[#lines + 1] = paint('2', rule .. string.rep('-', cols - width(rule)))
      local logs = st.logs or {}
      local last = #logs - (st.log_scroll or 0)
      for i = math.max(1, last - pane + 1), last do
        local l = logs[i]
        local prefix = M.fit(l.id, st.id_width or #l.id, true) .. ' | '
        local text = M.fit(prefix .. clean(l.line), cols)
        local colour = l.stream == 'stderr' and '31' or '36'
        lines[#lines + 1] = paint(colour, text:sub(1, #prefix)) .. text:sub(#prefix + 1)
      end
    end
  end
  for i = 1, body do
    put(lines[i] or '')
  end
  local bottom
  if st.prompt then
    bottom = '\27[1m' .. M.fit(st.prompt .. (st.input or '') .. '_', cols) .. '\27[0m'
  elseif st.message then
    bottom = paint('1', M.fit(st.message, cols))
  else
    bottom = paint('2', M.fit('q quit  ? help  r/s/S restart/stop/start  k signal  / filter  '
      .. 'h hidden  t tree', cols))
  end
  put(bottom)
  local s = {}
  for i, l in ipairs(out) do
    -- cleared first: a line that fills the last column would lose it to a clear after it
    s[#s + 1] = ('\27[%d;1H\27[K'):format(i) .. l .. '\27[0m'
  end
  return table.concat(s, '') .. ('\27[%d;1H'):format(#out)
end

return M
