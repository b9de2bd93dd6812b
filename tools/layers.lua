#!/usr/bin/env lua5.4
--- tools/layers.lua: the one-way dependency rule of lua/orch, checked (run by `make lint`).
-- Every `require 'orch...'` (also `require('orch...')` and `pcall(require, 'orch...')`, at any
-- depth) in lua/orch/**.lua is an arrow from the module of the file to the required module.
-- Each module has a layer; an arrow may point to the same layer or a lower one, never up.
-- Fails listing each arrow that points up and each module that has no layer.
--
-- Usage: lua5.4 tools/layers.lua [root]   (root: the directory holding lua/orch; default .)

--- The layers, low to high. A module `orch.<first>.<rest>` whose first name is a layer belongs
-- to it (the folder layout `lua/orch/<layer>/...`); otherwise the names below decide, where a
-- name stands for itself and everything under it: `status` is orch.status, orch.status.file,
-- orch.status_file.
local LAYERS = {
  { 'core', { 'core', 'lines' } },
  { 'runtime', { 'sched', 'process', 'track', 'notify', 'util', 'json', 'time' } },
  { 'subcontainer', {} },
  { 'entries', { 'daemon', 'health_daemon', 'trigger', 'health' } },
  { 'graph', { 'daemons', 'validate', 'locate' } },
  { 'outside', { 'log', 'status', 'control', 'cli', 'init', 'export', 'testing', 'timeline' } },
}

local RANK, BY_NAME = {}, {}
for i, l in ipairs(LAYERS) do
  RANK[l[1]] = i
  for _, name in ipairs(l[2]) do
    BY_NAME[name] = l[1]
  end
end

--- The layer of module `mod` ('orch', 'orch.sched', 'orch.runtime.sched'), or nil.
local function layer_of(mod)
  if mod == 'orch' then
    return BY_NAME.init
  end
  local rest = mod:match('^orch%.(.+)$')
  if not rest then
    return nil
  end
  local first = rest:match('^[^.]+')
  if RANK[first] then
    return first
  end
  -- the longest listed name that is the module or a prefix of it ending at '.' or '_'
  local best, best_len = nil, -1
  for name, layer in pairs(BY_NAME) do
    local n = #name
    if (rest == name or (rest:sub(1, n) == name and rest:sub(n + 1, n + 1):match('[._]')))
      and n > best_len then
      best, best_len = layer, n
    end
  end
  return best
end

--- The module name of a file under lua/ (lua/orch/cli/run.lua -> orch.cli.run).
local function module_of(rel)
  local m = rel:gsub('%.lua$', ''):gsub('/init$', ''):gsub('/', '.')
  return m
end

--- The `orch...` modules `text` requires, with their line numbers (comments skipped).
local function requires(text)
  local out, n, in_block = {}, 0, nil
  for line in (text .. '\n'):gmatch('([^\n]*)\n') do
    n = n + 1
    local code = line
    if in_block then
      local e = code:find(in_block, 1, true)
      code = e and code:sub(e + #in_block) or ''
      in_block = e == nil and in_block or nil
    end
    local open, eqs = code:match('()%-%-%[(=*)%[')
    if open then
      local close = ']' .. eqs .. ']'
      local e = code:find(close, open, true)
      if not e then
        in_block = close
      end
      code = code:sub(1, open - 1) .. (e and code:sub(e + #close) or '')
    end
    code = code:gsub('%-%-.*$', '')
    for _, pat in ipairs({ 'require%s*%(?%s*[\'"](orch[%w_.]*)[\'"]',
      'pcall%(%s*require%s*,%s*[\'"](orch[%w_.]*)[\'"]' }) do
      for mod in code:gmatch(pat) do
        out[#out + 1] = { mod = mod, line = n }
      end
    end
  end
  return out
end

local root = arg[1] or '.'
local list = io.popen(('cd %q && find lua/orch -name "*.lua" | sort'):format(root))
local problems, arrows = {}, 0
for path in list:lines() do
  local f = assert(io.open(root .. '/' .. path))
  local text = f:read('a')
  f:close()
  -- a LuaCATS definition file (`---@meta`) is for editors and is never required
  if not text:match('^%-%-%-@meta') then
    local from = module_of(path:sub(#'lua/' + 1))
    local from_layer = layer_of(from)
    if not from_layer then
      problems[#problems + 1] = ('%s: %s has no layer (add it to LAYERS in tools/layers.lua)')
        :format(path, from)
    end
    for _, r in ipairs(requires(text)) do
      arrows = arrows + 1
      local to_layer = layer_of(r.mod)
      if not to_layer then
        problems[#problems + 1] = ('%s:%d: %s requires %s, which has no layer'):format(path,
          r.line, from, r.mod)
      elseif from_layer and RANK[to_layer] > RANK[from_layer] then
        problems[#problems + 1] = ('%s:%d: %s (%s) -> %s (%s) points up'):format(path, r.line,
          from, from_layer, r.mod, to_layer)
      end
    end
  end
end
list:close()

if #problems > 0 then
  io.stderr:write('layers: ', #problems, ' problem(s); the layers, low to high, are ')
  local names = {}
  for i, l in ipairs(LAYERS) do
    names[i] = l[1]
  end
  io.stderr:write(table.concat(names, ' < '), '\n')
  for _, p in ipairs(problems) do
    io.stderr:write('  ', p, '\n')
  end
  os.exit(1)
end
print(('layers: %d arrows, all pointing down or across'):format(arrows))
