--- Lines out of raw output chunks: a partial line is kept until its newline or EOF, lines longer
-- than `MAX_LINE` bytes are cut (at a UTF-8 boundary when one is near), never dropped.
-- Used by the status sink (orch.status) for the output of every entry.
-- @module orch.runtime.line_splitter

local M = {}

--- Longest line written as one record; longer lines are split (at a UTF-8 boundary when one
-- is near).
M.MAX_LINE = 64 * 1024

--- A line splitter: `feed(chunk)` calls `emit(line)` for every complete line (without its
-- `\n`, a trailing `\r` removed); `feed(nil)` (EOF) emits the pending partial line if any.
-- Lines longer than `max` bytes (default `MAX_LINE`) are emitted in pieces.
-- @treturn function feed
function M.new(emit, max)
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

return M
