--- The recent events of a running orch, for `orch timeline --control`: a ring of the last N
-- records of the JSON log (state changes, spawns, exits, signals, orch's messages; no process
-- output), each kept as its line of JSON, so that a reader sees exactly what
-- `orch run --log-format json` would have written. O(1) per event, bounded by count; the last
-- `graph` record (the entries and their requirements) is kept aside so that it survives the
-- ring's turnover.
-- @module orch.status.history
local log_json = require 'orch.log.json'
local json = require 'orch.runtime.json'
local time = require 'orch.runtime.time'

local M = {}

--- Records kept by default (about 150 bytes each: at most ~1.5 MiB).
M.DEFAULT_EVENTS = 10000

local History = {}
History.__index = History

--- A new history of at most `size` records (default `DEFAULT_EVENTS`; 0 keeps none), stamped by
-- `clock` (wall seconds).
function M.new(size, clock)
  return setmetatable({
    size = size or M.DEFAULT_EVENTS,
    n = 0, -- records pushed so far
    buf = {},
    fmt = log_json.new({ clock = clock, encode = json.encode, sanitize = json.sanitize_utf8,
      iso_time = time.iso }),
  }, History)
end

--- Record an event `{event=, id=, ...}` (as orch.log's `Writer:event` takes it).
function History:push(ev)
  if self.size <= 0 then
    return
  end
  local line = self.fmt:event(ev):sub(1, -2) -- without its newline
  self.buf[self.n % self.size + 1] = line
  self.n = self.n + 1
  if ev.event == 'graph' then
    self.graph, self.graph_n = line, self.n
  end
end

--- The records kept, oldest first, as JSON-log lines (the last `graph` record first when the
-- ring has dropped it), and how many older records were dropped.
function History:lines()
  local out, first = {}, math.max(0, self.n - self.size)
  if self.graph and self.graph_n <= first then
    out[1] = self.graph
  end
  for i = first, self.n - 1 do
    out[#out + 1] = self.buf[i % self.size + 1]
  end
  return out, first
end

return M
