--- The terminal of `orch ui`: raw mode, the alternate screen, the window size, key input in
-- the loop (core.tty), and the restore that every way out goes through.
-- @module orch.cli.ui.terminal
local core = require 'orch.core'

local M = {}

local ENTER = '\27[?1049h\27[?25l\27[?7l' -- alternate screen, no cursor, no line wrap
local LEAVE = '\27[0m\27[?7h\27[?25h\27[?1049l' -- attributes off, wrap, cursor, main screen

local Terminal = {}
Terminal.__index = Terminal

--- Whether `orch ui` can draw here: nil, or why not (stdin and stdout must be terminals).
function M.unusable()
  if not (core.isatty and core.tty) then
    return 'this orch has no terminal support'
  elseif not core.isatty(1) then
    return 'stdout is not a terminal'
  elseif not core.isatty(0) then
    return 'stdin is not a terminal'
  end
  return nil
end

--- Take over the terminal on fd 0/1: raw mode and the alternate screen. Returns the terminal,
-- or nil and why. `out(s)` writes to it (default io.stdout).
function M.open(out)
  local tty, err = core.tty(0)
  if not tty then
    return nil, err
  end
  local self = setmetatable({ tty = tty, out = out or function(s)
    io.stdout:write(s)
    io.stdout:flush()
  end }, Terminal)
  local ok, merr = self:enter()
  if not ok then
    tty:close()
    return nil, merr
  end
  return self
end

--- Raw mode and the alternate screen (again after a suspend).
function Terminal:enter()
  local ok, err = self.tty:set_mode('raw')
  if not ok then
    return nil, err
  end
  self.active = true
  pcall(self.out, ENTER)
  return true
end

--- Back to the screen and mode the terminal had; idempotent, never raises.
function Terminal:leave()
  if not self.active then
    return
  end
  self.active = false
  pcall(self.out, LEAVE)
  pcall(self.tty.set_mode, self.tty, 'normal')
  pcall(core.tty_reset)
end

--- Write a frame (nothing while left).
function Terminal:write(s)
  if self.active then
    pcall(self.out, s)
  end
end

--- Columns and rows (80x24 when the terminal does not say).
function Terminal:size()
  local cols, rows = self.tty:winsize()
  if not cols or cols < 1 or rows < 1 then
    return 80, 24
  end
  return cols, rows
end

--- Call `callback(bytes)` for every read, `callback(nil, why)` when the terminal is gone.
function Terminal:on_input(callback)
  return self.tty:read_start(callback)
end

--- Leave the terminal for good.
function Terminal:close()
  self:leave()
  pcall(self.tty.close, self.tty)
end

return M
