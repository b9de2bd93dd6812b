--- The recent events of a running orch, for `orch timeline --control`: a ring of the last N
-- records of the JSON log (state changes, spawns, exits, signals, orch's messages; no process
-- output), given back as lines of that log, so that a reader sees exactly what
-- `orch run --log-format json` would have written. A push is O(1) and keeps the event table
-- as it is (the sink makes a new one per event and never changes it) with its time: the JSON
-- is made only when asked for. The last `graph` record (the entries and their requirements) is
-- kept aside so that it survives the ring's turnover.
-- @module orch.status.history
local log_json = require 'orch.log.json'
local json = require 'orch.runtime.json'
local time = require 'orch.runtime.time'

local M = {}

--- Records kept by default.
M.DEFAULT_EVENTS = 10000

local History = {}
History.__index = History

--- A new history of at most `size` records (default `DEFAULT_EVENTS`; 0 keeps none), stamped by
-- `clock` (wall seconds).
function M.new(size, clock)
  return setmetatable({
    size = size or M.DEFAULT_EVENTS,
    clock = clock,
    n = 0, -- records pushed so far
    evs = {},
    times = {},
  }, History)
end

--- Record an event `{event=, id=, ...}` (as orch.log's `Writer:event` takes it; not copied: it
-- must not change afterwards).
function History:push(ev)
  if self.size <= 0 then
    return
  end
  local t = self.clock()
  local i = self.n % self.size + 1
  self.evs[i], self.times[i] = ev, t
  self.n = self.n + 1
  if ev.event == 'graph' then
    self.graph, self.graph_t, self.graph_n = ev, t, self.n
  end
end

-- The JSON-log line of `ev` at time `t`.
local function line(ev, t)
  return log_json.new({ clock = function()
    return t
  end, encode = json.encode, sanitize = json.sanitize_utf8, iso_time = time.iso }):event(ev)
    :sub(1, -2)
end

--- The records kept, oldest first, as JSON-log lines (the last `graph` record first when the
-- ring has dropped it), and how many older records were dropped.
function History:lines()
  local out, first = {}, math.max(0, self.n - self.size)
  if self.graph and self.graph_n <= first then
    out[1] = line(self.graph, self.graph_t)
  end
  for i = first, self.n - 1 do
    local k = i % self.size + 1
    out[#out + 1] = line(self.evs[k], self.times[k])
  end
  return out, first
end

return M
