--- Lines out of raw output chunks: a partial line is kept until its newline or EOF, lines longer
-- than `MAX_LINE` bytes are cut (at a UTF-8 boundary when one is near), never dropped, and a CR
-- before a newline is removed. The cutting is orch.lines (C): `blocks` gives a chunk's complete
-- lines as one string (the status sink and the log write them without a string per line),
-- `new` calls a function per line (readiness pushed on an output line).
-- @module orch.runtime.line_splitter
local lines = require 'orch.lines'

local M = {}

--- Longest line written as one record; longer lines are split (at a UTF-8 boundary when one
-- is near).
M.MAX_LINE = lines.MAX_LINE

--- A splitter of one stream into blocks: `sp:feed(chunk)` returns `block, count`, the complete
-- lines the chunk finished as one string of lines each ending in `\n`, or nil when none;
-- `sp:feed(nil)` (EOF) returns the pending partial line as a block of one line, or nil.
-- Lines longer than `max` bytes (default `MAX_LINE`) come in pieces.
function M.blocks(max)
  return lines.splitter(max or M.MAX_LINE)
end

--- The lines of a block (each without its `\n`), in order: `for line in M.each(block)`.
function M.each(block)
  return block:gmatch('([^\n]*)\n')
end

--- The lines of a block as a list.
function M.list(block)
  local out = {}
  for line in M.each(block) do
    out[#out + 1] = line
  end
  return out
end

--- A line splitter: `feed(chunk)` calls `emit(line)` for every complete line (without its
-- `\n`, a trailing `\r` removed); `feed(nil)` (EOF) emits the pending partial line if any.
-- Lines longer than `max` bytes (default `MAX_LINE`) are emitted in pieces.
-- @treturn function feed
function M.new(emit, max)
  local sp = M.blocks(max)
  return function(chunk)
    local block = sp:feed(chunk)
    if block then
      for line in M.each(block) do
        emit(line)
      end
    end
  end
end

return M
