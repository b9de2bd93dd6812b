--- The status sink: the `effects` a Daemons chain reports to, and the orchestrator's view of
-- every entry.
--
-- The Daemons layer calls `setHealth` (the SDK call, visible entries), `onState` (every raw
-- result change of any entry), `onProcess` (spawn, exit, spawn-error, term, kill) and `output`
-- (raw chunks of entries without their own output callbacks). The sink keeps the current state
-- of every entry (`snapshot`), the recent output of every entry (`logs`, orch.output_ring),
-- writes the log through an `orch.log` writer, and tells subscribers about every change
-- (`subscribe`): the status file (orch.status_file), sd_notify and the control socket hook in
-- there.
--
-- Times: `since`, `lastExit.time` and line `ts` are wall-clock seconds (float); `uptime` is
-- milliseconds.
-- @module orch.status
local log = require 'orch.log'
local output_ring = require 'orch.status.output_ring'
local history = require 'orch.status.history'

local M = {}

--- Lines kept per entry by default.
M.DEFAULT_RING = output_ring.DEFAULT_LINES

--- Bytes of output kept per entry at most (whichever bound is reached first; the newest line
-- is always kept).
M.DEFAULT_RING_BYTES = output_ring.DEFAULT_BYTES

--- The results an entry can have.
M.RESULTS = { 'success', 'failure', 'starting', 'waiting', 'loading', 'disabled' }

local Sink = {}
Sink.__index = Sink
M.Sink = Sink

local EFFECTS -- name -> method, bound per sink in `new` (filled below the methods)

local function mono_ms()
  local ok, core = pcall(require, 'orch.core')
  if ok and type(core) == 'table' and core.now then
    return core.now()
  end
  return math.floor(os.clock() * 1000)
end

local copy = require('orch.runtime.util').deep_copy

--- A new sink.
-- `opts`: `writer` (an `orch.log` Writer; false for no log; default a text writer on stdout),
-- `ring` (lines kept per entry, default 1000; 0 keeps none), `ring_bytes` (bytes kept per
-- entry, default 1 MiB), `now` (monotonic ms),
-- `wallclock` (seconds), `max_line` (bytes, default `orch.line_splitter.MAX_LINE`),
-- `history` (events kept for `history()`, default `orch.status.history.DEFAULT_EVENTS`; 0
-- keeps none).
-- @treturn Sink
function M.new(opts)
  opts = opts or {}
  local writer = opts.writer
  if writer == nil then
    writer = log.new()
  end
  local self = setmetatable({
    writer = writer or nil,
    now = opts.now or mono_ms,
    wallclock = opts.wallclock or log.wallclock,
    _entries = {}, -- id -> entry record
    _order = {}, -- ids in declaration (or first seen) order: the keys of _entries
    _ready = 0, -- how many entries have the result `success` (counts() without a scan)
    _output = output_ring.new({ lines = opts.ring, bytes = opts.ring_bytes,
      max_line = opts.max_line }),
    _subs = {},
  }, Sink)
  self._history = history.new(opts.history, self.wallclock)
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

-- Set an entry's result and message, keeping the count of ready entries.
local function set_result(self, e, result, message)
  if e.result == 'success' then
    self._ready = self._ready - 1
  end
  if result == 'success' then
    self._ready = self._ready + 1
  end
  e.result, e.message = result, message
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
  self._history:push(ev)
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
      set_result(self, e, nil, nil)
      e.health, e.pid, e.started = nil, nil, nil
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
      set_result(self, self._entries[id], nil, nil)
      self._entries[id] = nil
      self._output:forget(id)
    end
  end
  self._order = order
  self._history:push(log.graph_event(entries))
  if self.writer then
    self.writer:set_ids(order)
    if self.writer.declare then -- a writer with log files (orch.log.files)
      self.writer:declare(entries)
    end
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
    set_result(self, e, h.result, h.message)
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

--- Every raw result change of any entry: `{id, kind, result, message, visible, failed,
-- blocked}` (`failed`: the entry gave up; `blocked`: the id of the failed entry it waits on;
-- the result
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
  e.failed, e.blocked = s.failed, s.blocked -- gave up / kept down by one that did (issue 14)
  local old = e.result
  if old == s.result and e.message == s.message then
    return
  end
  set_result(self, e, s.result, s.message)
  if old ~= s.result then
    e.since = self.wallclock()
    if not e.visible then
      self:_log({ event = 'state', id = s.id, kind = e.kind, old = old, result = s.result,
        message = s.message })
    end
  end
  self:_emit({ type = 'state', id = s.id, old = old, result = s.result, message = s.message })
end

--- A process event of an entry: `{id, event='spawn'|'exit'|'spawn-error'|'term'|'kill'|
-- 'signal'|'restart'|'gave-up', pid, code, signal, message, restarts, delay, oom, clean}`.
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
    for _, stream in ipairs(self._output:streams(p.id)) do
      self:output(p.id, stream, nil)
    end
  elseif ev == 'spawn-error' then
    e.lastExit = { error = p.message, time = self.wallclock() }
    e.pid, e.started = nil, nil
  end
  self:_log({ event = ev, id = p.id, pid = p.pid, code = p.code, signal = p.signal,
    message = p.message, restarts = p.restarts, delay = p.delay, oom = p.oom, clean = p.clean })
  self:_emit({ type = 'process', id = p.id, event = ev, pid = p.pid, code = p.code,
    signal = p.signal, message = p.message, restarts = p.restarts })
end

--- Raw output of entry `id` on `stream` (`'stdout'`/`'stderr'`); `chunk` nil = EOF (the
-- pending partial line is flushed).
function Sink:output(id, stream, chunk)
  stream = stream or 'stdout'
  local block, count = self._output:split(id, stream, chunk)
  if not block then
    return
  end
  self:_entry(id)
  if self.writer then
    self.writer:block(id, stream, block, count)
  end
  local batch = self._output:record(id, stream, block, count, self.wallclock())
  if #self._subs > 0 then
    -- `lines`, the records, made only when a subscriber reads them (a follower of the logs)
    self:_emit(setmetatable({ type = 'output', id = id, stream = stream }, {
      __index = function(ev, k)
        if k == 'lines' then
          local records = output_ring.records(batch)
          rawset(ev, 'lines', records)
          return records
        end
      end,
    }))
  end
end

--- A message of the orchestrator itself (`level`: info, warning, error); `fields` are added to
-- the JSON record (for example `id`).
function Sink:message(msg, level, fields)
  local ev = { event = 'log', level = level or 'info', message = msg }
  for k, v in pairs(fields or {}) do
    ev[k] = v
  end
  self._history:push(ev)
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
  return self._output:logs(id, n)
end

--- The recent events (orch.status.history): JSON-log lines oldest first, and how many older
-- ones were dropped.
function Sink:history()
  return self._history:lines()
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
    failed = e.failed,
    blocked = e.blocked,
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
  return self._ready, #self._order
end

--- Whether `id` is an entry of the sink.
function Sink:has(id)
  return self._entries[id] ~= nil
end

EFFECTS = {
  setHealth = Sink.setHealth,
  onState = Sink.onState,
  onProcess = Sink.onProcess,
  output = Sink.output,
  log = Sink._effects_log,
}

return M
