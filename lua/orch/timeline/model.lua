--- The timeline of a run, from the records of its JSON log (orch.timeline.read): one row per
-- entry with the spans of its results, the spans of its processes and its ticks (spawns,
-- exits, signals, restarts), the arrows of its requirements, and orch's own messages.
--
-- Times are seconds since the epoch (floats). A span is `{t0, t1, result, message}`; a process
-- `{t0, t1, pid, open}` (`open`: still running at the end); a tick `{t, kind, text}` with kind
-- `spawn`, `exit` (clean), `crash` (an exit that was a failure), `spawn-error`, `signal` (sent:
-- SIGTERM, SIGKILL, orch signal), `restart` (liveness), `gave-up`; an arrow `{t, from, to}`
-- is drawn when requirement `from` of `to` became `success` while `to` was not.
-- @module orch.timeline.model

local M = {}

--- The results, in the order of the legend.
M.RESULTS = { 'success', 'starting', 'waiting', 'failure', 'loading', 'disabled' }

--- Which result wins when several share one pixel or cell: the more alarming.
M.SEVERITY = { failure = 6, starting = 5, loading = 4, waiting = 3, disabled = 2, success = 1 }

local STOP_SIGNALS = { SIGTERM = true, SIGINT = true, SIGKILL = true }

--- A duration in seconds as text: `850 ms`, `4.2 s`, `3 min 20 s`, `1 h 05 min`.
function M.duration(d)
  if d < 1 then
    return ('%d ms'):format(math.floor(d * 1000 + 0.5))
  elseif d < 60 then
    return (('%.1f'):format(d):gsub('%.0$', '')) .. ' s'
  elseif d < 3600 then
    local m = math.floor(d / 60)
    local s = math.floor(d - m * 60)
    return s > 0 and ('%d min %d s'):format(m, s) or ('%d min'):format(m)
  end
  local h = math.floor(d / 3600)
  return ('%d h %02d min'):format(h, math.floor((d - h * 3600) / 60))
end

