--- The time axis of a timeline: a step a person reads easily (1, 2, 5 ms ... 10 s, 15 s,
-- 30 s, 1 min ... 1 h, 2 h ...) for a duration and a number of ticks, and the labels.
-- @module orch.timeline.axis

local M = {}

-- Steps in seconds, small to large.
local STEPS = {
  0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5,
  1, 2, 5, 10, 15, 30,
  60, 120, 300, 600, 900, 1800,
  3600, 7200, 10800, 21600, 43200, 86400,
}

--- The smallest step that puts at most `max_ticks` ticks on `duration` seconds.
function M.step(duration, max_ticks)
  max_ticks = math.max(1, max_ticks)
  for _, s in ipairs(STEPS) do
    if duration / s <= max_ticks then
      return s
    end
  end
  local s = STEPS[#STEPS]
  while duration / s > max_ticks do
    s = s * 2
  end
  return s
end

--- The label of offset `d` (seconds from the start) on an axis of step `step`: `0`, `250ms`,
-- `1.5s`, `45s`, `2m`, `2m30s`, `1h`, `1h15m`.
function M.label(d, step)
  if d == 0 then
    return '0'
  end
  if step < 1 then
    if d < 1 then
      return ('%dms'):format(math.floor(d * 1000 + 0.5))
    end
    local digits = 1 -- as many as the step has (0.25 s: 2)
    local scale = { 10, 100, 1000 } -- no '^': see memory_spec
    while digits < 3 and math.abs(step * scale[digits] - math.floor(step * scale[digits] + 0.5))
      > 1e-6 do
      digits = digits + 1
    end
    return (('%.' .. digits .. 'f'):format(d):gsub('0+$', ''):gsub('%.$', '')) .. 's'
  end
  local s = math.floor(d + 0.5)
  if s < 60 then
    return s .. 's'
  end
  local h, m = s // 3600, (s % 3600) // 60
  s = s % 60
  if h > 0 then
    return m > 0 and ('%dh%02dm'):format(h, m) or ('%dh'):format(h)
  end
  return s > 0 and ('%dm%02ds'):format(m, s) or ('%dm'):format(m)
end

--- The ticks of an axis from 0 to `duration` seconds: `{d, label}` for each multiple of
-- `step` (offsets from the start).
function M.ticks(duration, step)
  local out = {}
  local n = math.floor(duration / step + 1e-9)
  for i = 0, n do
    local d = i * step
    out[#out + 1] = { d = d, label = M.label(d, step) }
  end
  return out
end

return M
