--- The orchestrator's log writer: process output and events, as text or JSON lines.
-- Text: `<id> | <line>` for process output (ids aligned, a colour per entry on a TTY) and
-- `orch | <id>: <old> -> <new> (<message>)` for state changes, optionally prefixed by a local
-- timestamp. JSON: one object per line (`ts`, `id`, `stream` or `event`, then
-- `line`/`result`/`message`/`pid`/`code`...), encoded by lua-cjson with invalid UTF-8 replaced
-- so that every line parses. Every write is flushed; write errors (a closed pipe) are ignored.
--
-- `log.splitter` turns raw chunks into lines (used by `orch.status`): a partial line is kept
-- until its newline or EOF, lines longer than `MAX_LINE` bytes are split, never dropped.
-- @module orch.log
local json = require 'orch.json'
local time = require 'orch.time'

local M = {}

--- Longest line written as one record; longer lines are split (at a UTF-8 boundary when one
-- is near).
M.MAX_LINE = 64 * 1024

--- The id used for the orchestrator's own lines.
M.ORCH_ID = 'orch'

local PALETTE = { '36', '33', '32', '35', '34', '31', '96', '93', '92', '95', '94', '91' }
local RESET = '\27[0m'

local Writer = {}
Writer.__index = Writer
M.Writer = Writer

--- Replace every invalid UTF-8 sequence of `s` by U+FFFD (see orch.json).
M.sanitize_utf8 = json.sanitize_utf8

