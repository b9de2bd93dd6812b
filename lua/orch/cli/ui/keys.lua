--- The keys of `orch ui`: the bytes a terminal in raw mode sends, as key names.
-- @module orch.cli.ui.keys
local M = {}

local CSI = { A = 'up', B = 'down', C = 'right', D = 'left', H = 'home', F = 'end',
  ['5~'] = 'pgup', ['6~'] = 'pgdn', ['1~'] = 'home', ['4~'] = 'end', ['3~'] = 'delete' }

local CONTROL = { [3] = 'ctrl-c', [4] = 'ctrl-d', [9] = 'tab', [12] = 'ctrl-l', [13] = 'enter',
  [10] = 'enter', [26] = 'ctrl-z', [127] = 'backspace', [8] = 'backspace', [21] = 'ctrl-u' }

--- The keys in `buf` (a list of names: a printable character stands for itself, else 'up',
-- 'enter', 'esc', 'ctrl-c'...) and the bytes left over (an escape sequence cut short, to be
-- completed by the next read).
function M.parse(buf)
  local keys, i, n = {}, 1, #buf
  while i <= n do
    local c = buf:byte(i)
    if c == 27 then
      local seq, rest = buf:match('^\27([%[O])([^%a~]*[%a~]?)', i)
      if seq and rest:match('[%a~]$') then
        keys[#keys + 1] = CSI[rest] or CSI[rest:sub(-1)] or 'unknown'
        i = i + 1 + #seq + #rest
      elseif seq and i + 1 + #seq + #rest > n then
        return keys, buf:sub(i) -- incomplete: wait for the rest
      else
        keys[#keys + 1] = 'esc'
        i = i + 1
      end
    elseif CONTROL[c] then
      keys[#keys + 1] = CONTROL[c]
      i = i + 1
    elseif c < 32 then
      i = i + 1
    else
      local len = c >= 0xF0 and 4 or c >= 0xE0 and 3 or c >= 0xC0 and 2 or 1
      keys[#keys + 1] = buf:sub(i, i + len - 1)
      i = i + len
    end
  end
  return keys, ''
end

return M
