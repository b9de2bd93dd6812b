--- The status file (`orch run --status-file PATH`): the state of every entry and of orch itself
-- as one JSON document, replaced atomically, kept current to within `INTERVAL` ms.
--
-- Writes are coalesced: a change of the sink schedules a write at the end of the current loop
-- turn, or `INTERVAL` ms after the previous write when that is later; any number of changes in
-- between make one write (rewriting the whole file on every event made start-up quadratic).
-- On a graph so large that one write takes more than a quarter of `INTERVAL` (about 25 ms per
-- 1000 entries), the gap is four times the last write's duration instead, so that the file
-- never takes more than a fifth of orch's time. `close()` writes what is still pending.
--
-- Each write creates a new file under an unpredictable name beside PATH (`PATH.<16 hex>.tmp`,
-- `core.write_new`: exclusive create that never follows a link nor opens a FIFO), then renames
-- it over PATH. A directory that another user could write into (group- or world-writable
-- without the sticky bit, or owned by a user other than orch's and root) is refused, as ssh
-- refuses such directories for its files.
-- @module orch.status.file
local core = require 'orch.core'
local log = require 'orch.log'
local status_json = require 'orch.status.json'

local M = {}

--- The least time between two writes (ms).
M.INTERVAL = 100

--- The least gap between two writes, in durations of the last write.
M.COST_FACTOR = 4

--- Temporary names tried per write while they turn out to exist already.
M.ATTEMPTS = 8

-- Permission bits (octal 020, 002, 01000).
local S_IWGRP, S_IWOTH, S_ISVTX = 16, 2, 512

local File = {}
File.__index = File

local function hex(bytes)
  return (bytes:gsub('.', function(c)
    return ('%02x'):format(c:byte())
  end))
end

local function random_bytes(n)
  return assert(core.random(n))
end

-- The directory of `path` ('.' for a bare name).
local function dir_of(path)
  local dir = path:match('^(.*)/[^/]*$')
  if not dir then
    return '.'
  end
  return dir == '' and '/' or dir
end

-- nil when files in `dir` are safe from other users, else why not.
local function unsafe_dir(dir)
  -- `dir/.` stats the directory a symbolic link leads to, not the link.
  local st, err = core.lstat(dir .. '/.')
  if not st then
    return err
  end
  local uid = core.getuid()
  if st.uid ~= uid and st.uid ~= 0 then
    return ('directory %s belongs to uid %d (must be uid %d or root)'):format(dir, st.uid, uid)
  end
  if st.mode & (S_IWGRP | S_IWOTH) ~= 0 and st.mode & S_ISVTX == 0 then
    return ('directory %s is writable by other users (mode %04o; remove group/other write '
      .. 'permission or set the sticky bit)'):format(dir, st.mode)
  end
  return nil
end

--- Keep `path` holding the current state of every entry of `sink` (an orch.status Sink).
-- `opts`: `meta()` returns extra top-level fields (the orchestrator's own state), `interval`
-- (ms, default `INTERVAL`), `random(n)` (n random bytes, for the temporary names; default
-- `core.random`). Nothing is written before the first `write()` or change.
-- @treturn File
function M.new(sink, path, opts)
  opts = opts or {}
  local self = setmetatable({
    sink = sink,
    path = path,
    dir = dir_of(path),
    meta = opts.meta,
    interval = opts.interval or M.INTERVAL,
    random = opts.random or random_bytes,
    writes = 0, -- files written (for specs and measurements)
    _last = -math.huge, -- loop time of the last write
    _cost = 0, -- how long the last write took (ms)
    _pending = false, -- a write is scheduled
    _warned = false, -- the current failure has been logged
  }, File)
  self._unsubscribe = sink:subscribe(function(ev)
    if ev.type ~= 'output' and ev.type ~= 'log' then
      self:changed()
    end
  end)
  return self
end

function File:_document()
  local doc = { v = 1, updated = log.iso_time(self.sink.wallclock()) }
  for k, v in pairs(self.meta and self.meta() or {}) do
    doc[k] = v
  end
  doc.ready, doc.total = self.sink:counts()
  doc.entries = status_json.view(self.sink:snapshot())
  return log.encode(doc) .. '\n'
end

-- Write the document to a new temporary file and rename it over the path.
function File:_replace(data)
  local why = unsafe_dir(self.dir)
  if why then
    return nil, why
  end
  for _ = 1, M.ATTEMPTS do
    local tmp = ('%s.%s.tmp'):format(self.path, hex(self.random(8)))
    local ok, err, code = core.write_new(tmp, data)
    if ok then
      local rok, rerr = os.rename(tmp, self.path)
      if rok then
        return true
      end
      os.remove(tmp)
      return nil, rerr
    elseif code ~= 'EEXIST' then
      return nil, err
    end
  end
  return nil, ('no free temporary name beside %s in %d attempts'):format(self.path, M.ATTEMPTS)
end

--- Write the file now (what is pending included). Returns true, or nil and a message (logged
-- once as a warning through the sink until a write succeeds again).
function File:write()
  self._pending = false
  if self._timer then
    self._timer:stop()
  end
  self._last = core.now()
  local t0 = core.hrtime()
  local ok, err = pcall(self._document, self)
  if ok then
    ok, err = self:_replace(err)
  end
  self._cost = (core.hrtime() - t0) / 1e6
  if ok then
    self.writes = self.writes + 1
    self._warned = false
    return true
  end
  err = tostring(err)
  if not self._warned then
    self._warned = true
    self.sink:message(('cannot write status file %s: %s'):format(self.path, err), 'warning')
  end
  return nil, err
end

--- Something changed: schedule a write (at the end of this loop turn, or `interval` ms after
-- the previous write when that is later; `COST_FACTOR` times the duration of the previous write
-- when that is longer still). Any further change until then is in that write.
function File:changed()
  if self._pending or self._closed then
    return
  end
  self._pending = true
  self._timer = self._timer or core.timer()
  local gap = math.max(self.interval, M.COST_FACTOR * self._cost)
  local wait = math.max(0, math.ceil(self._last + gap - core.now()))
  self._timer:start(wait, 0, function()
    if self._pending then
      self:write()
    end
  end)
end

--- Stop following the sink; a pending change is written first. Returns what that write
-- returned (true when nothing was pending).
function File:close()
  if self._closed then
    return true
  end
  local ok, err = true, nil
  if self._pending then
    ok, err = self:write()
  end
  self._closed = true
  self._unsubscribe()
  if self._timer then
    self._timer:close()
    self._timer = nil
  end
  return ok, err
end

return M