--- A line splitter: `feed(chunk)` calls `emit(line)` for every complete line (without its
-- `\n`, a trailing `\r` removed); `feed(nil)` (EOF) emits the pending partial line if any.
-- Lines longer than `max` bytes (default `MAX_LINE`) are emitted in pieces.
-- @treturn function feed
function M.splitter(emit, max)
  max = max or M.MAX_LINE
  local parts, plen = {}, 0 -- pending partial line

  -- Where the first piece of an over-long `line` ends: `max` bytes, stepping back (at most 3
  -- bytes) so that a UTF-8 character is not cut in two.
  local function cut(line)
    local k = max + 1
    for back = 0, 3 do
      local b = line:byte(max + 1 - back)
      if b and b & 0xC0 ~= 0x80 then
        k = max + 1 - back
        break
      end
    end
    return k
  end

  -- Emit the leading pieces of `line` while it is over-long; return the rest.
  local function emit_pieces(line)
    while #line > max do
      local k = cut(line)
      emit(line:sub(1, k - 1))
      line = line:sub(k)
    end
    return line
  end

  return function(chunk)
    if chunk == nil then
      if plen > 0 then
        local line = table.concat(parts)
        parts, plen = {}, 0
        emit(line)
      end
      return
    end
    local pos, n = 1, #chunk
    while pos <= n do
      local nl = chunk:find('\n', pos, true)
      if not nl then
        local rest = chunk:sub(pos)
        parts[#parts + 1] = rest
        plen = plen + #rest
        if plen > max then
          local tail = emit_pieces(table.concat(parts))
          parts, plen = { tail }, #tail
        end
        return
      end
      local line = chunk:sub(pos, nl - 1)
      if plen > 0 then
        parts[#parts + 1] = line
        line = table.concat(parts)
        parts, plen = {}, 0
      end
      if line:byte(-1) == 13 then
        line = line:sub(1, -2)
      end
      emit(emit_pieces(line))
      pos = nl + 1
    end
  end
end

--- Wall-clock time in seconds (float). Uses `core.time()` when the core has it, else
-- `os.time()` refined by the monotonic clock.
local wall_base
function M.wallclock()
  local ok, core = pcall(require, 'orch.core')
  if ok and type(core) == 'table' and core.time then
    return core.time()
  end
  if ok and type(core) == 'table' and core.hrtime then
    if not wall_base then
      wall_base = { os.time(), core.hrtime() }
    end
    return wall_base[1] + (core.hrtime() - wall_base[2]) / 1e9
  end
  return os.time() + 0.0
end

--- ISO 8601 UTC timestamp with milliseconds, for JSON (see orch.time).
M.iso_time = time.iso

--- Local time of day with milliseconds, for text timestamps (`12:00:00.123`).
function M.clock_time(t)
  local s = math.floor(t)
  local ms = math.floor((t - s) * 1000)
  return os.date('%H:%M:%S', s) .. ('.%03d'):format(ms)
end

-- Whether colour should be used on `fd` by default: not with NO_COLOR, only on a TTY.
local function auto_color(fd)
  local nc = os.getenv('NO_COLOR')
  if nc and nc ~= '' then
    return false
  end
  local ok, core = pcall(require, 'orch.core')
  if ok and type(core) == 'table' and core.isatty then
    return core.isatty(fd) == true
  end
  return false
end

--- A new writer.
-- `opts`: `out` (a file handle, default `io.stdout`, or a `function(string)`), `fd` (for the
-- TTY check, default 1), `format` (`'text'` or `'json'`), `color` (true/false; nil = auto:
-- a TTY and no `NO_COLOR`), `timestamps` (text only; JSON always has `ts`), `clock` (wall
-- seconds, default `log.wallclock`), `ids` (known ids, for alignment and colours).
-- @treturn Writer
function M.new(opts)
  opts = opts or {}
  local format = opts.format or 'text'
  if format ~= 'text' and format ~= 'json' then
    error(("bad argument #1 to 'log.new' (unknown format '%s')"):format(tostring(format)), 2)
  end
  local color = opts.color
  if color == nil then
    color = format == 'text' and auto_color(opts.fd or 1)
  end
  local self = setmetatable({
    format = format,
    color = color and format == 'text',
    timestamps = opts.timestamps and true or false,
    clock = opts.clock or M.wallclock,
    width = #M.ORCH_ID,
    colors = {},
    ncolors = 0,
  }, Writer)
  local out = opts.out or io.stdout
  if type(out) == 'function' then
    self.put = out
  else
    self.put = function(s)
      -- A closed pipe or full disk must never take the orchestrator down.
      pcall(out.write, out, s)
      pcall(out.flush, out)
    end
  end
  self:set_ids(opts.ids or {})
  return self
end

--- Declare ids: widens the id column and gives each id its colour in order.
function Writer:set_ids(ids)
  for _, id in ipairs(ids) do
    self:_color(id)
    if #id > self.width then
      self.width = #id
    end
  end
end

function Writer:_color(id)
  local c = self.colors[id]
  if not c then
    self.ncolors = self.ncolors + 1
    c = PALETTE[(self.ncolors - 1) % #PALETTE + 1]
    self.colors[id] = c
  end
  return c
end

function Writer:_prefix(id)
  if #id > self.width then
    self.width = #id
  end
  local pad = id .. string.rep(' ', self.width - #id)
  local ts = self.timestamps and (M.clock_time(self.clock()) .. ' ') or ''
  if self.color then
    if id == M.ORCH_ID then
      return ts .. '\27[1m' .. pad .. ' |' .. RESET .. ' '
    end
    return ts .. '\27[' .. self:_color(id) .. 'm' .. pad .. ' |' .. RESET .. ' '
  end
  return ts .. pad .. ' | '
end

--- Mark `t` as a JSON array (see orch.json).
M.array = json.array

--- Encode `v` as one line of JSON (see orch.json).
M.encode = json.encode

local function to_json(obj)
  local ok, s = pcall(json.encode, obj)
  if not ok then
    s = json.encode({ ts = obj.ts, id = obj.id, event = 'error', message = tostring(s) })
  end
  return s .. '\n'
end

-- Copy `t` with every string value made valid UTF-8.
local function clean(t)
  local out = {}
  for k, v in pairs(t) do
    if type(v) == 'string' then
      v = M.sanitize_utf8(v)
    end
    out[k] = v
  end
  return out
end

--- Write complete lines of process output of `id` on `stream` (`'stdout'`/`'stderr'`), in one
-- write.
function Writer:lines(id, stream, lines)
  if #lines == 0 then
    return
  end
  local buf = {}
  if self.format == 'json' then
    local ts = M.iso_time(self.clock())
    for i, line in ipairs(lines) do
      buf[i] = to_json({ ts = ts, id = M.sanitize_utf8(id), stream = stream,
        line = M.sanitize_utf8(line) })
    end
  else
    local prefix = self:_prefix(id)
    for i, line in ipairs(lines) do
      buf[i] = prefix .. line .. '\n'
    end
  end
  self.put(table.concat(buf))
end

--- Write one line of process output.
function Writer:line(id, stream, line)
  self:lines(id, stream, { line })
end

-- Text rendering of an event (without prefix).
local function describe(ev)
  local e = ev.event
  local id = ev.id
  if e == 'state' then
    local s = ('%s: %s -> %s'):format(id, ev.old or 'none', ev.result)
    if ev.message and ev.message ~= '' then
      s = s .. ' (' .. ev.message .. ')'
    end
    return s
  elseif e == 'spawn' then
    if ev.restarts and ev.restarts > 0 then
      return ('%s: started (pid %s, restart #%d)'):format(id, tostring(ev.pid), ev.restarts)
    end
    return ('%s: started (pid %s)'):format(id, tostring(ev.pid))
  elseif e == 'exit' then
    local how
    if ev.signal == 'SIGTERM' or ev.signal == 'SIGINT' then
      how = 'stopped by ' .. ev.signal
    elseif ev.signal then
      how = 'killed by ' .. tostring(ev.signal)
    else
      how = 'exited with code ' .. tostring(ev.code)
    end
    local s = ('%s: %s'):format(id, how)
    if ev.pid then
      s = s .. (' (pid %s)'):format(tostring(ev.pid))
    end
    -- The Daemons layer's message repeats the exit ("sh exited with code 0"): keep others.
    if ev.message and ev.message ~= '' and not ev.message:find('exited with', 1, true) then
      s = s .. ': ' .. ev.message
    end
    return s
  elseif e == 'spawn-error' then
    return ('%s: failed to start: %s'):format(id, tostring(ev.message))
  elseif e == 'term' then
    return ('%s: stopping%s'):format(id, ev.pid and (' (SIGTERM to pid %s)'):format(ev.pid) or '')
  elseif e == 'kill' then
    return ('%s: did not stop in time, sent SIGKILL%s'):format(id,
      ev.pid and (' to pid ' .. tostring(ev.pid)) or '')
  elseif e == 'health' then
    return ('%s: health %s: %s'):format(id, tostring(ev.result), tostring(ev.message))
  end
  -- 'log' and anything else: a message, with the entry id when there is one.
  local msg = ev.message or e
  if id and id ~= M.ORCH_ID then
    return ('%s: %s'):format(id, msg)
  end
  if ev.level and ev.level ~= 'info' then
    return ev.level .. ': ' .. msg
  end
  return msg
end
M.describe = describe

--- Write an orchestrator event: `{event=, id=, ...}`. Text: `orch | <description>` (multi-line
-- messages get one prefixed line each); JSON: the fields plus `ts`.
function Writer:event(ev)
  if self.format == 'json' then
    local obj = clean(ev)
    obj.ts = M.iso_time(self.clock())
    obj.id = obj.id or M.ORCH_ID
    self.put(to_json(obj))
    return
  end
  local text = describe(ev)
  local prefix = self:_prefix(M.ORCH_ID)
  if not text:find('\n', 1, true) then -- the usual case: one line
    self.put(prefix .. text .. '\n')
    return
  end
  local buf = {}
  for line in (text .. '\n'):gmatch('([^\n]*)\n') do
    buf[#buf + 1] = prefix .. line .. '\n'
  end
  self.put(table.concat(buf))
end

--- Write a message of the orchestrator itself (`level`: info, warning, error).
function Writer:message(msg, level, fields)
  local ev = { event = 'log', level = level or 'info', message = msg }
  for k, v in pairs(fields or {}) do
    ev[k] = v
  end
  self:event(ev)
end

return M
