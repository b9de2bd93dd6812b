--- The recent output of every entry: raw chunks split into lines per entry and stream
-- (orch.runtime.line_splitter, in blocks: one string per chunk), and a bounded ring of those
-- blocks per entry, their lines numbered in one sequence for followers (`orch logs -f`). The
-- status sink (orch.status) owns one.
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
    _rings = {}, -- id -> {batches, first, last, count, bytes}
    _splitters = {}, -- id -> stream -> splitter
    _seq = 0, -- line sequence number (for followers)
  }, Rings)
end

--- Split a raw chunk of `id`'s `stream` (`chunk` nil = EOF: the pending partial line is
-- complete). Returns the complete lines it finished as a block (one string, each line ending
-- in `\n`) and their count, or nil when none.
function Rings:split(id, stream, chunk)
  local by_stream = self._splitters[id]
  if not by_stream then
    by_stream = {}
    self._splitters[id] = by_stream
  end
  local sp = by_stream[stream]
  if not sp then
    sp = line_splitter.blocks(self.max_line)
    by_stream[stream] = sp
  end
  return sp:feed(chunk)
end

--- The streams of `id` that have been split so far (for the flush at the process's exit).
function Rings:streams(id)
  local out = {}
  for stream in pairs(self._splitters[id] or {}) do
    out[#out + 1] = stream
  end
  return out
end

-- A ring holds batches, the block of one chunk with its stream, time and first sequence
-- number, rather than a record or a string per line (100 chatty entries: making those cost
-- most of orch's CPU per MB of output); records are made when asked for (`logs`, `records`).
-- Whole batches are dropped, the oldest first, once the newer ones alone hold the bound (so a
-- ring holds at most one batch more than its bound); `logs` cuts to the bound exactly.

-- Append batch `b`; drop the oldest batches none of whose lines are within the bounds.
function Rings:_push(id, b)
  local r = self._rings[id]
  if not r then
    r = { batches = {}, first = 1, last = 0, count = 0, bytes = 0 }
    self._rings[id] = r
  end
  r.last = r.last + 1
  r.batches[r.last] = b
  r.count, r.bytes = r.count + b.count, r.bytes + b.bytes
  local max_lines, max_bytes = self.lines, self.bytes
  while r.first < r.last do
    local f = r.batches[r.first]
    local count, bytes = r.count - f.count, r.bytes - f.bytes
    if count < max_lines and bytes <= max_bytes then
      break
    end
    r.batches[r.first] = nil
    r.first, r.count, r.bytes = r.first + 1, count, bytes
  end
end

--- Keep the `count` complete lines of `block` (from `split`) of `id`'s `stream` written at wall
-- time `ts`. Returns the batch `{seq, ts, stream, block, count}`, `seq` the number of its first
-- line (numbered even when the ring keeps none); `M.records(batch)` makes its line records.
function Rings:record(id, stream, block, count, ts)
  local b = { seq = self._seq + 1, ts = ts, stream = stream, block = block, count = count,
    bytes = #block - count }
  self._seq = self._seq + count
  if self.lines > 0 and count > 0 then
    self:_push(id, b)
  end
  return b
end

--- The line records `{seq, ts, stream, line}` of a batch, from its line `from` (default 1).
function M.records(b, from, out)
  out = out or {}
  from = from or 1
  local seq, ts, stream, i = b.seq, b.ts, b.stream, 0
  for line in line_splitter.each(b.block) do
    i = i + 1
    if i >= from then
      out[#out + 1] = { seq = seq + i - 1, ts = ts, stream = stream, line = line }
    end
  end
  return out
end

--- The recent output of `id`, oldest first: `{seq, ts, stream, line}` records, at most `n`
-- (default all kept): the newest lines within the ring's bounds of lines and bytes (the newest
-- line always).
function Rings:logs(id, n)
  local r = self._rings[id]
  local out = {}
  if not r then
    return out
  end
  n = math.min(n or self.lines, self.lines)
  local newest = {} -- records, newest first
  local bytes = 0
  for bi = r.last, r.first, -1 do
    local recs = M.records(r.batches[bi])
    for i = #recs, 1, -1 do
      local rec = recs[i]
      bytes = bytes + #rec.line
      if #newest >= n or (bytes > self.bytes and #newest > 0) then
        goto done
      end
      newest[#newest + 1] = rec
    end
  end
  ::done::
  for i = #newest, 1, -1 do
    out[#out + 1] = newest[i]
  end
  return out
end

--- Forget `id`'s output and partial lines (an entry gone with a reload).
function Rings:forget(id)
  self._rings[id] = nil
  self._splitters[id] = nil
end

return M