--- The UTC time of day of `t` with milliseconds (`22:30:19.557`).
function M.clock(t)
  local all = math.floor(t * 1000 + 0.5)
  return os.date('!%H:%M:%S', all // 1000) .. ('.%03d'):format(all % 1000)
end

local function new_row(m, id)
  local row = m.by_id[id]
  if not row then
    row = { id = id, requires = {}, spans = {}, procs = {}, ticks = {}, restarts = 0 }
    m.by_id[id] = row
    m.rows[#m.rows + 1] = row
  end
  return row
end

-- Close the current span of `row` at `t`.
local function close_span(row, t)
  local cur = row.spans[#row.spans]
  if cur and not cur.t1 then
    cur.t1 = t
  end
end

local function tick(row, t, kind, text)
  row.ticks[#row.ticks + 1] = { t = t, kind = kind, text = text }
end

local function graph(m, rec)
  if type(rec.entries) ~= 'table' then
    return
  end
  local present = {}
  for _, e in ipairs(rec.entries) do
    if type(e) == 'table' and type(e.id) == 'string' then
      present[e.id] = true
      local row = new_row(m, e.id)
      row.kind = type(e.kind) == 'string' and e.kind or row.kind
      row.name = type(e.name) == 'string' and e.name or row.name
      row.requires = {}
      for _, r in ipairs(type(e.requires) == 'table' and e.requires or {}) do
        if type(r) == 'string' then
          row.requires[#row.requires + 1] = r
        end
      end
    end
  end
  -- a reload removed these: their rows end here
  for _, row in ipairs(m.rows) do
    if not present[row.id] and not row.removed then
      row.removed = rec.t
      close_span(row, rec.t)
    end
  end
  for id in pairs(present) do
    m.by_id[id].removed = nil
  end
end

-- The arrows for `dep` becoming `success` at `t`: to each entry that requires it and is not.
local function arrows_from(m, dep, t)
  for _, row in ipairs(m.rows) do
    if not row.removed and row.result ~= 'success' then
      for _, r in ipairs(row.requires) do
        if r == dep then
          m.arrows[#m.arrows + 1] = { t = t, from = dep, to = row.id }
          break
        end
      end
    end
  end
end

local function state(m, row, rec)
  local result = rec.result
  if not result then
    return
  end
  row.kind = row.kind or rec.kind
  if row.result == result then -- the same result, a new message: keep the first span
    return
  end
  close_span(row, rec.t)
  row.spans[#row.spans + 1] = { t0 = rec.t, result = result, message = rec.message }
  row.result = result
  if result == 'success' then
    arrows_from(m, row.id, rec.t)
  end
end

local function exit_text(rec)
  if rec.oom then
    return 'killed by the OOM killer'
  elseif rec.signal then
    return 'killed by ' .. rec.signal
  end
  return 'exited with code ' .. tostring(rec.code)
end

local function process(m, row, rec)
  local ev, t = rec.event, rec.t
  local pid = rec.pid and (' (pid %s)'):format(tostring(rec.pid)) or ''
  if ev == 'spawn' then
    local open = row.procs[#row.procs]
    if open and not open.t1 then
      open.t1 = t
    end
    row.procs[#row.procs + 1] = { t0 = t, pid = rec.pid }
    local text = 'started' .. pid
    if math.type(rec.restarts) == 'integer' and rec.restarts > 0 then
      text = text .. (', restart #%d'):format(rec.restarts)
      if type(rec.delay) == 'number' then
        text = text .. ' after ' .. M.duration(rec.delay / 1000)
      end
      m.restarts, row.restarts = m.restarts + 1, row.restarts + 1
    end
    tick(row, t, 'spawn', text)
  elseif ev == 'exit' then
    local p = row.procs[#row.procs]
    if p and not p.t1 then
      p.t1 = t
    end
    local failed
    if rec.clean ~= nil then
      failed = not rec.clean
    elseif rec.signal then
      failed = not (STOP_SIGNALS[rec.signal] and row.stopping)
    else
      failed = rec.code ~= 0
    end
    row.stopping = nil
    tick(row, t, failed and 'crash' or 'exit', exit_text(rec) .. pid)
  elseif ev == 'spawn-error' then
    tick(row, t, 'spawn-error', 'failed to start: ' .. tostring(rec.message))
  elseif ev == 'term' or ev == 'kill' or ev == 'signal' then
    row.stopping = ev ~= 'signal' or row.stopping
    local verb = ev == 'kill' and 'did not stop in time: sent ' or 'sent '
    tick(row, t, 'signal', verb .. tostring(rec.signal or (ev == 'kill' and 'SIGKILL'
      or 'SIGTERM')) .. (rec.pid and (' to pid ' .. tostring(rec.pid)) or ''))
  elseif ev == 'restart' then
    tick(row, t, 'restart', rec.message or 'restarting')
  elseif ev == 'gave-up' then
    tick(row, t, 'gave-up', rec.message or 'gave up')
  end
end

local PROCESS_EVENTS = { spawn = true, exit = true, ['spawn-error'] = true, term = true,
  kill = true, signal = true, restart = true, ['gave-up'] = true }

--- The model of `records` (orch.timeline.read). `opts.t_end`: when the picture ends (a live
-- orch's now; default the last record's time); `opts.ids`: only these entries' rows.
-- @treturn table `{t0, t1, rows = {{id, kind, name, requires, spans, procs, ticks, restarts}},
-- arrows, marks = {{t, level, text}}, restarts}`
function M.build(records, opts)
  local m = { rows = {}, by_id = {}, arrows = {}, marks = {}, restarts = 0 }
  local t0, t1 = math.huge, -math.huge
  for _, rec in ipairs(records) do
    t0, t1 = math.min(t0, rec.t), math.max(t1, rec.t)
    local ev, id = rec.event, rec.id
    if ev == 'graph' then
      graph(m, rec)
    elseif ev == 'log' or (ev and (id == nil or id == 'orch')) then
      if rec.message then
        m.marks[#m.marks + 1] = { t = rec.t, level = rec.level or 'info', text = rec.message,
          id = id ~= 'orch' and id or nil }
      end
    elseif ev == 'state' then
      state(m, new_row(m, id), rec)
    elseif PROCESS_EVENTS[ev] and id then
      process(m, new_row(m, id), rec)
    end
  end
  if opts and opts.t_end and opts.t_end > t1 then
    t1 = opts.t_end
  end
  if t0 == math.huge then
    t0, t1 = 0, 1
  end
  if t1 - t0 < 0.001 then
    t1 = t0 + 0.001
  end
  m.t0, m.t1 = t0, t1
  for _, row in ipairs(m.rows) do
    close_span(row, row.removed or t1)
    local p = row.procs[#row.procs]
    if p and not p.t1 then
      p.t1, p.open = t1, true
    end
    row.result, row.stopping = nil, nil
  end
  m.by_id = nil
  if opts and opts.ids then
    M.only(m, opts.ids)
  end
  return m
end

--- Keep only the rows of `ids` (a list) in `m`, in its order, and the arrows between them.
function M.only(m, ids)
  local keep = {}
  for _, id in ipairs(ids) do
    keep[id] = true
  end
  local rows, arrows, restarts = {}, {}, 0
  for _, row in ipairs(m.rows) do
    if keep[row.id] then
      rows[#rows + 1] = row
      restarts = restarts + row.restarts
    end
  end
  for _, a in ipairs(m.arrows) do
    if keep[a.from] and keep[a.to] then
      arrows[#arrows + 1] = a
    end
  end
  m.rows, m.arrows, m.restarts = rows, arrows, restarts
  return m
end

return M
