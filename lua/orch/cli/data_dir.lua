--- The `--data DIR` option of `orch run`, `orch check` and `orch image`: the data directory
-- (orch.runtime.datadir) of the orch named `name`, or the one given, made absolute.
-- @module orch.cli.data_dir
local core = require 'orch.core'
local datadir = require 'orch.runtime.datadir'
local usage_error = require('orch.cli.args').usage_error

local M = {}

--- The data directory for `cmd`: `data` (the --data value) made absolute, else the default of
-- the orch named `name`. A usage error when --data is empty; nil and why when there is no
-- default (no HOME): only a script that uses a subcontainer needs one.
-- @treturn string|nil the absolute path
-- @treturn string why not
function M.resolve(cmd, data, name)
  if data ~= nil then
    if data == true or data == '' then
      usage_error(cmd, '--data needs a directory')
    end
    if data:sub(1, 1) ~= '/' then
      data = (core.cwd() or '.') .. '/' .. data
    end
    return (data:gsub('/%./', '/'):gsub('/%.$', ''):gsub('(.)/+$', '%1'))
  end
  return datadir.default_path(name)
end

return M
