--- Timelines of runs: the JSON log of a run (`orch run --log-format json`, the history of a
-- running orch, a simulated run) drawn as one row per entry, as SVG or for a terminal.
--
--     local timeline = require 'orch.timeline'
--     local svg = timeline.svg_from_log_lines(lines)   -- lines: a list of JSON-log lines
--
-- `read` (orch.timeline.read) turns lines into records, `model` (orch.timeline.model) records
-- into rows, `svg` and `term` draw a model.
-- @module orch.timeline
local read = require 'orch.timeline.read'
local model = require 'orch.timeline.model'
local svg = require 'orch.timeline.svg'
local term = require 'orch.timeline.term'

local M = {
  read = read,
  model = model,
  svg = svg,
  term = term,
}

--- The model of JSON-log lines (a list of strings, or an iterator). `opts`: `name` (for
-- errors), `t_end` (seconds: when the picture ends), `ids` (only these entries' rows, e.g. those
-- a failed test involves). Nil and `line N: why` on bad input.
function M.model_from_log_lines(lines, opts)
  local records, err = read.lines(lines, opts)
  if not records then
    return nil, err
  end
  return model.build(records, opts)
end

--- An SVG document (a string) of the run whose JSON-log lines are `lines` (a list of strings).
-- `opts`: `width` (pixels), `title`, `t_end`, `ids`. Raises `line N: why` on bad input.
function M.svg_from_log_lines(lines, opts)
  local m, err = M.model_from_log_lines(lines, opts)
  if not m then
    error(err, 0)
  end
  return svg.render(m, opts)
end

--- The terminal rendering of `lines` (see `svg_from_log_lines`). `opts`: `width` (columns),
-- `color`, `t_end`, `ids`. Raises `line N: why` on bad input.
function M.term_from_log_lines(lines, opts)
  local m, err = M.model_from_log_lines(lines, opts)
  if not m then
    error(err, 0)
  end
  return term.render(m, opts)
end

return M
