--- `orch check` and `orch graph`: evaluate main.lua without starting anything, then print its
-- entries in start order as a table, or its dependency graph (Graphviz dot or Mermaid).
-- @module orch.cli.check
local status = require 'orch.status'
local USAGE = require 'orch.cli.usage'
local cli_args = require 'orch.cli.args'
local evaluate = require 'orch.cli.evaluate'
local data_dir = require 'orch.cli.data_dir'
local control_paths = require 'orch.control.paths'

local out, err, usage_error = cli_args.out, cli_args.err, cli_args.usage_error
local check_script = cli_args.check_script
local message_of, run_root = evaluate.message_of, evaluate.run_root
local add_script_dir = evaluate.add_script_dir

local M = {}

-- `check` and `graph`: evaluate with a silent sink.
local function load_quiet(script, args, data)
  local sink = status.new({ writer = false })
  local scope = evaluate.new_scope(true)
  add_script_dir(script)
  local restore = evaluate.capture_exit() -- os.exit in the script is an error here
  local chain, entries = run_root(function()
    return evaluate.evaluate(script, args, { effects = sink, args = args, script = script,
      dataDir = data }, scope)
  end)
  restore()
  return chain, entries, scope
end

local function join(list, sep)
  local t = {}
  for i, v in ipairs(list or {}) do
    t[i] = tostring(v)
  end
  return table.concat(t, sep or ', ')
end

