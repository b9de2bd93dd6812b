--- `orch ui`'s loop: a client of a running orch's control socket (a status watch, a logs
-- follow, one connection per action), keys in (orch.cli.ui.bindings says what each does),
-- frames out (orch.cli.ui.view) on the terminal (orch.cli.ui.terminal). Every way out (q, a
-- signal, orch stopping, an error) goes through `terminal:leave()`.
-- @module orch.cli.ui.app
local core = require 'orch.core'
local sched = require 'orch.runtime.sched'
local client_mod = require 'orch.control.client'
local keys_mod = require 'orch.cli.ui.keys'
local view = require 'orch.cli.ui.view'

local M = {}

--- Lines the log pane keeps for all entries.
M.KEEP_ALL = 1000

--- Lines the log pane keeps per entry.
M.KEEP_ONE = 300

--- Backlog lines per entry asked for when attaching.
M.BACKLOG = 50

--- Frames are drawn at most this often (ms).
M.FRAME_MS = 50

--- A frame at least this often (ms), for the uptimes.
M.TICK_MS = 1000

local App = {}
App.__index = App

local function push(list, item, keep)
  list[#list + 1] = item
  if #list > keep * 2 then -- trimmed in halves: amortised O(1) per line
    table.move(list, #list - keep + 1, #list, 1)
    for i = #list, keep + 1, -1 do
      list[i] = nil
    end
  end
end

-- Connect, send `req` and read the reply: the client and reply, or nil and why.
local function ask(where, req)
  local client, msg = client_mod.connect(where)
  if not client then
    return nil, msg
  end
  client:send(req)
  local reply, why = client:recv()
  if not reply then
    client:close()
    return nil, why == 'eof' and 'orch closed the connection' or why
  end
  if reply.ok == false then
    client:close()
    local e = type(reply.error) == 'table' and reply.error or {}
    return nil, tostring(e.message or e.code or 'request failed')
  end
  return client, reply
end

function App:wakeup()
  self.ev:set()
end

function App:say(msg)
  self.message, self.message_at = msg, core.now()
  self:wakeup()
end

-- The status watch: every update replaces the entries; the end of the stream means orch is
-- gone.
function App:watch_status(client)
  while true do
    local obj, why = client:recv()
    if not obj then
      self.gone = why == 'eof' and 'the orch has stopped' or why
      self:wakeup()
      return
    end
    if type(obj.entries) == 'table' then
      self.orch, self.entries, self.received = obj.orch or {}, obj.entries, core.now()
      if self.embedded and (self.orch.phase == 'stopping' or self.orch.phase == 'stopped') then
        self.gone = 'orch is stopping'
      end
      self:wakeup()
    end
  end
end

-- The logs follow of `ids` (with `n` lines of backlog each).
function App:follow_logs(n)
  local client, head = ask(self.where, { cmd = 'logs', n = n, follow = true })
  if not client then
    self:say('logs: ' .. tostring(head))
    return
  end
  self.log_ids = {}
  for _, id in ipairs(type(head.ids) == 'table' and head.ids or {}) do
    self.log_ids[id] = true
  end
  self.logs_client = client
  while true do
    local obj = client:recv()
    if not obj then
      return
    end
    if obj.type == 'line' and type(obj.id) == 'string' and type(obj.line) == 'string' then
      local rec = { id = obj.id, line = obj.line, stream = obj.stream }
      push(self.all_logs, rec, M.KEEP_ALL)
      self.by_id[obj.id] = self.by_id[obj.id] or {}
      push(self.by_id[obj.id], rec, M.KEEP_ONE)
      self:wakeup()
    end
  end
end

-- A new entry (a reload): follow the logs again, with the new set of ids.
function App:check_log_ids()
  if not self.log_ids or not self.entries then
    return
  end
  for _, e in ipairs(self.entries) do
    if not self.log_ids[e.id] then
      self.log_ids = nil
      if self.logs_client then
        self.logs_client:close()
      end
      self:spawn(function()
        self:follow_logs(0)
      end)
      return
    end
  end
end

function App:spawn(fn)
  local t = sched.spawn(fn)
  t.quiet = true
  self.tasks[#self.tasks + 1] = t
  return t
end

-- The entries shown: hidden ones only with `h`, those matching the filter.
function App:shown()
  local list, hidden = {}, 0
  local f = self.filter and self.filter:lower() or ''
  for _, e in ipairs(self.entries or {}) do
    if e.visible == false then
      hidden = hidden + 1
    end
    local text = table.concat({ tostring(e.id), tostring(e.kind or ''), tostring(e.result or ''),
      tostring(e.message or ''), type(e.health) == 'table' and tostring(e.health.message or '')
      or '' }, ' '):lower()
    if (self.show_hidden or e.visible ~= false) and (f == '' or text:find(f, 1, true)) then
      list[#list + 1] = e
    end
  end
  return list, hidden
end

function App:selected_entry()
  local list = self:shown()
  for _, e in ipairs(list) do
    if e.id == self.sel_id then
      return e
    end
  end
  return list[1]
end

-- An action on the selected entry, in a task of its own (a stop waits for the processes).
function App:act(cmd, extra)
  local e = self:selected_entry()
  if not e then
    return self:say('no entry selected')
  end
  local req = { cmd = cmd, id = e.id }
  for k, v in pairs(extra or {}) do
    req[k] = v
  end
  self:say(('%s %s...'):format(cmd, e.id))
  self:spawn(function()
    local client, reply = ask(self.where, req)
    if not client then
      return self:say(('%s %s: %s'):format(cmd, e.id, tostring(reply)))
    end
    client:close()
    local ids = type(reply.ids) == 'table' and table.concat(reply.ids, ', ') or e.id
    if cmd == 'signal' then
      self:say(('sent %s to %s (pid %s)'):format(req.signal, e.id, tostring(reply.pid)))
    elseif cmd == 'stop' then
      self:say('stopped: ' .. ids)
    elseif ids == '' then
      self:say(('nothing to start: %s and what requires it are not stopped'):format(e.id))
    else
      self:say((cmd == 'start' and 'starting: ' or 'restarting: ') .. ids)
    end
  end)
end

require('orch.cli.ui.bindings').install(App) -- key, prompt_key, move

-- Give the terminal back, stop (the shell's job control takes over), and take it again on
-- SIGCONT.
function App:suspend()
  self.term:leave()
  core.kill(core.getpid(), 'SIGSTOP')
  self.term:enter()
  self.full = true
end

-- The width of the log prefixes: the longest id (at most 20), as in the run log.
function App:id_width()
  local w = 1
  for _, e in ipairs(self.entries or {}) do
    w = math.max(w, math.min(20, utf8.len(tostring(e.id)) or #tostring(e.id)))
  end
  return w
end

function App:draw()
  local now = core.now()
  if self.message and now - (self.message_at or 0) > 5000 then
    self.message = nil
  end
  local list, hidden = self:shown()
  local sel = 1
  for i, e in ipairs(list) do
    if e.id == self.sel_id then
      sel = i
    end
  end
  if list[sel] then
    self.sel_id = list[sel].id
  end
  local logs, title = self.all_logs, 'all'
  if self.log_scope == 'selected' and list[sel] then
    logs, title = self.by_id[list[sel].id] or {}, list[sel].id
  end
  local cols, rows = self.term:size()
  local st = {
    orch = self.orch, list = list, selected = sel, mode = self.mode, logs = logs,
    log_title = title, log_scroll = self.log_scroll, prompt = self.prompt, input = self.input,
    message = self.message, filter = self.filter, show_hidden = self.show_hidden,
    hidden_count = hidden, elapsed = now - (self.received or now), wall_ms = core.time() * 1000,
    scroll = self.scroll, id_width = self:id_width(),
  }
  local frame = view.frame(st, cols, rows)
  self.scroll = st.scroll
  if self.full or cols ~= self.cols or rows ~= self.rows then
    frame = '\27[H\27[2J' .. frame -- a resize or ctrl-l: from a blank screen
    self.full, self.cols, self.rows = false, cols, rows
  end
  self.term:write(frame)
  self.drawn_at = now
end

-- Signals while the UI runs: a resize redraws, SIGTSTP suspends cleanly, SIGCONT takes the
-- terminal back; standalone, SIGINT/SIGTERM/SIGHUP quit (orch run --ui leaves those to orch).
function App:watch_signals()
  local names = { 'SIGWINCH', 'SIGTSTP', 'SIGCONT' }
  if not self.embedded then
    names[#names + 1], names[#names + 2], names[#names + 3] = 'SIGINT', 'SIGTERM', 'SIGHUP'
  end
  self.signals = {}
  for _, name in ipairs(names) do
    local sig = core.signal()
    sig:start(name, function(signame)
      self.pending_signals[#self.pending_signals + 1] = signame
      self:wakeup()
    end, name ~= 'SIGWINCH' and name ~= 'SIGCONT' and name ~= 'SIGTSTP')
    self.signals[#self.signals + 1] = sig
  end
end

-- Handle the signals that came: true when one means quit.
function App:on_signals()
  local quit = false
  for _, s in ipairs(self.pending_signals) do
    if s == 'SIGWINCH' or s == 'SIGCONT' then
      self.full = true
      if s == 'SIGCONT' and not self.term.active then
        self.term:enter()
      end
    elseif s == 'SIGTSTP' then
      self:suspend()
    else
      quit = s
    end
  end
  self.pending_signals = {}
  return quit
end

function App:loop()
  while true do
    self.ev:wait(M.TICK_MS)
    self.ev:clear()
    local input = self.input_buf
    self.input_buf = ''
    local keys
    keys, self.input_buf = keys_mod.parse(input)
    for _, k in ipairs(keys) do
      if self:key(k) then
        return 'quit'
      end
    end
    local sig = self:on_signals()
    if sig then
      return sig
    end
    if self.tty_gone then
      return 'terminal gone'
    end
    if self.gone then
      return self.gone
    end
    self:check_log_ids()
    local wait = M.FRAME_MS - (core.now() - (self.drawn_at or -1e9))
    if wait > 0 and #keys == 0 then
      sched.sleep(wait) -- a flood of lines: one frame per FRAME_MS
    end
    self:draw()
  end
end

function App:close()
  self.term:close()
  for _, sig in ipairs(self.signals or {}) do
    sig:close()
  end
  for _, t in ipairs(self.tasks) do
    t:cancel()
  end
  for _, c in ipairs({ self.status_client, self.logs_client }) do
    pcall(c.close, c)
  end
end

--- Run the UI (in a task; yields) against the orch at `where` (orch.control.paths.resolve).
-- `opts`: `open_terminal()` -> terminal or nil, why (orch.cli.ui.terminal.open), `embedded`
-- (inside orch run --ui: orch's own signals stay orch's, and orch stopping ends the UI).
-- Returns why it ended ('quit', a signal name, 'the orch has stopped'...), or nil and the
-- error (the terminal is restored first).
function M.run(where, opts)
  local status_client, first = ask(where, { cmd = 'status', watch = true })
  if not status_client then
    return nil, first
  end
  local self = setmetatable({
    where = where, embedded = opts.embedded, ev = sched.event(), tasks = {}, all_logs = {},
    by_id = {}, input_buf = '', pending_signals = {}, mode = 'table', log_scope = 'all',
    show_hidden = true, log_scroll = 0, full = true, status_client = status_client,
    orch = first.orch or {}, entries = first.entries or {}, received = core.now(),
  }, App)
  local term, terr = opts.open_terminal()
  if not term then
    status_client:close()
    return nil, terr
  end
  self.term = term
  local ok, res = xpcall(function()
    self:watch_signals()
    term:on_input(function(bytes)
      if bytes then
        self.input_buf = self.input_buf .. bytes
      else
        self.tty_gone = true
      end
      self:wakeup()
    end)
    self:spawn(function()
      self:watch_status(status_client)
    end)
    self:spawn(function()
      self:follow_logs(M.BACKLOG)
    end)
    self:draw()
    return self:loop()
  end, debug.traceback)
  self:close()
  if not ok then
    return nil, 'orch ui: ' .. tostring(res)
  end
  return res
end

return M
