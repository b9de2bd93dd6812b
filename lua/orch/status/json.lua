--- The state of every entry as plain JSON data, the shape of the status file and of the
-- control protocol's status replies: times as ISO 8601 strings, lists as arrays
-- (`orch.log.encode` ready).
-- @module orch.status.json
local log = require 'orch.log'

local M = {}

local copy = require('orch.runtime.util').deep_copy

local function iso(t)
  return t and log.iso_time(t) or nil
end

--- A sink snapshot (orch.status `Sink:snapshot()`) as JSON data.
function M.view(snap)
  local out = log.array()
  for i, s in ipairs(snap) do
    local x = {}
    for k, v in pairs(s) do
      x[k] = v
    end
    x.since = iso(s.since)
    if s.lastExit then
      x.lastExit = copy(s.lastExit)
      x.lastExit.time = iso(s.lastExit.time)
    end
    x.requires = log.array(copy(s.requires or {}))
    x.waitingOn = log.array(copy(s.waitingOn or {}))
    out[i] = x
  end
  return out
end

return M
