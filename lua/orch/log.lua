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

local cjson_mod -- loaded on first JSON use (no work at require time)

local function cjson()
  if not cjson_mod then
    cjson_mod = require('cjson').new()
    if cjson_mod.encode_escape_forward_slash then -- lua-cjson >= 2.1.0.x
      cjson_mod.encode_escape_forward_slash(false)
    end
    cjson_mod.encode_invalid_numbers(false)
  end
  return cjson_mod
end

--- Replace every invalid UTF-8 sequence of `s` by U+FFFD (strict: no surrogates, no code
-- points over U+10FFFF). Valid strings are returned as they are.
function M.sanitize_utf8(s)
  if utf8.len(s) then
    return s
  end
  local out, i, n = {}, 1, #s
  while i <= n do
    local ok, bad = utf8.len(s, i)
    if ok then
      out[#out + 1] = s:sub(i)
      break
    end
    out[#out + 1] = s:sub(i, bad - 1)
    out[#out + 1] = '\u{FFFD}'
    i = bad + 1
  end
  return table.concat(out)
end

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

local wall_base
--- Wall-clock time in seconds (float). Uses `core.time()` when the core has it, else
-- `os.time()` refined by the monotonic clock.
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

--- ISO 8601 UTC timestamp with milliseconds, for JSON (`2024-05-01T12:00:00.123Z`).
function M.iso_time(t)
  local s = math.floor(t)
  local ms = math.floor((t - s) * 1000)
  return os.date('!%Y-%m-%dT%H:%M:%S', s) .. ('.%03dZ'):format(ms)
end

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

local ARRAY_MT = { __name = 'orch.log.array' }

--- Mark `t` (default a new table) as a JSON array, so that it encodes as `[]` when empty.
function M.array(t)
  return setmetatable(t or {}, ARRAY_MT)
end

-- Keys written first, in this order; the others follow sorted.
local KEY_RANK = { ts = 1, id = 2, stream = 3, event = 4, line = 5, old = 6, result = 7 }

local function key_less(a, b)
  local ra, rb = KEY_RANK[a] or 100, KEY_RANK[b] or 100
  if ra ~= rb then
    return ra < rb
  end
  return tostring(a) < tostring(b)
end

-- A JSON string. Debian's lua-cjson (2.1.0) escapes every '/' as '\/' and has no option to
-- stop (newer ones do, see cjson()): undo it, so that paths and URLs read as they are. In the
-- encoding a run of backslashes before '/' is escaped backslashes (pairs) plus, when the run is
-- odd, that escape.
local function encode_string(s)
  local e = cjson().encode(M.sanitize_utf8(s))
  if e:find('\\/', 1, true) then
    e = e:gsub('(\\+)/', function(run)
      if #run % 2 == 1 then
        return run:sub(2) .. '/'
      end
    end)
  end
  return e
end

local function encode(v, depth)
  local t = type(v)
  if t == 'string' then
    return encode_string(v)
  elseif t ~= 'table' then
    return cjson().encode(v)
  end
  if depth > 20 then
    error('JSON nesting too deep')
  end
  local n, count = #v, 0
  for _ in pairs(v) do
    count = count + 1
  end
  if getmetatable(v) == ARRAY_MT or (n > 0 and count == n) then
    local parts = {}
    for i = 1, n do
      parts[i] = encode(v[i], depth + 1)
    end
    return '[' .. table.concat(parts, ',') .. ']'
  end
  local keys = {}
  for k in pairs(v) do
    keys[#keys + 1] = k
  end
  table.sort(keys, key_less)
  local parts = {}
  for i, k in ipairs(keys) do
    parts[i] = encode(tostring(k), depth + 1) .. ':' .. encode(v[k], depth + 1)
  end
  return '{' .. table.concat(parts, ',') .. '}'
end

--- Encode `v` as one line of JSON (lua-cjson for the scalars): strings made valid UTF-8,
-- object keys in a stable order (`ts`, `id`, `stream`, `event`, `line` first), sequences and
-- `log.array` tables as arrays.
function M.encode(v)
  return encode(v, 0)
end

local function to_json(obj)
  local ok, s = pcall(encode, obj, 0)
  if not ok then
    s = encode({ ts = obj.ts, id = obj.id, event = 'error', message = tostring(s) }, 0)
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
