--- The loss report of an export: every construct of the graph that a target engine cannot
-- express exactly, one record per entry and field, printed on stderr (`--strict` makes any an
-- error). Exporters add; the CLI prints.
-- @module orch.export.loss
local M = {}

local Loss = {}
Loss.__index = Loss

--- A collector for `target` ('k8s', 'compose', 'systemd', 'import').
function M.new(target)
  return setmetatable({ target = target, items = {} }, Loss)
end

--- Record that `field` of entry `id` (nil: the graph as a whole) did not translate exactly:
-- `what` says what happens instead.
function Loss:add(id, field, what)
  self.items[#self.items + 1] = { id = id, field = field, what = what }
end

--- The records, in the order they were added.
function Loss:list()
  return self.items
end

--- How many records there are.
function Loss:count()
  return #self.items
end

--- Whether entry `id` has a loss on `field` (for specs and tools).
function Loss:has(id, field)
  for _, it in ipairs(self.items) do
    if it.id == id and it.field == field then
      return true
    end
  end
  return false
end

--- The report: one line per record, `<target>: loss: <id>: <field>: <what>`.
function Loss:format()
  local lines = {}
  for i, it in ipairs(self.items) do
    lines[i] = ('%s: loss: %s%s: %s'):format(self.target, it.id and (it.id .. ': ') or '',
      it.field or 'graph', it.what)
  end
  if #lines == 0 then
    return ''
  end
  return table.concat(lines, '\n') .. '\n'
end

return M
