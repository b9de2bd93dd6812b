--- The services of `orch import compose` (orch.export.import_compose) and their order: the
-- file's order of their keys (a decoded mapping has lost it), then the order that declares
-- every requirement first (a `depends_on` cycle is an error), and which are oneshots (others
-- wait for them with `service_completed_successfully`).
-- @module orch.export.import_compose_order
local values = require 'orch.export.import_compose_values'

local M = {}

-- The order of the services' keys in the file (mappings lose it): scan the top-level lines.
local function file_order(text)
  local names, index, in_services, indent = {}, {}, false, nil
  for line in (text .. '\n'):gmatch('([^\n]*)\n') do
    if line:match('^services%s*:') then
      in_services = true
    elseif line:match('^%S') then
      in_services = false
    elseif in_services then
      local ind, key = line:match('^( +)([^%s#:][^:]-)%s*:')
      if ind and (indent == nil or #ind == indent) then
        indent = #ind
        key = key:gsub('^["\'](.*)["\']$', '%1')
        names[#names + 1] = key
        index[key] = #names
      end
    end
  end
  names.index = index
  return names
end

--- The names of `services` in the file's order (`text`), then the ones that scan missed,
-- sorted; `.index` maps each name to its place.
function M.names(text, services)
  local names = file_order(text)
  local known = {}
  for _, n in ipairs(names) do
    known[n] = true
  end
  local extra = {}
  for n in pairs(services) do
    if not known[n] then
      extra[#extra + 1] = n
    end
  end
  table.sort(extra)
  for _, n in ipairs(extra) do
    names[#names + 1] = n
    names.index[n] = #names
  end
  return names
end

--- The services in an order where each comes after what it depends on (`names`' order
-- otherwise); or nil and the error (a cycle, a dependency that is not a service).
function M.order(services, names)
  local out, state = {}, {}
  local function visit(name, path)
    if state[name] == 'done' then
      return true
    end
    if state[name] == 'visiting' then
      return nil, ('depends_on cycle: %s'):format(table.concat(path, ' -> ') .. ' -> ' .. name)
    end
    state[name] = 'visiting'
    path[#path + 1] = name
    local deps = services[name].depends_on
    local list = {}
    if type(deps) == 'table' then
      if #deps > 0 then
        list = values.strings(deps)
      else
        for k in pairs(deps) do
          list[#list + 1] = k
        end
        table.sort(list, function(a, b)
          return (names.index[a] or 0) < (names.index[b] or 0)
        end)
      end
    end
    for _, d in ipairs(list) do
      if not services[d] then
        return nil, ("service '%s' depends on '%s', which is not a service"):format(name, d)
      end
      local ok, err = visit(d, path)
      if not ok then
        return nil, err
      end
    end
    path[#path] = nil
    state[name] = 'done'
    out[#out + 1] = name
    return true
  end
  for _, name in ipairs(names) do
    local ok, err = visit(name, {})
    if not ok then
      return nil, err
    end
  end
  return out
end

--- The set of the services that another waits for with `service_completed_successfully`.
function M.oneshots(services)
  local oneshot = {}
  for _, s in pairs(services) do
    if type(s.depends_on) == 'table' and #s.depends_on == 0 then
      for d, c in pairs(s.depends_on) do
        if type(c) == 'table' and c.condition == 'service_completed_successfully' then
          oneshot[d] = true
        end
      end
    end
  end
  return oneshot
end

return M
