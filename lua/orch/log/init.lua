--- The orchestrator's log writer: process output and events, written as text (orch.log_text) or
-- JSON lines (orch.log_json) to a file handle or a function. Every write is flushed; write
-- errors (a closed pipe) are ignored.
--
-- `encode`, `array`, `sanitize_utf8` and `iso_time` are orch.json's and orch.time's, kept here
-- for the log formats; `wallclock` is the clock of every timestamp.
-- @module orch.log
local log_text = require 'orch.log.text'
local log_json = require 'orch.log.json'
local json = require 'orch.runtime.json'
local time = require 'orch.runtime.time'

local M = {}

--- The id used for the orchestrator's own lines.
M.ORCH_ID = log_text.ORCH_ID

local Writer = {}
Writer.__index = Writer
M.Writer = Writer

--- Made valid UTF-8 (orch.json).
M.sanitize_utf8 = json.sanitize_utf8

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

--- ISO 8601 UTC timestamp with milliseconds (orch.time).
M.iso_time = time.iso

--- Mark a table as a JSON array (orch.json).
M.array = json.array

--- One line of JSON (orch.json).
M.encode = json.encode

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
    require('orch.runtime.util').bad_argument(1, 'log.new', ("unknown format '%s'"):format(
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

--- Write a block of process output (`count` lines each ending in `\n`, from
-- orch.runtime.line_splitter) of `id` on `stream`, in one write.
function Writer:block(id, stream, block, count)
  if count > 0 then
    self.put(self.fmt:block(id, stream, block, count))
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

--- The `graph` event of a chain just declared (`chain:entries()`): its `entries` are
-- `{id, kind, requires, name}` in declaration order (`name`: the `ready.display`), so that a
-- reader of the log (orch timeline) knows every entry and its requirements.
function M.graph_event(entries)
  local list = {}
  for i, d in ipairs(entries) do
    local req = d.requires or {}
    list[i] = { id = d.id, kind = d.kind, requires = json.array(table.move(req, 1, #req, 1, {})),
      name = type(d.display) == 'string' and d.display or nil }
  end
  return { event = 'graph', entries = json.array(list) }
end

--- Write the `graph` event of a chain just declared (`M.graph_event`), JSON only: the text log
-- says nothing.
function Writer:declare(entries)
  if self.format == 'json' then
    self:event(M.graph_event(entries))
  end
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
