--- The start of `orch run`: evaluate main.lua in a task (stopped by a signal that comes first),
-- write the first status file, make room for the graph (orch.cli.limits), declare its entries;
-- and `os.exit(code)` in script code turned into an orderly stop. Installed as methods of
-- orch.cli.run's Run.
-- @module orch.cli.run_load
local util = require 'orch.runtime.util'
local notify = require 'orch.runtime.notify'
local status_file = require 'orch.status.file'
local evaluate = require 'orch.cli.evaluate'
local err = require('orch.cli.args').err
local count_kinds = require('orch.cli.check').count_kinds

local message_of = evaluate.message_of

local M = {}

-- The methods this file adds (`install` copies them onto the class).
local Run = {}

-- Raise orch's descriptor limit for `n` entries (orch.cli.limits), or log why it cannot.
function Run:make_room(n)
  if self.opts.limits then -- none in the simulated world of orch.testing
    self.opts.limits:ensure(n, self.opts.log_dir ~= nil, function(msg, level)
      self:log(msg, level)
    end)
  end
end

-- Evaluate the script and declare its entries; the chain, or nil and the exit code. (A
-- function of its own: the entry list must not stay alive in Run:main's frame, which lasts as
-- long as orch.)
function Run:load()
  local scope = evaluate.new_scope()
  scope.tracker = self.opts.tracker -- for the chains the script builds itself
  scope.reads = self.opts.watch and {} or nil
  self.scope = scope
  local finished, chain, entries = self:race(function()
    return evaluate.evaluate(self.script, self.args, self:ctx(), scope)
  end)
  if not finished or self.exit_requested then
    -- stopped while the script was evaluated: stop what it had started, exit as for a stop
    evaluate.term_scope(scope)
    return nil, self.exit_code
  end
  if not chain then
    err(message_of(entries) .. '\n')
    return nil, 1
  end
  if self.opts.status_file then
    self.status_file = status_file.new(self.sink, self.opts.status_file, { meta = function()
      return self:meta()
    end })
    local ok, werr = self.status_file:write()
    if not ok then
      err(('orch: cannot write the status file %s: %s\n'):format(self.opts.status_file,
        tostring(werr)))
      return nil, 1
    end
  end
  self:make_room(#entries)
  self.notifier = notify.new(self.sink)
  self.sink:declare(entries)
  self.chain = chain
  self:log(('running %s (pid %d): %s'):format(self.script, self.orch_pid(), count_kinds(entries)))
  return chain
end

-- os.exit(code) in script code: an orderly stop, then orch exits with `code`.
function Run:capture_exit()
  self.restore_exit = evaluate.capture_exit(function(code, where)
    if self.exit_requested then
      return
    end
    self.exit_requested = code
    self.exit_code = code
    self:log(('os.exit(%d) called at %s: stopping, orch will exit with status %d'):format(code,
      where, code), code == 0 and 'info' or 'warning')
    self:request_stop('os.exit')
  end)
end

--- Add the methods (`load`, `make_room`, `capture_exit`) to the class `Run`.
function M.install(class)
  util.assign(class, Run)
end

return M
