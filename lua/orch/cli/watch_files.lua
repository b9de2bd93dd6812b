--- `orch run --watch`: watch a set of files and call `on_change(changed)` (a set of paths) once
-- no change came for `delay` ms. Watches each file's directory (core.fs_watch): editors and
-- tools replace a file by renaming a new one over it, which a watch of the file would miss.
-- @module orch.cli.watch_files
local core = require 'orch.core'

local M = {}

--- Debounce of a burst of changes (ms).
M.DELAY = 100

local Watcher = {}
Watcher.__index = Watcher

--- A watcher (no files yet; see `set`).
-- @tparam function on_change `on_change(changed)`
-- @tparam[opt] number delay ms (default `M.DELAY`)
function M.new(on_change, delay)
  return setmetatable({ on_change = on_change, delay = delay or M.DELAY, handles = {},
    pending = {}, timer = core.timer() }, Watcher)
end

function Watcher:_event(dir, name)
  local path = dir .. '/' .. (name or '')
  if not self.wanted[path] then
    return
  end
  self.pending[path] = true
  self.timer:stop()
  self.timer:start(self.delay, 0, function()
    local changed = self.pending
    self.pending = {}
    self.on_change(changed)
  end)
end

--- Watch exactly the files of `paths` (a set or a list of absolute paths) from now on.
-- Returns the directories that could not be watched, with why.
function Watcher:set(paths)
  for _, h in pairs(self.handles) do
    h:close()
  end
  self.handles, self.wanted = {}, {}
  local dirs = {}
  for k, v in pairs(paths) do
    local path = type(k) == 'string' and k or v
    self.wanted[path] = true
    dirs[path:match('^(.*)/[^/]*$') or '.'] = true
  end
  local failed = {}
  for dir in pairs(dirs) do
    local h, why = core.fs_watch(dir == '' and '/' or dir, function(name)
      self:_event(dir, name)
    end)
    if h then
      self.handles[dir] = h
    else
      failed[#failed + 1] = why
    end
  end
  table.sort(failed)
  return failed
end

--- Stop watching.
function Watcher:close()
  for _, h in pairs(self.handles) do
    h:close()
  end
  self.handles = {}
  self.timer:close()
end

return M
