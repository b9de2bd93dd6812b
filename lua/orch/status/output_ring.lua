--- The recent output of every entry: raw chunks split into lines per entry and stream
-- (orch.line_splitter), and a bounded ring of line records per entry, numbered in one sequence
-- for followers (`orch logs -f`). The status sink (orch.status) owns one.
-- @module orch.status.output_ring
local line_splitter = require 'orch.runtime.line_splitter'

local M = {}

--- Lines kept per entry by default.
M.DEFAULT_LINES = 1000

--- Bytes of output kept per entry at most (whichever bound is reached first; the newest line
-- is always kept).
M.DEFAULT_BYTES = 1024 * 1024

local Rings = {}
Rings.__index = Rings

--- New rings. `opts`: `lines` (kept per entry, default 1000; 0 keeps none), `bytes` (kept per
-- entry, default 1 MiB), `max_line` (bytes, default `line_splitter.MAX_LINE`).
function M.new(opts)
  opts = opts or {}
  return setmetatable({
    lines = opts.lines or M.DEFAULT_LINES,
    bytes = opts.bytes or M.DEFAULT_BYTES,
    max_line = opts.max_line or line_splitter.MAX_LINE,
    _rings = {}, -- id -> {items, first, last, bytes}
    _splitters = {}, -- id -> stream -> {feed, batch}
    _seq = 0, -- line sequence number (for followers)
  }, Rings)
end

--- Split a raw chunk of `id`'s `stream` (`chunk` nil = EOF: the pending partial line is
-- complete). Returns the complete lines (strings) it finished, or nil when none.
function Rings:split(id, stream, chunk)
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
    return nil
  end
  local lines = {}
  for i = 1, #batch do
    lines[i] = batch[i]
    batch[i] = nil
  end
  return lines
end

--- The streams of `id` that have been split so far (for the flush at the process's exit).
function Rings:streams(id)
  local out = {}
  for stream in pairs(self._splitters[id] or {}) do
    out[#out + 1] = stream
  end
  return out
end

-- Append a line record; drop the oldest while over the line or byte bound.
function Rings:_push(id, item)
  local r = self._rings[id]
  if not r then
    r = { items = {}, first = 1, last = 0, bytes = 0 }
    self._rings[id] = r
  end
  r.last = r.last + 1
  r.items[r.last] = item
  r.bytes = r.bytes + #item.line
  while r.last - r.first + 1 > self.lines or (r.bytes > self.bytes and r.last > r.first) do
    r.bytes = r.bytes - #r.items[r.first].line
    r.items[r.first] = nil
    r.first = r.first + 1
  end
end

--- Keep complete `lines` of `id`'s `stream` written at wall time `ts`. Returns their records
-- `{seq, ts, stream, line}` (numbered even when the ring keeps none).
function Rings:record(id, stream, lines, ts)
  local records = {}
  for i, line in ipairs(lines) do
    self._seq = self._seq + 1
    local item = { seq = self._seq, ts = ts, stream = stream, line = line }
    if self.lines > 0 then
      self:_push(id, item)
    end
    records[i] = item
  end
  return records
end

--- The recent output of `id`, oldest first: `{seq, ts, stream, line}` records, at most `n`
-- (default all kept).
function Rings:logs(id, n)
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

--- Forget `id`'s output and partial lines (an entry gone with a reload).
function Rings:forget(id)
  self._rings[id] = nil
  self._splitters[id] = nil
end

return M
