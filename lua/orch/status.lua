--- The status sink: the `effects` a Daemons chain reports to, and the orchestrator's view of
-- every entry.
--
-- The Daemons layer calls `setHealth` (the SDK call, visible entries), `onState` (every raw
-- result change of any entry), `onProcess` (spawn, exit, spawn-error, term, kill) and `output`
-- (raw chunks of entries without their own output callbacks). The sink keeps the current state
-- of every entry (`snapshot`), a bounded ring buffer of recent output lines per entry (`logs`),
-- writes the log through an `orch.log` writer, and tells subscribers about every change
-- (`subscribe`): the status file, sd_notify and the control socket hook in there.
--
-- Times: `since`, `lastExit.time` and line `ts` are wall-clock seconds (float); `uptime` is
-- milliseconds.
-- @module orch.status
local log = require 'orch.log'
local line_splitter = require 'orch.line_splitter'

local M = {}

--- Lines kept per entry by default.
M.DEFAULT_RING = 1000

--- Bytes of output kept per entry at most (whichever bound is reached first; the newest line
-- is always kept).
M.DEFAULT_RING_BYTES = 1024 * 1024

--- The results an entry can have.
M.RESULTS = { 'success', 'failure', 'starting', 'waiting', 'loading', 'disabled' }

local Sink = {}
Sink.__index = Sink
M.Sink = Sink

local default_sink
local EFFECTS -- name -> method, bound per sink in `new` (filled below the methods)

local function mono_ms()
  local ok, core = pcall(require, 'orch.core')
  if ok and type(core) == 'table' and core.now then
    return core.now()
  end
  return math.floor(os.clock() * 1000)
end

local function copy(t)
  if type(t) ~= 'table' then
    return t
  end
  local out = {}
  for k, v in pairs(t) do
    out[k] = copy(v)
  end
  return out
end

--- A new sink.
-- `opts`: `writer` (an `orch.log` Writer; false for no log; default a text writer on stdout),
-- `ring` (lines kept per entry, default 1000; 0 keeps none), `ring_bytes` (bytes kept per
-- entry, default 1 MiB), `now` (monotonic ms),
-- `wallclock` (seconds), `max_line` (bytes, default `line_splitter.MAX_LINE`).
-- @treturn Sink
function M.new(opts)
  opts = opts or {}
  local writer = opts.writer
  if writer == nil then
    writer = log.new()
  end
  local self = setmetatable({
    writer = writer or nil,
    ring_size = opts.ring or M.DEFAULT_RING,
    ring_bytes = opts.ring_bytes or M.DEFAULT_RING_BYTES,
    now = opts.now or mono_ms,
    wallclock = opts.wallclock or log.wallclock,
    max_line = opts.max_line or line_splitter.MAX_LINE,
    _entries = {}, -- id -> entry record
    _order = {}, -- ids in declaration (or first seen) order
    _rings = {}, -- id -> {items, first, last, bytes}
    _splitters = {}, -- id -> stream -> feed
    _subs = {},
    _seq = 0, -- output line sequence number (for followers)
  }, Sink)
  -- A plain table, as SDK effects are (helpers such as `checkWebUrl(effects, url)` recognise
  -- a leading effects table by that): the methods are copied in, not inherited.
  setmetatable(self, nil)
  for name, method in pairs(Sink) do
    if type(method) == 'function' and name ~= '__index' then
      self[name] = method
    end
  end
  -- The effects functions are called as plain functions (`effects.setHealth(h)`, as in the
  -- SDK) or as methods: bind them to this sink so both work.
  for name, method in pairs(EFFECTS) do
    self[name] = function(a, ...)
      if a == self then
        return method(self, ...)
      end
      return method(self, a, ...)
    end
  end
  return self
end

--- The process-wide default sink (a text log on stdout unless `set_default` replaced it),
-- used by chains built without `effects`.
function M.default()
  if not default_sink then
    default_sink = M.new()
  end
  return default_sink
end

--- Replace the process-wide default sink (the CLI installs its configured one).
function M.set_default(sink)
  default_sink = sink
end

