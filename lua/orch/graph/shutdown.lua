--- Stopping a chain (`term()`): in reverse-dependency layers (the entries no remaining entry
-- requires stop first, concurrently, each layer waiting for its slowest member), then each
-- subcontainer provider destroyed once. The layering and the destruction serve the operator's
-- stops and reloads too (orch.graph.operate). Installed as methods of `Daemons` by
-- orch.graph.daemons.
-- @module orch.graph.shutdown
local sched = require 'orch.runtime.sched'
local util = require 'orch.runtime.util'

local M = {}

-- The methods this file adds (`install` copies them onto the class).
local Daemons = {}

-- Given by `install`: `check_self(self, fname)` of orch.graph.daemons.
local check_self

-- Stop `list` in layers, dependents first: a layer is the entries of the list that no other
-- entry of the list still to stop requires; `stop_layer(layer)` stops one layer and waits for
-- it (yields). A cycle (requirements are declared before use, so only a bug makes one) stops
-- the rest in reverse order, with a warning.
local function in_layers(effects, list, stop_layer)
  local remaining = list
  while #remaining > 0 do
    local required = {}
    for _, hd in ipairs(remaining) do
      for _, dep in ipairs(hd.deps) do
        required[dep] = true
      end
    end
    local layer, rest = {}, {}
    for _, hd in ipairs(remaining) do
      if required[hd] then
        rest[#rest + 1] = hd
      else
        layer[#layer + 1] = hd
      end
    end
    if #layer == 0 then
      util.log(effects, 'warning', 'Dependency cycle detected, shutting down remaining daemons')
      for i = #remaining, 1, -1 do
        layer[#layer + 1] = remaining[i]
      end
      rest = {}
    end
    stop_layer(layer)
    remaining = rest
  end
end

-- term() one layer: every entry at once, each in a task, waiting for the slowest.
local function term_layer(self, layer)
  local tasks = {}
  for _, hd in ipairs(layer) do
    tasks[#tasks + 1] = sched.spawn('term:' .. hd.id, function()
      hd:term()
    end)
  end
  for _, t in ipairs(tasks) do
    local ok, err = t:wait()
    if not ok then
      util.log(self._effects, 'error', ('term failed: %s'):format(tostring(err)))
    end
  end
end

-- Destroy each distinct subcontainer provider of `specs` once (after every user stopped), but
-- those in `spared` (a set: still used by entries that keep running).
local function destroy_subcontainers(self, specs, spared)
  for _, spec in ipairs(specs) do
    local sub = spec.subcontainer
    if type(sub) == 'table' and not spared[sub] and type(sub.destroy) == 'function' then
      spared[sub] = true
      local ok, err = pcall(sub.destroy, sub)
      if not ok then
        util.log(self._effects, 'error', ('subcontainer destroy failed: %s'):format(
          util.error_message(err)))
      end
    end
  end
end

local function shutdown(self)
  in_layers(self._effects, self._hds, function(layer)
    term_layer(self, layer)
  end)
  destroy_subcontainers(self, self._entries, {})
end

--- Stop everything (yields): entries no remaining entry requires stop first, concurrently;
-- each layer waits for its slowest member. Memoised: concurrent calls share one shutdown, later
-- calls return at once. Nothing is spawned, probed or reported after it returns.
-- @async
function Daemons:term()
  check_self(self, 'term')
  if not sched.current() then
    error('orch: Daemons:term() yields; call it from a task (orch.spawn)', 2)
  end
  local done = self._term_done
  if done then
    done:wait()
    return
  end
  done = sched.event()
  self._term_done = done
  local waiting = self._success_ev
  if waiting and not waiting.is_set then
    waiting:set('term') -- a runUntilSuccess() in progress gives up: the chain is terminated
  end
  if not self._hds then
    done:set()
    return
  end
  sched.spawn('Daemons:term', function()
    local ok, err = pcall(shutdown, self)
    if not ok then
      util.log(self._effects, 'error', 'shutdown failed: ' .. tostring(err))
    end
    done:set()
  end)
  done:wait()
end

--- `in_layers(effects, list, stop_layer)`: stop `list` in layers, dependents first (above).
M.in_layers = in_layers

--- `destroy_subcontainers(chain, specs, spared)`: destroy each provider once (above).
M.destroy_subcontainers = destroy_subcontainers

--- Add the methods to the class `Daemons`. `shared`: `check_self(self, fname)`.
function M.install(class, shared)
  check_self = shared.check_self
  util.assign(class, Daemons)
end

return M
