--- Which files main.lua read while it was evaluated, for `orch run --watch`: `dofile`,
-- `loadfile`, `require` (a module found on package.path), `io.open` for reading and
-- `io.lines`, called from a task of the evaluation (its scope has a `reads` table), are
-- recorded as absolute paths (`reads[path] = module name or true`). Installed once; other
-- callers pay one scope lookup.
-- @module orch.cli.read_hooks
local core = require 'orch.core'
local sched = require 'orch.runtime.sched'

local M = {}

local installed = false

local function absolute(path)
  if path:sub(1, 1) == '/' then
    return path
  end
  local cwd = core.cwd and core.cwd() or '.'
  return cwd .. '/' .. (path:gsub('^%./', ''))
end

local function record(path, what)
  local scope = sched.scope()
  local reads = type(scope) == 'table' and scope.reads
  if reads and type(path) == 'string' then
    local p = absolute(path)
    if reads[p] == nil or what ~= true then
      reads[p] = what
    end
  end
end

--- Install the wrappers (idempotent).
function M.install()
  if installed then
    return
  end
  installed = true
  local real_dofile, real_loadfile, real_require = dofile, loadfile, require
  local real_open, real_lines = io.open, io.lines
  dofile = function(path, ...) -- luacheck: ignore (replaced on purpose)
    record(path, true)
    return real_dofile(path, ...)
  end
  loadfile = function(path, ...) -- luacheck: ignore
    record(path, true)
    return real_loadfile(path, ...)
  end
  require = function(name, ...) -- luacheck: ignore
    local scope = sched.scope()
    if type(scope) == 'table' and scope.reads and type(name) == 'string'
      and not name:match('^orch[%.]?') then
      local path = package.searchpath(name, package.path)
      if path then
        record(path, name)
      end
    end
    return real_require(name, ...)
  end
  io.open = function(path, mode, ...) -- luacheck: ignore
    if mode == nil or (type(mode) == 'string' and not mode:find('[wa]')) then
      record(path, true)
    end
    return real_open(path, mode, ...)
  end
  io.lines = function(path, ...) -- luacheck: ignore
    if path ~= nil then
      record(path, true)
    end
    return real_lines(path, ...)
  end
end

--- Forget the modules whose files are in `changed` (a set of paths), so that the next
-- evaluation loads them again.
function M.forget_modules(reads, changed)
  for path in pairs(changed or {}) do
    local name = reads and reads[path]
    if type(name) == 'string' then
      package.loaded[name] = nil
    end
  end
end

return M
