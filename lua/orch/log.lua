--- The orchestrator's log writer: process output and events, written as text (orch.log_text) or
-- JSON lines (orch.log_json) to a file handle or a function. Every write is flushed; write
-- errors (a closed pipe) are ignored.
--
-- Also here until orch.json and the time module take them over: the JSON encoder the log, the
-- status file and the control protocol share (`encode`, `array`, `sanitize_utf8`) and the
-- clock (`wallclock`, `iso_time`).
-- @module orch.log
local log_text = require 'orch.log_text'
local log_json = require 'orch.log_json'

local M = {}

--- The id used for the orchestrator's own lines.
M.ORCH_ID = log_text.ORCH_ID

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

--- ISO 8601 UTC timestamp with milliseconds, for JSON (`2024-05-01T12:00:00.123Z`).
function M.iso_time(t)
  local s = math.floor(t)
  local ms = math.floor((t - s) * 1000)
  return os.date('!%Y-%m-%dT%H:%M:%S', s) .. ('.%03dZ'):format(ms)
end

--- ISO 8601 UTC timestamp with milliseconds, for JSON (`2024-05-01T12:00:00.123Z`).
function M.iso_time(t)
  local s = math.floor(t)
  local ms = math.floor((t - s) * 1000)
  return os.date('!%Y-%m-%dT%H:%M:%S', s) .. ('.%03dZ'):format(ms)
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
    require('orch.util').bad_argument(1, 'log.new', ("unknown format '%s'"):format(
      tostring(format)))
  end
  local clock = opts.clock or M.wallclock
  local fmt
  if format == 'json' then
    fmt = log_json.new({ clock = clock, encode = M.encode, sanitize = M.sanitize_utf8,
      iso_time = M.iso_time })
  else
    local color = opts.color
    if color == nil then
      color = auto_color(opts.fd or 1)
    end
    fmt = log_text.new({ color = color, timestamps = opts.timestamps, clock = clock })
  end
  local self = setmetatable({ format = format, fmt = fmt }, Writer)
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

--- Declare ids: widens the id column and gives each id its colour in order (text).
function Writer:set_ids(ids)
  self.fmt:set_ids(ids)
end

--- Write complete lines of process output of `id` on `stream` (`'stdout'`/`'stderr'`), in one
-- write.
function Writer:lines(id, stream, lines)
  if #lines > 0 then
    self.put(self.fmt:lines(id, stream, lines))
  end
end

--- Write one line of process output.
function Writer:line(id, stream, line)
  self:lines(id, stream, { line })
end

--- Write an orchestrator event: `{event=, id=, ...}`. Text: `orch | <description>` (multi-line
-- messages get one prefixed line each); JSON: the fields plus `ts`.
function Writer:event(ev)
  self.put(self.fmt:event(ev))
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