--- Render entries as the aligned table `orch check` prints.
function M.format_entries(entries)
  local rows = { { 'ID', 'KIND', 'REQUIRES', 'READY', 'RESTART', 'EXEC' } }
  for _, e in ipairs(entries) do
    local ready = '-'
    if e.ready then
      ready = (e.display and e.display ~= '') and e.display or 'yes (hidden)'
      if e.readiness and e.readiness ~= '' then
        ready = ('%s (%s)'):format(ready, e.readiness)
      end
    elseif e.kind == 'daemon' then
      ready = 'when running' -- no readiness check
    end
    local reqs = {}
    for i, r in ipairs(e.requires or {}) do
      local edge = e.edges and e.edges[r]
      reqs[i] = edge and ('%s (%s%s)'):format(r, edge.onUnhealthy,
        edge.after and (' after ' .. edge.after .. ' ms') or '') or r
    end
    local requires = join(reqs)
    rows[#rows + 1] = {
      e.id,
      e.kind or '?',
      requires ~= '' and requires or '-',
      ready,
      e.stop and ('%s, %s'):format(e.restart or '-', e.stop) or e.restart or '-',
      (e.exec and e.exec ~= '') and tostring(e.exec):gsub('\n', ' ') or '-',
    }
  end
  local widths = {}
  for _, row in ipairs(rows) do
    for i, c in ipairs(row) do
      widths[i] = math.max(widths[i] or 0, #c)
    end
  end
  local lines = {}
  for _, row in ipairs(rows) do
    local cells = {}
    for i, c in ipairs(row) do
      cells[i] = i < #row and c .. string.rep(' ', widths[i] - #c) or c
    end
    lines[#lines + 1] = (table.concat(cells, '  '):gsub('%s+$', ''))
  end
  return table.concat(lines, '\n') .. '\n'
end

local function count_kinds(entries)
  local n = { daemon = 0, oneshot = 0, health = 0 }
  for _, e in ipairs(entries) do
    n[e.kind] = (n[e.kind] or 0) + 1
  end
  local parts = {}
  for _, k in ipairs({ { 'oneshot', 'oneshot' }, { 'daemon', 'daemon' },
    { 'health', 'health check' } }) do
    local c = n[k[1]]
    if c > 0 then
      parts[#parts + 1] = ('%d %s%s'):format(c, k[2], c == 1 and '' or 's')
    end
  end
  local s = ('%d entr%s'):format(#entries, #entries == 1 and 'y' or 'ies')
  if #parts > 0 then
    s = s .. ' (' .. table.concat(parts, ', ') .. ')'
  end
  return s
end

local function cmd_check(opts, script, args)
  if opts.help then
    out(USAGE.check)
    return 0
  end
  if opts.name then
    local _, nerr = control_paths.check_name(opts.name)
    if nerr then
      usage_error('check', '%s', nerr)
    end
  end
  check_script('check', script)
  local data = data_dir.resolve('check', opts.data,
    opts.name or control_paths.default_name(script))
  local chain, entries, scope = load_quiet(script, args, data)
  if not chain then
    err(message_of(entries) .. '\n')
    return 1
  end
  for _, c in ipairs(scope.chains) do
    if c ~= chain then
      local ids = {}
      for i, e in ipairs(c:entries()) do
        ids[i] = e.id
      end
      out(('note: the script builds a chain of its own while it is evaluated (%s); orch check '
        .. 'validated it and did not run it (runUntilSuccess returned at once)\n'):format(
        table.concat(ids, ', ')))
    end
  end
  if scope.dynamic then
    out('note: main.lua returns Daemons.dynamic(fn): the entries below are what one run of fn '
      .. 'produces now (ctx.reload = 0); later runs may produce others\n')
  end
  out(M.format_entries(entries))
  out(('%s: valid, %s%s\n'):format(script, count_kinds(entries),
    scope.dynamic and ' from one run of the Daemons.dynamic function' or ''))
  return 0
end

local function dot_quote(s)
  return '"' .. tostring(s):gsub('[\\"]', '\\%0'):gsub('\n', '\\n') .. '"'
end

local function mermaid_quote(s)
  return '"' .. tostring(s):gsub('"', '#quot;'):gsub('\n', ' ') .. '"'
end

--- The graph of `entries` as Graphviz dot or Mermaid text.
function M.format_graph(entries, format)
  local lines = {}
  if format == 'mermaid' then
    lines[1] = 'flowchart LR'
    local node = {}
    for i, e in ipairs(entries) do
      node[e.id] = 'n' .. i
      local label = e.id
      if e.display and e.display ~= '' and e.display ~= e.id then
        label = label .. ': ' .. e.display
      end
      local shape
      if e.kind == 'oneshot' then
        shape = '[' .. mermaid_quote(label) .. ']'
      elseif e.kind == 'health' then
        shape = '{{' .. mermaid_quote(label) .. '}}'
      else
        shape = '(' .. mermaid_quote(label) .. ')'
      end
      lines[#lines + 1] = ('  %s%s'):format(node[e.id], shape)
    end
    for _, e in ipairs(entries) do
      for _, r in ipairs(e.requires or {}) do
        lines[#lines + 1] = ('  %s --> %s'):format(node[r] or mermaid_quote(r), node[e.id])
      end
    end
    for i, e in ipairs(entries) do
      lines[#lines + 1] = ('  class n%d %s'):format(i, e.kind or 'daemon')
    end
    lines[#lines + 1] = '  classDef oneshot fill:#eef,stroke:#558'
    lines[#lines + 1] = '  classDef daemon fill:#efe,stroke:#585'
    lines[#lines + 1] = '  classDef health fill:#ffe,stroke:#885'
  else
    lines[1] = 'digraph orch {'
    lines[#lines + 1] = '  rankdir=LR;'
    lines[#lines + 1] = '  node [fontname="Helvetica"];'
    local shapes = {
      oneshot = 'shape=box',
      daemon = 'shape=ellipse',
      health = 'shape=hexagon',
    }
    for _, e in ipairs(entries) do
      local label = e.id
      if e.display and e.display ~= '' and e.display ~= e.id then
        label = label .. '\n' .. e.display
      end
      lines[#lines + 1] = ('  %s [%s, label=%s];'):format(dot_quote(e.id),
        shapes[e.kind] or 'shape=ellipse', dot_quote(label))
    end
    for _, e in ipairs(entries) do
      for _, r in ipairs(e.requires or {}) do
        lines[#lines + 1] = ('  %s -> %s;'):format(dot_quote(r), dot_quote(e.id))
      end
    end
    lines[#lines + 1] = '}'
  end
  return table.concat(lines, '\n') .. '\n'
end

local function cmd_graph(opts, script, args)
  if opts.help then
    out(USAGE.graph)
    return 0
  end
  local format = opts.format or 'dot'
  if format ~= 'dot' and format ~= 'mermaid' then
    usage_error('graph', "unknown graph format '%s' (dot or mermaid)", tostring(format))
  end
  check_script('graph', script)
  local chain, entries = load_quiet(script, args)
  if not chain then
    err(message_of(entries) .. '\n')
    return 1
  end
  out(M.format_graph(entries, format))
  return 0
end

M.load_quiet = load_quiet
M.count_kinds = count_kinds
M.cmd_check = cmd_check
M.cmd_graph = cmd_graph

return M
