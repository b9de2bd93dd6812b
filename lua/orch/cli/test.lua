--- `orch test [--timeline DIR] [busted options] [paths...]`: run the `*_spec.lua` files next to
-- a main.lua (or the given spec files, or those in the given directories) with busted, inside
-- orch: the specs `require 'orch.testing'` (the simulated world) from orch's own library.
-- Busted's options pass through (`-o TAP`, `-o json`, `-o junit`...); its output and exit
-- status are orch test's. With `--timeline DIR`, each failing test's simulated runs are written
-- as `DIR/<test name>.jsonl` (the log of `orch run --log-format json`) and, when orch.timeline
-- is there, `DIR/<test name>.svg`.
-- @module orch.cli.test
local core = require 'orch.core'
local USAGE = require 'orch.cli.usage'
local cli_args = require 'orch.cli.args'

local out, err, usage_error = cli_args.out, cli_args.err, cli_args.usage_error

local M = {}

-- busted's options that take a value (as a separate argument or after `=`).
local VALUE = {}
for _, o in ipairs({ '-p', '--pattern', '--exclude-pattern', '-e', '-o', '--output', '-C',
  '--directory', '-f', '--config-file', '--coverage-config-file', '-t', '--tags',
  '--exclude-tags', '--filter', '--filter-out', '-m', '--lpath', '--cpath', '-r', '--run',
  '--repeat', '--seed', '--lang', '--loaders', '--helper', '-Xoutput', '-Xhelper' }) do
  VALUE[o] = true
end

local function is_dir(path)
  return core.readdir(path) ~= nil
end

local function exists(path)
  local f = io.open(path, 'r')
  if f then
    f:close()
    return true
  end
  return false
end

-- The spec files of `dir` (not its subdirectories), sorted.
local function specs_in(dir)
  local names = core.readdir(dir) or {}
  local out_ = {}
  for _, n in ipairs(names) do
    if n:match('_spec%.lua$') then
      out_[#out_ + 1] = (dir == '.' and '' or (dir:gsub('/$', '') .. '/')) .. n
    end
  end
  table.sort(out_)
  return out_
end

--- Split `args` (from index `start`) into orch test's options, busted's options and the
-- spec files to run. Raises a usage error for a path that does not exist or holds no spec.
function M.parse(args, start)
  local opts, busted, roots = {}, {}, {}
  local i = start
  while i <= #args do
    local a = args[i]
    if a == '-h' or a == '--help' then
      opts.help = true
    elseif a == '--timeline' or a:match('^%-%-timeline=') then
      local v = a:match('^%-%-timeline=(.*)$')
      if not v then
        i = i + 1
        v = args[i]
      end
      if not v or v == '' then
        usage_error('test', '--timeline needs a directory')
      end
      opts.timeline = v
    elseif a == '--lua' or a:match('^%-%-lua=') then
      usage_error('test', '--lua: orch test runs busted inside orch')
    elseif a:match('^%-') then
      busted[#busted + 1] = a
      if VALUE[a] then
        i = i + 1
        if args[i] == nil then
          usage_error('test', "option '%s' needs a value", a)
        end
        busted[#busted + 1] = args[i]
      end
    else
      roots[#roots + 1] = a
    end
    i = i + 1
  end
  if opts.help then
    return opts
  end
  if #roots == 0 then
    roots = { '.' }
  end
  local files = {}
  for _, r in ipairs(roots) do
    if r:match('_spec%.lua$') then
      if not exists(r) then
        usage_error('test', "no such spec file '%s'", r)
      end
      files[#files + 1] = r
    else
      local dir = r
      if not is_dir(r) then
        if not exists(r) then
          usage_error('test', "no such file or directory '%s'", r)
        end
        dir = r:match('^(.*)/[^/]*$') or '.' -- a main.lua: the specs next to it
      end
      local found = specs_in(dir)
      if #found == 0 then
        usage_error('test', "no *_spec.lua file next to '%s'", r)
      end
      table.move(found, 1, #found, #files + 1, files)
    end
  end
  opts.busted, opts.files = busted, files
  return opts
end

local EXIT = {}

--- Run busted in this process with `argv` (its arguments); its exit status.
function M.busted(argv)
  local ok, runner = pcall(require, 'busted.runner')
  if not ok then
    err(('orch test: busted is not installed (Debian: apt install lua-busted): %s\n'):format(
      tostring(runner)))
    return 1
  end
  local saved_arg, real_exit = rawget(_G, 'arg'), os.exit
  local a = { [0] = 'orch test' }
  table.move(argv, 1, #argv, 1, a)
  rawset(_G, 'arg', a)
  os.exit = function(code) -- luacheck: ignore (busted's exit ends the run, not orch)
    error(setmetatable({ code = code }, EXIT), 0)
  end
  local rok, e = pcall(runner, { standalone = false })
  os.exit = real_exit -- luacheck: ignore
  rawset(_G, 'arg', saved_arg)
  io.stdout:flush()
  if rok then
    return 0
  elseif getmetatable(e) == EXIT then
    local c = e.code
    if c == true or c == nil then
      return 0
    elseif c == false then
      return 1
    end
    return math.tointeger(c) or 1
  end
  error(e, 0)
end

--- `orch test`: the exit status.
function M.cmd_test(args, start)
  local opts = M.parse(args, start)
  if opts.help then
    out(USAGE.test)
    return 0
  end
  -- busted stays in this process, even when a .busted file names an interpreter (`lua`)
  local argv = table.move(opts.busted, 1, #opts.busted, 2, { '--ignore-lua' })
  if opts.timeline then
    -- run before the spec files load: the hook that writes each failing test's timeline
    package.loaded['orch.cli.test_timeline'] = nil
    require('orch.cli.test_timeline').dir = opts.timeline
  end
  argv[#argv + 1] = '-e'
  argv[#argv + 1] = "require('orch.cli.test_timeline').install()"
  table.move(opts.files, 1, #opts.files, #argv + 1, argv)
  return M.busted(argv)
end

return M