function Sink:_entry(id, kind)
  local e = self._entries[id]
  if not e then
    e = { id = id, kind = kind, restarts = 0, since = self.wallclock() }
    self._entries[id] = e
    self._order[#self._order + 1] = id
    if self.writer then
      self.writer:set_ids({ id })
    end
  elseif kind and not e.kind then
    e.kind = kind
  end
  return e
end

function Sink:_emit(ev)
  -- A copy: a subscriber may unsubscribe itself or another one (a dropped control client).
  for _, fn in ipairs(table.move(self._subs, 1, #self._subs, 1, {})) do
    local ok, err = pcall(fn, ev, self)
    if not ok and self.writer then
      self.writer:message('status subscriber failed: ' .. tostring(err), 'error')
    end
  end
end

function Sink:_log(ev)
  if self.writer then
    self.writer:event(ev)
  end
end

--- Subscribe `fn(ev, sink)` to every change. `ev.type` is `'state'`, `'health'`, `'process'`,
-- `'output'` (`ev.lines` = the new line records), `'declare'` or `'log'`; `ev.id` names the
-- entry. Returns a function that unsubscribes.
function Sink:subscribe(fn)
  self._subs[#self._subs + 1] = fn
  return function()
    for i, f in ipairs(self._subs) do
      if f == fn then
        table.remove(self._subs, i)
        return
      end
    end
  end
end

--- Declare the entries of a built chain (`chain:entries()`): fixes the order, kinds,
-- requirements and display names; entries not in `entries` are forgotten (a reload).
-- `opts.reset`: the previous graph is gone, so forget every entry's live state (result, pid,
-- health, restarts); the last exit and the output kept stay.
function Sink:declare(entries, opts)
  local keep = {}
  local order = {}
  for _, d in ipairs(entries) do
    keep[d.id] = true
    local e = self:_entry(d.id, d.kind)
    if opts and opts.reset then
      e.result, e.message, e.health, e.pid, e.started = nil, nil, nil, nil, nil
      e.restarts, e._raw, e.since = 0, nil, self.wallclock()
    end
    e.kind = d.kind or e.kind
    e.requires = d.requires or {} -- read only here (Daemons:entries() gives a copy)
    e.name = d.display or e.name
    e.exec = d.exec
    e.ready = d.ready
    order[#order + 1] = d.id
  end
  for _, id in ipairs(self._order) do
    if not keep[id] then
      self._entries[id] = nil
      self._rings[id] = nil
      self._splitters[id] = nil
    end
  end
  self._order = order
  if self.writer then
    self.writer:set_ids(order)
  end
  self:_emit({ type = 'declare' })
end

--- The SDK's `effects.setHealth({id, name, result, message})`, for visible entries: the
-- health as users see it (a failure inside the grace period is reported as `starting`). The
-- log shows a visible entry's changes from here, so a normal start does not read as a failure.
function Sink:setHealth(h)
  if type(h) ~= 'table' or h.id == nil then
    return
  end
  local e = self:_entry(h.id)
  e.visible = true
  e.name = h.name or e.name
  local old = e.health
  e.health = { result = h.result, message = h.message }
  if not e._raw then
    -- An effects caller that only reports health (upstream style): it is the state too.
    e.result, e.message = h.result, h.message
  end
  if old and old.result == h.result and old.message == h.message then
    return
  end
  if not old or old.result ~= h.result then
    if not e._raw then
      e.since = self.wallclock()
    end
    self:_log({ event = 'state', id = h.id, kind = e.kind, old = old and old.result,
      result = h.result, message = h.message,
      raw = e._raw and e.result ~= h.result and e.result or nil })
  end
  self:_emit({ type = 'health', id = h.id, result = h.result, message = h.message,
    name = e.name })
end

--- Every raw result change of any entry: `{id, kind, result, message, visible}` (the result
-- that gates dependents). Logs `<id>: <old> -> <new> (<message>)` when the result of an entry
-- without visible health (a oneshot, a hidden check) changes.
function Sink:onState(s)
  if type(s) ~= 'table' or s.id == nil then
    return
  end
  local e = self:_entry(s.id, s.kind)
  e._raw = true
  if s.visible ~= nil then
    e.visible = s.visible
  end
  local old = e.result
  if old == s.result and e.message == s.message then
    return
  end
  e.result, e.message = s.result, s.message
  if old ~= s.result then
    e.since = self.wallclock()
    if not e.visible then
      self:_log({ event = 'state', id = s.id, kind = e.kind, old = old, result = s.result,
        message = s.message })
    end
  end
  self:_emit({ type = 'state', id = s.id, old = old, result = s.result, message = s.message })
end

--- A process event of an entry: `{id, event='spawn'|'exit'|'spawn-error'|'term'|'kill', pid,
-- code, signal, message, restarts}`.
function Sink:onProcess(p)
  if type(p) ~= 'table' or p.id == nil then
    return
  end
  local e = self:_entry(p.id)
  if p.restarts then
    e.restarts = p.restarts
  end
  local ev = p.event
  if ev == 'spawn' then
    e.pid = p.pid
    e.started = self.now()
  elseif ev == 'exit' then
    e.lastExit = { code = p.code, signal = p.signal, time = self.wallclock() }
    e.pid, e.started = nil, nil
    -- The process is gone: its unterminated last lines are complete now.
    for stream in pairs(self._splitters[p.id] or {}) do
      self:output(p.id, stream, nil)
    end
  elseif ev == 'spawn-error' then
    e.lastExit = { error = p.message, time = self.wallclock() }
    e.pid, e.started = nil, nil
  end
  self:_log({ event = ev, id = p.id, pid = p.pid, code = p.code, signal = p.signal,
    message = p.message, restarts = p.restarts })
  self:_emit({ type = 'process', id = p.id, event = ev, pid = p.pid, code = p.code,
    signal = p.signal, message = p.message, restarts = p.restarts })
end

function Sink:_ring(id)
  local r = self._rings[id]
  if not r then
    r = { items = {}, first = 1, last = 0, bytes = 0 }
    self._rings[id] = r
  end
  return r
end

-- Append a line record; drop the oldest while over `ring_size` lines or `ring_bytes` bytes.
function Sink:_push(id, item)
  if self.ring_size <= 0 then
    return
  end
  local r = self:_ring(id)
  r.last = r.last + 1
  r.items[r.last] = item
  r.bytes = r.bytes + #item.line
  while r.last - r.first + 1 > self.ring_size
    or (r.bytes > self.ring_bytes and r.last > r.first) do
    r.bytes = r.bytes - #r.items[r.first].line
    r.items[r.first] = nil
    r.first = r.first + 1
  end
end

--- Raw output of entry `id` on `stream` (`'stdout'`/`'stderr'`); `chunk` nil = EOF (the
-- pending partial line is flushed).
function Sink:output(id, stream, chunk)
  stream = stream or 'stdout'
  local by_stream = self._splitters[id]
  if not by_stream then
    by_stream = {}
    self._splitters[id] = by_stream
  end
  local sp = by_stream[stream]
  if not sp then
    local batch = {}
    sp = {
      batch = batch,
      feed = line_splitter.new(function(line)
        batch[#batch + 1] = line
      end, self.max_line),
    }
    by_stream[stream] = sp
  end
  sp.feed(chunk)
  local batch = sp.batch
  if #batch == 0 then
    return
  end
  local lines = {}
  for i = 1, #batch do
    lines[i] = batch[i]
    batch[i] = nil
  end
  self:_entry(id)
  if self.writer then
    self.writer:lines(id, stream, lines)
  end
  local ts = self.wallclock()
  local records = {}
  for i, line in ipairs(lines) do
    self._seq = self._seq + 1
    local item = { seq = self._seq, ts = ts, stream = stream, line = line }
    self:_push(id, item)
    records[i] = item
  end
  if #self._subs > 0 then
    self:_emit({ type = 'output', id = id, stream = stream, lines = records })
  end
end

--- A message of the orchestrator itself (`level`: info, warning, error); `fields` are added to
-- the JSON record (for example `id`).
function Sink:message(msg, level, fields)
  if self.writer then
    self.writer:message(msg, level, fields)
  end
  self:_emit({ type = 'log', level = level or 'info', message = msg,
    id = fields and fields.id or nil })
end

--- The effects call for the Daemons layer's own messages: `effects.log(level, msg)`.
function Sink:_effects_log(level, msg)
  if level == 'warn' then
    level = 'warning'
  end
  self:message(tostring(msg), level)
end

--- The recent output of `id`, oldest first: `{seq, ts, stream, line}` records, at most `n`
-- (default all kept).
function Sink:logs(id, n)
  local r = self._rings[id]
  local out = {}
  if not r then
    return out
  end
  local count = r.last - r.first + 1
  n = math.min(n or count, count)
  for i = r.last - n + 1, r.last do
    out[#out + 1] = r.items[i]
  end
  return out
end

--- The ids known, in declaration order.
function Sink:ids()
  return copy(self._order)
end

--- The current state of one entry (a copy), or nil.
function Sink:get(id)
  local e = self._entries[id]
  if not e then
    return nil
  end
  local s = {
    id = e.id,
    kind = e.kind,
    name = e.name,
    visible = e.visible,
    result = e.result,
    message = e.message,
    health = copy(e.health),
    pid = e.pid,
    restarts = e.restarts,
    lastExit = copy(e.lastExit),
    since = e.since,
    uptime = e.started and math.max(0, self.now() - e.started) or nil,
    requires = copy(e.requires or {}),
  }
  local waiting = {}
  for _, dep in ipairs(e.requires or {}) do
    local d = self._entries[dep]
    if not d or d.result ~= 'success' then
      waiting[#waiting + 1] = dep
    end
  end
  s.waitingOn = waiting
  return s
end

--- Every entry's state, in declaration order: `{id, kind, result, message, pid, restarts,
-- lastExit = {code, signal, time}, since, uptime, name, health, requires, waitingOn}`.
function Sink:snapshot()
  local out = {}
  for _, id in ipairs(self._order) do
    out[#out + 1] = self:get(id)
  end
  return out
end

--- `ready, total`: how many entries are `success` right now, out of how many.
function Sink:counts()
  local ready = 0
  for _, id in ipairs(self._order) do
    if self._entries[id].result == 'success' then
      ready = ready + 1
    end
  end
  return ready, #self._order
end

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

EFFECTS = {
  setHealth = Sink.setHealth,
  onState = Sink.onState,
  onProcess = Sink.onProcess,
  output = Sink.output,
  log = Sink._effects_log,
}

local function iso(t)
  return t and log.iso_time(t) or nil
end

--- A snapshot as plain JSON data: times as ISO 8601 strings, lists as arrays (`orch.log.encode`
-- ready). Used by the status file and, later, the control socket.
function M.json_view(snap)
  local out = log.array()
  for i, s in ipairs(snap) do
    local x = {}
    for k, v in pairs(s) do
      x[k] = v
    end
    x.since = iso(s.since)
    if s.lastExit then
      x.lastExit = copy(s.lastExit)
      x.lastExit.time = iso(s.lastExit.time)
    end
    x.requires = log.array(copy(s.requires or {}))
    x.waitingOn = log.array(copy(s.waitingOn or {}))
    out[i] = x
  end
  return out
end

--- Keep `path` holding the current state of every entry: rewritten atomically (a temporary
-- file in the same directory, then rename) now and on every change of `sink`.
-- `meta()` returns extra top-level fields (the orchestrator's own state). Returns an object
-- with `write()` (force a rewrite; returns true or nil, message) and `close()`.
function M.file(sink, path, meta)
  local self = {}
  local tmp = ('%s.%s.tmp'):format(path, tostring(sink):match('0x(%x+)') or 'new')
  local warned = false
  function self.write()
    local doc = { v = 1, updated = log.iso_time(sink.wallclock()) }
    for k, v in pairs(meta and meta() or {}) do
      doc[k] = v
    end
    doc.ready, doc.total = sink:counts()
    doc.entries = M.json_view(sink:snapshot())
    local f, err = io.open(tmp, 'w')
    if f then
      local ok, werr = f:write(log.encode(doc), '\n')
      local cok, cerr = f:close()
      if not ok or not cok then
        err = werr or cerr
        os.remove(tmp)
      else
        local rok, rerr = os.rename(tmp, path)
        if rok then
          warned = false
          return true
        end
        err = rerr
        os.remove(tmp)
      end
    end
    if not warned then
      warned = true
      sink:message(('cannot write status file %s: %s'):format(path, tostring(err)), 'warning')
    end
    return nil, err
  end
  local unsubscribe = sink:subscribe(function(ev)
    if ev.type ~= 'output' and ev.type ~= 'log' then
      self.write()
    end
  end)
  function self.close()
    unsubscribe()
  end
  return self
end

return M
