--- Inside busted, for `orch test`: the worlds a test made are closed when it ends, and with
-- `--timeline DIR` (`dir` set), those of a failing test are written first as
-- `DIR/<test name>.jsonl` (the JSON log of the simulated run, as `orch run --log-format json`
-- writes it) and, when the module orch.timeline is there, `DIR/<test name>.svg`.
-- @module orch.cli.test_timeline
local M = {}

--- The directory of the timelines (nil: none are written).
M.dir = nil

-- A file name from a test's full name: letters, digits, `-`, `_` and `.` kept, the rest `_`.
function M.file_name(name)
  local s = name:gsub('[^%w%-_.]+', '_'):gsub('^_+', ''):gsub('_+$', '')
  if s == '' then
    s = 'test'
  end
  return s:sub(1, 150)
end

local function full_name(busted, element)
  local names = { element.name or element.descriptor }
  local parent = busted.parent(element)
  while parent and (parent.name or parent.descriptor) and parent.descriptor ~= 'file' do
    table.insert(names, 1, parent.name or parent.descriptor)
    parent = busted.parent(parent)
  end
  return table.concat(names, ' ')
end

local function write(path, text)
  local f, e = io.open(path, 'w')
  if not f then
    io.stderr:write(('orch test: --timeline: %s\n'):format(tostring(e)))
    return
  end
  f:write(text)
  f:close()
end

--- Write the timelines of the worlds of the test `name` (one per world: `-2`, `-3`... after
-- the first).
function M.write(name, worlds)
  if not M.dir then
    return
  end
  os.execute(("mkdir -p '%s'"):format(M.dir:gsub("'", "'\\''")))
  local ok, timeline = pcall(require, 'orch.timeline')
  local svg = ok and type(timeline) == 'table' and timeline.svg_from_log_lines
  for i, w in ipairs(worlds) do
    local base = ('%s/%s%s'):format(M.dir, M.file_name(name), i > 1 and ('-' .. i) or '')
    local lines = w:log_lines()
    write(base .. '.jsonl', #lines > 0 and (table.concat(lines, '\n') .. '\n') or '')
    if svg then
      local sok, text = pcall(svg, lines)
      if sok and type(text) == 'string' then
        write(base .. '.svg', text)
      else
        io.stderr:write(('orch test: --timeline: %s.svg: %s\n'):format(base, tostring(text)))
      end
    end
  end
end

--- Subscribe to busted's test events (called once, by busted's `-e`).
function M.install()
  local busted = require 'busted'
  local testing = require 'orch.testing'
  -- the worlds of a test: those made since the previous test ended (its before_each runs
  -- before busted's 'test start')
  busted.subscribe({ 'test', 'end' }, function(element, _, status)
    local worlds = testing.forget_worlds()
    if status == 'failure' or status == 'error' then
      M.write(full_name(busted, element), worlds)
    end
    for _, w in ipairs(worlds) do
      pcall(w.close, w)
    end
    return nil, true
  end)
end

return M
