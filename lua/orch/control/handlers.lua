--- What each control command does (`orch.control.protocol` lists them), on a connection of
-- `orch.control.server`: the request is decoded and checked here, then answered through the
-- connection (`send`, `fail`, `send_big`, `hold`/`release`, `drain`, `subs`, `timer`).
-- @module orch.control.handlers
local json = require 'orch.runtime.json'
local time = require 'orch.runtime.time'
local util = require 'orch.runtime.util'
local status_json = require 'orch.status.json'
local protocol = require 'orch.control.protocol'

local M = {}

--- Status watchers get at most one update per this many ms.
M.WATCH_DELAY = 100

--- Lines per entry `logs` sends by default.
M.DEFAULT_LINES = 10

local HANDLERS = {}

-- Entry ids of the sink, and a lookup set.
local function sink_ids(srv)
  local ids = srv.backend.sink:ids()
  local set = {}
  for _, id in ipairs(ids) do
    set[id] = true
  end
  return ids, set
end

local function unknown(conn, id, ids)
  return conn:fail('unknown-entry', ("no entry '%s' (entries: %s)"):format(tostring(id):sub(1,
    128), #ids > 0 and table.concat(ids, ', ') or 'none'))
end

local function meta(srv)
  local m = srv.backend.meta and srv.backend.meta() or {}
  m.ready, m.total = srv.backend.sink:counts()
  m.name = m.name or srv.name
  m.control = srv.path
  return m
end

local function status_obj(srv, id)
  local snap
  if id then
    snap = { srv.backend.sink:get(id) }
  else
    snap = srv.backend.sink:snapshot()
  end
  return { ok = true, type = 'status', orch = meta(srv), entries = status_json.view(snap) }
end

function HANDLERS.ping(conn)
  conn:send({ ok = true, type = 'pong', orch = meta(conn.srv) })
end

-- Watch the status for `conn`: an update is due (for the worker, `M.due`) at most every
-- WATCH_DELAY ms after a change.
local function watch(conn, id)
  local srv = conn.srv
  local w = { id = id, due = false }
  local t = conn:timer()
  local pending = false
  local function changed()
    if not pending and not conn.closed then
      pending = true
      t:start(M.WATCH_DELAY, 0, function()
        pending, w.due = false, true
        conn:poke()
      end)
    end
  end
  conn.watches = conn.watches or {}
  conn.watches[#conn.watches + 1] = w
  conn.subs[#conn.subs + 1] = srv.backend.sink:subscribe(function(ev)
    if ev.type ~= 'output' and ev.type ~= 'log' then
      changed()
    end
  end)
  srv.watchers[conn] = changed
  conn.subs[#conn.subs + 1] = function()
    srv.watchers[conn] = nil
  end
end

function HANDLERS.status(conn, r)
  local srv = conn.srv
  local id = r.id
  if id ~= nil then
    if type(id) ~= 'string' then
      return conn:fail('bad-request', '"id" must be a string')
    end
    if not srv.backend.sink:has(id) then -- no list of every id unless it is needed
      return unknown(conn, id, (sink_ids(srv)))
    end
  end
  if conn:send_big(status_obj(srv, id), 'entries') and r.watch then
    watch(conn, id)
  end
end

--- Send the watch updates that are due (yields). True when there was one.
function M.due(conn)
  local sent = false
  for _, w in ipairs(conn.watches or {}) do
    if w.due and not conn.closed then
      w.due, sent = false, true
      if not w.id or conn.srv.backend.sink:get(w.id) ~= nil then -- else gone (a reload)
        local obj = status_obj(conn.srv, w.id)
        obj.ok = nil
        conn:send_big(obj, 'entries')
      end
    end
  end
  return sent
end

local function line_obj(id, rec)
  return { type = 'line', id = id, seq = rec.seq, ts = rec.iso or rec.ts and time.iso(rec.ts),
    stream = rec.stream, line = rec.line }
end

-- The ids a `logs` request asks for, or nil after replying with the error.
local function log_ids(conn, r)
  local all, set = sink_ids(conn.srv)
  local ids = r.ids
  if type(ids) == 'string' then
    ids = { ids }
  end
  if ids == nil or (type(ids) == 'table' and next(ids) == nil) then
    return all, all
  elseif not json.is_array(ids) then
    return conn:fail('bad-request', '"ids" must be an array of entry ids') and nil
  end
  for _, id in ipairs(ids) do
    if type(id) ~= 'string' then
      return conn:fail('bad-request', '"ids" must be an array of entry ids') and nil
    end
    if not set[id] then
      return unknown(conn, id, all) and nil
    end
  end
  return ids, all
end

-- The last `n` lines of each of `ids` at or after `since` (nil: any), oldest first, as
-- `{id, record}`: from the entry's log files when it has some (orch.log.files), else from the
-- ring kept in memory. Ordered by time, then entry, then as kept (lines from files have no
-- `seq`).
local function history(srv, ids, n, since)
  local files = srv.backend.log_files
  local backlog = {}
  for _, id in ipairs(ids) do
    local recs = files and files:history(id, n, since)
    if not recs then
      recs = srv.backend.sink:logs(id, since and nil or n)
      if since then
        local kept = {}
        for _, rec in ipairs(recs) do
          if rec.ts and rec.ts >= since then
            kept[#kept + 1] = rec
          end
        end
        recs = table.move(kept, math.max(1, #kept - n + 1), #kept, 1, {})
      end
    end
    for i, rec in ipairs(recs) do
      backlog[#backlog + 1] = { id, rec, i }
    end
  end
  table.sort(backlog, function(a, b)
    local ta, tb = a[2].ts or 0, b[2].ts or 0
    if ta ~= tb then
      return ta < tb
    end
    if a[1] ~= b[1] then
      return a[1] < b[1]
    end
    return a[3] < b[3]
  end)
  return backlog
end

function HANDLERS.logs(conn, r)
  local srv = conn.srv
  local ids, all = log_ids(conn, r)
  if not ids then
    return
  end
  local n = r.n
  if n == nil then
    n = M.DEFAULT_LINES
  end
  if math.type(n) ~= 'integer' or n < 0 then
    return conn:fail('bad-request', '"n" must be a non-negative integer')
  end
  local since = r.since
  if since ~= nil and type(since) ~= 'number' then
    return conn:fail('bad-request', '"since" must be a time in seconds since the epoch')
  end
  local wanted = {}
  for _, id in ipairs(ids) do
    wanted[id] = true
  end
  local follow = r.follow and true or false
  -- Lines that arrive while the backlog is written are held by the connection (bounded).
  conn:hold()
  if follow then
    conn.subs[#conn.subs + 1] = srv.backend.sink:subscribe(function(ev)
      if ev.type ~= 'output' or not wanted[ev.id] or conn.closed then
        return
      end
      for _, rec in ipairs(ev.lines) do
        if not conn:send(line_obj(ev.id, rec)) then
          return
        end
      end
    end)
  end
  local backlog = history(srv, ids, n, since)
  local head = { ok = true, type = 'logs', ids = json.array(ids), entries = json.array(all),
    follow = follow }
  if not conn:write(protocol.line(head)) then
    return
  end
  for _, item in ipairs(backlog) do
    if not (conn:drain() and conn:write(protocol.line(line_obj(item[1], item[2])))) then
      return
    end
  end
  if not follow then
    conn:write(protocol.line({ type = 'end' }))
  end
  conn:release()
end

-- The recent events of the sink (orch.status.history) as lines of the JSON log, oldest first,
-- for `orch timeline --control`; `now` ends the picture, `dropped` counts the records the ring
-- no longer holds.
function HANDLERS.history(conn)
  local sink = conn.srv.backend.sink
  local lines, dropped = sink:history()
  conn:send_big({ ok = true, type = 'history', orch = meta(conn.srv), now = time.iso(
    sink.wallclock()), dropped = dropped, events = json.array(lines) }, 'events')
end

-- `orch logs --reopen`: reopen the log files, as SIGUSR2 does.
function HANDLERS.reopen(conn)
  local reopen = conn.srv.backend.reopen
  if not reopen then
    return conn:fail('unavailable', 'this orch has no log files to reopen')
  end
  reopen()
  conn:send({ ok = true, type = 'reopened' })
end

-- The chain to act on, or nil after replying.
local function chain_for(conn, r)
  if type(r.id) ~= 'string' then
    conn:fail('bad-request', '"id" must be an entry id')
    return nil
  end
  local chain, why = conn.srv.backend.chain()
  if not chain then
    conn:fail('unavailable', why or 'no graph is running')
    return nil
  end
  if not chain:entry(r.id) then
    local ids = {}
    for _, e in ipairs(chain:entries()) do
      ids[#ids + 1] = e.id
    end
    unknown(conn, r.id, ids)
    return nil
  end
  return chain
end

local function operation(verb, method, past)
  return function(conn, r)
    local chain = chain_for(conn, r)
    if not chain then
      return
    end
    conn.srv:log(('control: %s %s%s'):format(verb, r.id, conn:who()))
    local ok, ids = pcall(chain[method], chain, r.id)
    if not ok then
      return conn:fail('unavailable', util.error_message(ids))
    end
    conn:send({ ok = true, type = past, id = r.id, ids = json.array(ids) })
  end
end

HANDLERS.stop = operation('stop', 'stopEntry', 'stopped')
HANDLERS.start = operation('start', 'startEntry', 'started')
HANDLERS.restart = operation('restart', 'restartEntry', 'restarted')

function HANDLERS.signal(conn, r)
  local chain = chain_for(conn, r)
  if not chain then
    return
  end
  local name = protocol.signal_name(r.signal)
  if not name then
    return conn:fail('bad-signal', ("unknown signal '%s'"):format(tostring(r.signal):sub(1, 32)))
  end
  local pid, why = chain:signalEntry(r.id, name)
  if not pid then
    return conn:fail('no-process', why)
  end
  conn.srv:log(('control: sent %s to %s, pid %d%s'):format(name, r.id, pid, conn:who()))
  conn:send({ ok = true, type = 'signalled', id = r.id, signal = name, pid = pid })
end

function HANDLERS.shutdown(conn)
  conn.srv:log('control: shutdown requested' .. conn:who())
  conn:send({ ok = true, type = 'stopping' })
  -- The connection stays open until orch has stopped: the client waits for its end.
  conn.subs[#conn.subs + 1] = function() end
  conn.srv.backend.shutdown()
end

-- Re-evaluate main.lua and apply it (by difference; `full`: replace the whole graph); the
-- reply comes when the reload is done.
function HANDLERS.reload(conn, r)
  if r.full ~= nil and type(r.full) ~= 'boolean' then
    return conn:fail('bad-request', '"full" must be a boolean')
  end
  local reload = conn.srv.backend.reload
  if not reload then
    return conn:fail('unavailable', 'this orch cannot reload')
  end
  local ok, res = reload(r.full == true, 'control: reload requested' .. conn:who())
  if not ok then
    return conn:fail('reload-failed', tostring(res))
  end
  if type(res) ~= 'table' then -- a full reload: its summary
    return conn:send({ ok = true, type = 'reloaded', full = true, message = tostring(res) })
  end
  conn:send({ ok = true, type = 'reloaded', kept = json.array(res.kept),
    restarted = json.array(res.restarted), added = json.array(res.added),
    removed = json.array(res.removed), signalled = json.array(res.signalled or {}),
    why = next(res.why) and res.why or nil })
end

-- A request line decoded and checked: the request, or nil, code and message.
local function parse(line)
  if not line:match('^%s*{') then
    if json.decode(line) == nil then
      return nil, 'bad-json', 'malformed JSON'
    end
    return nil, 'bad-request', 'a request is a JSON object'
  end
  local r, why = json.decode(line)
  if r == nil then
    return nil, 'bad-json', 'malformed JSON: ' .. why
  end
  if type(r) ~= 'table' then
    return nil, 'bad-request', 'a request is a JSON object'
  end
  for k, v in pairs(r) do
    if v == json.null() then
      r[k] = nil
    end
  end
  local bad = protocol.check_version(r.v)
  if bad then
    return nil, 'bad-version', bad
  end
  if type(r.cmd) ~= 'string' then
    return nil, 'bad-request', 'the request has no "cmd"'
  end
  return r
end

--- Answer one request of `conn` (yields): `{line = ...}` or `{too_large = true}`.
function M.handle(conn, req)
  if req.too_large then
    return conn:fail('too-large', ('request line over %d bytes'):format(protocol.MAX_REQUEST))
  end
  local r, code, message = parse(req.line)
  if not r then
    return conn:fail(code, message)
  end
  local h = HANDLERS[r.cmd]
  if not h then
    local names = {}
    for k in pairs(HANDLERS) do
      names[#names + 1] = k
    end
    table.sort(names)
    return conn:fail('unknown-command', ("unknown command '%s' (one of: %s)"):format(
      r.cmd:sub(1, 64), table.concat(names, ', ')))
  end
  local hok, herr = xpcall(h, debug.traceback, conn, r)
  if not hok then
    conn.srv:log('control: ' .. tostring(herr), 'error')
    return conn:fail('internal', 'internal error: ' .. tostring(herr):match('^[^\n]*'))
  end
end

return M
