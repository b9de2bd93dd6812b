--- Require cycles in scripts, reported at the script's line.
-- Lua 5.4's `require` has no guard against a module required again while it is still loading
-- (a -> b -> a): the cycle recursed until the C stack overflowed, and the error pointed at an
-- orch file. A searcher placed first in `package.searchers` finds the loader the usual way and
-- remembers which module each loader is; asked for a module whose loader is running on the
-- stack, it raises `<script>:<line>: require cycle: a -> b -> a`, at the line that started
-- the chain. It keeps no other state, so a `pcall(require, ...)` that failed leaves nothing
-- behind, and the loaders are called by `require` itself, as before.
-- @module orch.cli.require_cycle
local M = {}

local name_of = setmetatable({}, { __mode = 'k' }) -- loader function -> module name

-- The modules being loaded on this stack (outermost first), and where the outermost was
-- required ('file:line' or nil).
local function loading()
  local names, origin = {}, nil
  for level = 3, 1000 do
    local info = debug.getinfo(level, 'f')
    if not info then
      break
    end
    local name = name_of[info.func]
    if name then
      table.insert(names, 1, name)
      -- level + 1 is `require`, level + 2 its caller
      local at = debug.getinfo(level + 2, 'Sl')
      origin = at and at.currentline > 0 and ('%s:%d'):format(at.short_src, at.currentline)
        or nil
    end
  end
  return names, origin
end

local function searcher(name)
  for _, s in ipairs(package.searchers) do
    if s ~= searcher then
      local loader, extra = s(name)
      if type(loader) == 'function' then
        local names, origin = loading()
        for _, n in ipairs(names) do
          if n == name then
            names[#names + 1] = name
            error(('%srequire cycle: %s'):format(origin and (origin .. ': ') or '',
              table.concat(names, ' -> ')), 0)
          end
        end
        name_of[loader] = name
        return loader, extra
      end
    end
  end
  return nil -- not found: require asks the other searchers itself, for its message
end

--- Put the searcher first in `package.searchers` (once).
function M.install()
  if package.searchers[1] ~= searcher then
    table.insert(package.searchers, 1, searcher)
  end
end

return M
