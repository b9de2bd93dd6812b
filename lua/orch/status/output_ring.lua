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

-- A ring holds batches, the lines of one chunk with their stream, time and first sequence
-- number, rather than a record per line (100 chatty entries: 15 of 61 ms of CPU per MB went to
-- making and collecting those records); records are made when asked for (`logs`, `records`).

-- Append batch `b`; drop the oldest lines while over the line or byte bound (the newest line
-- always stays).
function Rings:_push(id, b)
  local r = self._rings[id]
  if not r then
    r = { batches = {}, first = 1, last = 0, skip = 0, count = 0, bytes = 0 }
    self._rings[id] = r
  end
  local lines, bytes = b.lines, 0
  for i = 1, #lines do
    bytes = bytes + #lines[i]
  end
  r.last = r.last + 1
  r.batches[r.last] = b
  r.count, r.bytes = r.count + #lines, r.bytes + bytes
  local max_lines, max_bytes = self.lines, self.bytes
  while r.count > max_lines or (r.bytes > max_bytes and r.count > 1) do
    local f = r.batches[r.first]
    local skip = r.skip + 1
    r.bytes, r.count = r.bytes - #f.lines[skip], r.count - 1
    if skip == #f.lines then
      r.batches[r.first] = nil
      r.first, r.skip = r.first + 1, 0
    else
      r.skip = skip
    end
  end
end

--- Keep complete `lines` of `id`'s `stream` written at wall time `ts` (the table is kept as
-- it is: it must not change afterwards). Returns the batch `{seq, ts, stream, lines}`, `seq`
-- the number of its first line (numbered even when the ring keeps none); `M.records(batch)`
-- makes its line records.
function Rings:record(id, stream, lines, ts)
  local b = { seq = self._seq + 1, ts = ts, stream = stream, lines = lines }
  self._seq = self._seq + #lines
  if self.lines > 0 and #lines > 0 then
    self:_push(id, b)
  end
  return b
end

--- The line records `{seq, ts, stream, line}` of a batch, from its line `from` (default 1).
function M.records(b, from, out)
  out = out or {}
  local seq, ts, stream, lines = b.seq, b.ts, b.stream, b.lines
  for i = from or 1, #lines do
    out[#out + 1] = { seq = seq + i - 1, ts = ts, stream = stream, line = lines[i] }
  end
  return out
end

--- The recent output of `id`, oldest first: `{seq, ts, stream, line}` records, at most `n`
-- (default all kept).
function Rings:logs(id, n)
  local r = self._rings[id]
  local out = {}
  if not r then
    return out
  end
  n = math.min(n or r.count, r.count)
  local skip = r.skip + (r.count - n) -- lines of the oldest batches left out
  for bi = r.first, r.last do
    local b = r.batches[bi]
    local nl = #b.lines
    if skip >= nl then
      skip = skip - nl
    else
      M.records(b, skip + 1, out)
      skip = 0
    end
  end
  return out
end

--- Forget `id`'s output and partial lines (an entry gone with a reload).
function Rings:forget(id)
  self._rings[id] = nil
  self._splitters[id] = nil
end

return M
