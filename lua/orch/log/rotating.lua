--- One log file rotated by size: `path`, then `path.1` (newest) ... `path.<keep>` (oldest). A
-- write takes complete lines; a rotation happens between two lines, never inside one, so a file
-- stays under its size unless a single line is longer. Written synchronously with plain io,
-- unbuffered: a batch of lines goes out in one write(2) straight from its string (a stdio
-- buffer would copy it first and cut it in two writes). A regular file never blocks the loop
-- for long, and a failure (full disk, unwritable directory) is returned, never raised.
--
-- After a failure the file is tried again at most every `RETRY` seconds; `reopen()` (SIGUSR2,
-- `orch logs --reopen`, after an external logrotate moved the file) closes and reopens it at
-- once.
-- @module orch.log.rotating

local M = {}

--- Seconds between two attempts to open a file that failed.
M.RETRY = 5

local File = {}
File.__index = File

--- A rotating file (opened on the first write). `opts`: `max_size` (bytes), `keep` (rotated
-- files kept), `clock` (seconds, for retries), `on_error(msg)` (told once per failure, until a
-- write succeeds again), `on_recover(msg)`.
function M.new(path, opts)
  return setmetatable({
    path = path,
    max = opts.max_size,
    keep = opts.keep,
    clock = opts.clock or os.time,
    on_error = opts.on_error or function() end,
    on_recover = opts.on_recover or function() end,
    size = 0,
    f = nil, -- the io handle while open
    retry_at = nil, -- when failed: the time of the next attempt to open
    failing = false, -- a failure was reported and no write succeeded since
  }, File)
end

function File:_fail(what, e)
  if self.f then
    pcall(self.f.close, self.f)
    self.f = nil
  end
  self.retry_at = self.clock() + M.RETRY
  if not self.failing then
    self.failing = true
    self.on_error(('%s %s: %s'):format(what, self.path, (tostring(e):gsub('^[^:]*: ', '', 1))))
  end
  return false
end

local has_core, core = pcall(require, 'orch.core')
local lstat = has_core and type(core) == 'table' and core.lstat

-- Open for appending (the size is what the file already holds). Never a FIFO: opening one
-- for writing waits for a reader, and the loop with it.
function File:_open()
  local st = lstat and lstat(self.path)
  if st and st.type == 'fifo' then
    return self:_fail('cannot open', 'a FIFO would block orch')
  end
  local f, e = io.open(self.path, 'a')
  if not f then
    return self:_fail('cannot open', e)
  end
  f:setvbuf('no')
  self.f = f
  self.size = f:seek('end') or 0
  self.retry_at = nil
  return true
end

-- Open unless it is open, failed recently, or ...; true when writes can go in.
function File:_ready()
  if self.f then
    return true
  end
  if self.retry_at and self.clock() < self.retry_at then
    return false
  end
  return self:_open()
end

function File:_put(s)
  local ok, e = self.f:write(s)
  if not ok then
    return self:_fail('cannot write', e)
  end
  self.size = self.size + #s
  return true
end

-- path.(keep-1) -> path.keep, ..., path -> path.1 (keep = 0: the file is emptied), then a new
-- path.
function File:_rotate()
  local ok, e = self.f:close()
  self.f = nil
  if not ok then
    return self:_fail('cannot write', e)
  end
  if self.keep == 0 then
    os.remove(self.path)
  else
    for i = self.keep - 1, 1, -1 do
      os.rename(('%s.%d'):format(self.path, i), ('%s.%d'):format(self.path, i + 1))
    end
    local rok, rerr = os.rename(self.path, self.path .. '.1')
    if not rok then
      -- Never append past the size for ever: start again in a fresh file (the old lines go).
      self:_fail('cannot rotate', rerr)
      os.remove(self.path)
      self.retry_at = nil
    end
  end
  return self:_open()
end

--- Append `s`, complete lines (each ends with `\n`); rotates between lines when the file
-- would exceed its size. Returns true when everything was written.
function File:write(s)
  if not self:_ready() then
    return false
  end
  local n = #s
  while self.size + n > self.max do
    -- The longest run of whole lines that still fits; the first line alone into an empty file.
    local room, cut, pos = self.max - self.size, 0, 1
    while true do
      local nl = s:find('\n', pos, true)
      if not nl or nl > room then
        break
      end
      cut, pos = nl, nl + 1
    end
    if cut == 0 and self.size == 0 then
      cut = s:find('\n', 1, true) or n
    end
    if cut > 0 then
      if not self:_put(s:sub(1, cut)) then
        return false
      end
      s = s:sub(cut + 1)
      n = #s
    end
    if not self:_rotate() then
      return false
    end
  end
  if n > 0 and not self:_put(s) then
    return false
  end
  local ok, e = self.f:flush()
  if not ok then
    return self:_fail('cannot write', e)
  end
  if self.failing then
    self.failing = false
    self.on_recover(('writing %s again'):format(self.path))
  end
  return true
end

--- Close the file and open it again now (after an external rotation moved it): new lines go
-- to a new file at `path`. A failed file is tried again at once.
function File:reopen()
  self:close()
  self.retry_at = nil
  return self:_open()
end

--- Close the file (a later write opens it again).
function File:close()
  if self.f then
    pcall(self.f.close, self.f)
    self.f = nil
  end
end

--- The files holding this log, newest first: `path`, `path.1`, ... `path.<keep>`.
function File:paths()
  local out = { self.path }
  for i = 1, self.keep do
    out[#out + 1] = ('%s.%d'):format(self.path, i)
  end
  return out
end

return M
