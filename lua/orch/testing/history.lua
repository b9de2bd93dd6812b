--- The history of a simulated run: every record orch logged (the JSON records of `orch run
-- --log-format json`, decoded) with its virtual time `t` (ms), and what the simulated processes
-- received (signals). Queries per entry, and a compact text table of the timeline that the
-- assertion helpers print when they fail.
-- @module orch.testing.history
local M = {}

local History = {}
History.__index = History
M.History = History

function M.new()
  return setmetatable({ records = {}, received = {} }, History)
end

-- The records of lists `a` and `b` in time order, `a` first at the same time (stable).
local function merged(a, b)
  local all, pos = {}, {}
  for _, list in ipairs({ a, b }) do
    for _, r in ipairs(list) do
      all[#all + 1] = r
      pos[r] = #all
    end
  end
  table.sort(all, function(x, y)
    if x.t ~= y.t then
      return x.t < y.t
    end
    if x.seq and y.seq then
      return x.seq < y.seq
    end
    return pos[x] < pos[y]
  end)
  return all
end

--- Record one decoded log record `rec` at virtual time `t`.
function History:add(rec, t)
  self.seq = (self.seq or 0) + 1
  rec.t, rec.seq = t, self.seq
  self.records[#self.records + 1] = rec
end

--- Record that a simulated process of entry `id` received signal `sig` at `t`.
function History:signal_received(id, pid, sig, t)
  self.seq = (self.seq or 0) + 1
  local rec = { t = t, seq = self.seq, id = id, event = 'received', pid = pid, signal = sig }
  self.received[#self.received + 1] = rec
end

--- The records of `id` (every entry when nil) whose event is `event` (any when nil).
function History:of(id, event)
  local out = {}
  for _, r in ipairs(self.records) do
    if (id == nil or r.id == id) and (event == nil or r.event == event) then
      out[#out + 1] = r
    end
  end
  return out
end

--- The results of `id` over time: `{t, result, old, message}` of each state change logged.
function History:results(id)
  local out = {}
  for _, r in ipairs(self:of(id, 'state')) do
    out[#out + 1] = { t = r.t, result = r.result, old = r.old, message = r.message }
  end
  return out
end

--- The results of `id` as a list of strings (`{'starting', 'success', ...}`).
function History:result_names(id)
  local out = {}
  for _, r in ipairs(self:results(id)) do
    out[#out + 1] = r.result
  end
  return out
end

--- The current result of `id` (its last logged state), or nil.
function History:result(id)
  local rs = self:results(id)
  return rs[#rs] and rs[#rs].result
end

--- The spawns of `id`: `{t, pid}`.
function History:spawns(id)
  return self:of(id, 'spawn')
end

--- The exits of `id`: `{t, pid, code, signal, message}`.
function History:exits(id)
  return self:of(id, 'exit')
end

--- The restarts of `id`: each spawn after the first, with `delay` = ms since the exit before.
function History:restarts(id)
  local out, last_exit, n = {}, nil, 0
  for _, r in ipairs(self:of(id)) do
    if r.event == 'exit' or r.event == 'spawn-error' then
      last_exit = r.t
    elseif r.event == 'spawn' then
      n = n + 1
      if n > 1 then
        out[#out + 1] = { t = r.t, pid = r.pid, delay = last_exit and (r.t - last_exit) or nil }
      end
    end
  end
  return out
end

--- The signals orch sent to `id` (`term`/`kill` records) and those its processes received.
function History:signals(id)
  local sent, got = {}, {}
  for _, r in ipairs(self.records) do
    if r.id == id and (r.event == 'term' or r.event == 'kill') then
      sent[#sent + 1] = r
    end
  end
  for _, r in ipairs(self.received) do
    if r.id == id then
      got[#got + 1] = r
    end
  end
  return merged(sent, got)
end

--- The entries in the order their last process exited after `since` (a stop): ids.
function History:stop_order(since)
  local last = {}
  for _, r in ipairs(self:of(nil, 'exit')) do
    if r.t >= (since or 0) then
      last[r.id] = r.t
    end
  end
  local ids = {}
  for id in pairs(last) do
    ids[#ids + 1] = id
  end
  table.sort(ids, function(a, b)
    if last[a] ~= last[b] then
      return last[a] < last[b]
    end
    return a < b
  end)
  return ids, last
end

-- One line of text for record `r`.
local function describe(r)
  local e = r.event
  if e == 'state' then
    return ('%s -> %s%s'):format(tostring(r.old or '-'), tostring(r.result),
      r.message and (' (' .. tostring(r.message) .. ')') or '')
  elseif e == 'spawn' then
    return ('spawn pid %s'):format(tostring(r.pid))
  elseif e == 'exit' then
    local how = r.signal and ('signal ' .. tostring(r.signal)) or ('code ' .. tostring(r.code))
    return ('exit pid %s, %s%s'):format(tostring(r.pid), how,
      r.restarts and (', restarts ' .. r.restarts) or '')
  elseif e == 'received' then
    return ('process %s received %s'):format(tostring(r.pid), tostring(r.signal))
  elseif e == 'term' or e == 'kill' then
    return ('%s pid %s%s'):format(e, tostring(r.pid),
      r.signal and (' (' .. tostring(r.signal) .. ')') or '')
  elseif r.stream then
    return ('%s: %s'):format(r.stream, tostring(r.line))
  end
  return ('%s%s'):format(tostring(e), r.message and (': ' .. tostring(r.message)) or '')
end
M.describe = describe

--- The timeline of `ids` (every entry when nil) as a text table, at most `max` rows (default
-- 60: the first and last halves).
function History:table(ids, max)
  max = max or 60
  local want
  if ids then
    want = {}
    for _, id in ipairs(ids) do
      want[id] = true
    end
  end
  local rows = {}
  local all = merged(self.records, self.received)
  local width = 5
  for _, r in ipairs(all) do
    if (want == nil or want[r.id]) and r.event ~= nil then
      rows[#rows + 1] = r
      width = math.max(width, #tostring(r.id))
    end
  end
  local out = { ('%10s  %-' .. width .. 's  %s'):format('t (ms)', 'entry', 'event') }
  local function row(r)
    out[#out + 1] = ('%10d  %-' .. width .. 's  %s'):format(r.t, tostring(r.id), describe(r))
  end
  if #rows <= max then
    for _, r in ipairs(rows) do
      row(r)
    end
  else
    local half = max // 2
    for i = 1, half do
      row(rows[i])
    end
    out[#out + 1] = ('%10s  (%d more)'):format('...', #rows - 2 * half)
    for i = #rows - half + 1, #rows do
      row(rows[i])
    end
  end
  return table.concat(out, '\n')
end

return M
