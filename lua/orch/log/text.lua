--- The text format of the log: `<id> | <line>` for process output (ids aligned, a colour per
-- entry on request) and `orch | <description>` for the orchestrator's events
-- (`orch | <id>: <old> -> <new> (<message>)` for a state change), optionally prefixed by the
-- local time of day. It renders strings; orch.log writes them.
-- @module orch.log.text
local lines = require 'orch.lines'

local M = {}

--- The id used for the orchestrator's own lines.
M.ORCH_ID = 'orch'

local PALETTE = { '36', '33', '32', '35', '34', '31', '96', '93', '92', '95', '94', '91' }
local RESET = '\27[0m'

local Text = {}
Text.__index = Text

--- Local time of day with milliseconds, for text timestamps (`12:00:00.123`).
function M.clock_time(t)
  local s = math.floor(t)
  local ms = math.floor((t - s) * 1000)
  return os.date('%H:%M:%S', s) .. ('.%03d'):format(ms)
end

--- A text format. `opts`: `color` (boolean), `timestamps` (boolean), `clock` (wall seconds).
function M.new(opts)
  return setmetatable({
    color = opts.color and true or false,
    timestamps = opts.timestamps and true or false,
    clock = opts.clock,
    width = #M.ORCH_ID,
    colors = {},
    ncolors = 0,
  }, Text)
end

function Text:_color(id)
  local c = self.colors[id]
  if not c then
    self.ncolors = self.ncolors + 1
    c = PALETTE[(self.ncolors - 1) % #PALETTE + 1]
    self.colors[id] = c
  end
  return c
end

--- Declare ids: widens the id column and gives each id its colour in order.
function Text:set_ids(ids)
  for _, id in ipairs(ids) do
    self:_color(id)
    if #id > self.width then
      self.width = #id
    end
  end
end

function Text:_prefix(id)
  if #id > self.width then
    self.width = #id
  end
  local pad = id .. string.rep(' ', self.width - #id)
  local ts = self.timestamps and (M.clock_time(self.clock()) .. ' ') or ''
  if self.color then
    if id == M.ORCH_ID then
      return ts .. '\27[1m' .. pad .. ' |' .. RESET .. ' '
    end
    return ts .. '\27[' .. self:_color(id) .. 'm' .. pad .. ' |' .. RESET .. ' '
  end
  return ts .. pad .. ' | '
end

--- A block of process output of `id` (lines each ending in `\n`, orch.runtime.line_splitter;
-- `count` of them when known) as one string, every line prefixed (bytes passed through as
-- they are).
function Text:block(id, _, block, count)
  return lines.prefix(block, self:_prefix(id), count)
end

--- Lines of process output of `id` as one string.
function Text:lines(id, stream, list)
  return self:block(id, stream, table.concat(list, '\n') .. '\n')
end

--- The text of an orchestrator event `{event=, id=, ...}`, without prefix.
function M.describe(ev)
  local e = ev.event
  local id = ev.id
  if e == 'state' then
    local s = ('%s: %s -> %s'):format(id, ev.old or 'none', ev.result)
    if ev.message and ev.message ~= '' then
      s = s .. ' (' .. ev.message .. ')'
    end
    return s
  elseif e == 'spawn' then
    if ev.restarts and ev.restarts > 0 then
      return ('%s: started (pid %s, restart #%d%s)'):format(id, tostring(ev.pid), ev.restarts,
        ev.delay and (' after %d ms'):format(ev.delay) or '')
    end
    return ('%s: started (pid %s)'):format(id, tostring(ev.pid))
  elseif e == 'exit' then
    local how
    if ev.oom then
      how = 'killed by the OOM killer (exec.limits.memory reached)'
    elseif ev.signal == 'SIGTERM' or ev.signal == 'SIGINT' then
      how = 'stopped by ' .. ev.signal
    elseif ev.signal then
      how = 'killed by ' .. tostring(ev.signal)
    else
      how = 'exited with code ' .. tostring(ev.code)
    end
    local s = ('%s: %s'):format(id, how)
    if ev.pid then
      s = s .. (' (pid %s)'):format(tostring(ev.pid))
    end
    -- The Daemons layer's message repeats the exit ("sh exited with code 0"): keep others.
    if ev.message and ev.message ~= '' and not ev.message:find('exited with', 1, true) then
      s = s .. ': ' .. ev.message
    end
    return s
  elseif e == 'spawn-error' then
    return ('%s: failed to start: %s'):format(id, tostring(ev.message))
  elseif e == 'term' then
    return ('%s: stopping%s'):format(id, ev.pid and (' (%s to pid %s)'):format(
      ev.signal or 'SIGTERM', ev.pid) or '')
  elseif e == 'kill' then
    return ('%s: did not stop in time, sent SIGKILL%s'):format(id,
      ev.pid and (' to pid ' .. tostring(ev.pid)) or '')
  elseif e == 'signal' then
    return ('%s: sent %s to pid %s'):format(id, tostring(ev.signal), tostring(ev.pid))
  elseif e == 'health' then
    return ('%s: health %s: %s'):format(id, tostring(ev.result), tostring(ev.message))
  end
  -- 'log' and anything else: a message, with the entry id when there is one.
  local msg = ev.message or e
  if id and id ~= M.ORCH_ID then
    return ('%s: %s'):format(id, msg)
  end
  if ev.level and ev.level ~= 'info' then
    return ev.level .. ': ' .. msg
  end
  return msg
end

--- An orchestrator event as `orch | <description>` lines (a multi-line message gets one
-- prefixed line each).
function Text:event(ev)
  local text = M.describe(ev)
  local prefix = self:_prefix(M.ORCH_ID)
  if not text:find('\n', 1, true) then -- the usual case: one line
    return prefix .. text .. '\n'
  end
  local buf = {}
  for line in (text .. '\n'):gmatch('([^\n]*)\n') do
    buf[#buf + 1] = prefix .. line .. '\n'
  end
  return table.concat(buf)
end

return M
