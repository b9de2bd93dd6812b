#!/usr/bin/env lua5.4
--- tools/docblocks.lua: a doc comment must sit on the function it documents (run by `make lint`).
-- LDoc (and lua-language-server) give a `---` block to the line right below it; when two comments
-- run together, or a block is left above a helper, the reference documents the wrong function.
--
-- The rule. A doc block is a run of adjacent comment lines whose first line starts with exactly
-- three dashes (`---`, not `----`); its subject is the line right after it. Blocks carrying
-- `@module`, `@classmod`, `@meta`, `@table`, `@section`, `@type`, `@class` or `@alias` are not
-- about a function and are skipped. For every other block:
--  1. one comment: after its first tag line (`-- @tag`), every line is a tag line or a
--     continuation of one: `--` then two spaces or more, or text that does not start with a
--     capital letter. A new sentence (or a blank `--` line) after the tags is another comment
--     run into the block, which then documents the function under that comment, not its own;
--  2. `@function NAME` (or `@lfunction`) names the subject: the subject is a function with the
--     same last name (`a.b:c` -> `c`), compared ignoring case and underscores (`useEntrypoint`
--     documents `M.use_entrypoint`);
--  3. when the first line opens with a call in backquotes (`` `name(`` or `` `obj:name(``), that
--     name is the subject's (the same comparison);
--  4. each parameter the block documents (`@param`, `@tparam`, `@string`, `@number`, `@int`,
--     `@bool`, `@func`, `@tab`, with or without `[opt]`) is a parameter of the subject function
--     (`...` accepts any).
-- Rules 2-4 apply when the subject is a function definition (`function x.y(`, `local function
-- y(`, `x.y = function(`). Otherwise:
--  5. the subject is `name = value`, `local name = value` or `return ...`, or the block names
--     what it documents (`@function`, `@field`): LDoc reads nothing else (`local x` alone, a
--     call) and drops the block. A block followed by a blank line is free-standing and skipped.
--
-- Usage: lua5.4 tools/docblocks.lua FILE...   (or no argument: every lua/orch/**.lua)

local PARAM_TAGS = { param = true, tparam = true, string = true, number = true, int = true,
  bool = true, func = true, tab = true }
local NOT_FUNCTION = { module = true, classmod = true, meta = true, table = true, section = true,
  type = true, class = true, alias = true, submodule = true, script = true, field = false }

local function last_name(name)
  return name:match('([%w_]+)$')
end

--- Whether two names are the same function's (last names, ignoring case and underscores).
local function same_name(a, b)
  local function norm(x)
    return last_name(x):gsub('_', ''):lower()
  end
  return norm(a) == norm(b)
end

--- The function defined on `line`: its last name and its parameter list, or nil.
local function function_of(line)
  local name, params = line:match('^%s*local%s+function%s+([%w_]+)%s*%(([^)]*)%)')
  if not name then
    name, params = line:match('^%s*function%s+([%w_.:]+)%s*%(([^)]*)%)')
  end
  if not name then
    name, params = line:match('^%s*local%s+([%w_]+)%s*=%s*function%s*%(([^)]*)%)')
  end
  if not name then
    name, params = line:match('^%s*([%w_.]+)%s*=%s*function%s*%(([^)]*)%)')
  end
  if not name then
    return nil
  end
  local set = {}
  for p in params:gmatch('[%w_.]+') do
    set[p] = true
  end
  return { name = name, last = last_name(name), params = set }
end

local function is_comment(line)
  return line:match('^%s*%-%-') ~= nil
end

--- The tag of a comment line (`-- @tparam[opt] string x` -> 'tparam', rest), or nil.
local function tag_of(line)
  local tag, rest = line:match('^%s*%-%-%-?%s*@([%a_]+)(.*)$')
  return tag, rest
end

--- Whether a block says itself what it documents (`@function name`, `@field`...).
local function has_name_tag(tags)
  for _, t in ipairs(tags) do
    if t.tag == 'function' or t.tag == 'lfunction' or t.tag == 'field' then
      return true
    end
  end
  return false
end

local function check_block(path, lines, first, last, problems)
  local function problem(n, msg)
    problems[#problems + 1] = ('%s:%d: %s'):format(path, n, msg)
  end
  local tags, seen_tag = {}, nil
  for n = first, last do
    local tag, rest = tag_of(lines[n])
    if tag then
      if NOT_FUNCTION[tag] then
        return
      end
      tags[#tags + 1] = { tag = tag, rest = rest, line = n }
      seen_tag = seen_tag or n
    elseif seen_tag and not lines[n]:match('^%s*%-%-%-?%s%s+%S')
      and lines[n]:match('^%s*%-%-%-?%s*%u') or (seen_tag and lines[n]:match('^%s*%-%-%-?%s*$'))
    then
      problem(n, ('the doc block of line %d goes on after its tags (tag at line %d): '
        .. 'two comments run together, so it documents the wrong function; put a blank line or '
        .. 'code between them'):format(first, seen_tag))
      return
    end
  end
  local subject = lines[last + 1]
  local fn = subject and function_of(subject)
  if not fn then
    -- 5. a block above code documents a function or a `name = value`; LDoc cannot read anything
    -- else (`local x` alone, a call), and drops the block
    if subject and subject:match('%S') and not subject:match('^%s*[%w_.%[%]\'"]+%s*=')
      and not subject:match('^%s*local%s+[%w_,%s<>]+=') and not subject:match('^%s*return%s')
      and not has_name_tag(tags) then
      problem(first, ('the doc block sits above `%s`, which is no function and no `name = value`')
        :format(subject:match('^%s*(.-)%s*$')))
    end
    return
  end
  for _, t in ipairs(tags) do
    if t.tag == 'function' or t.tag == 'lfunction' then
      local want = t.rest:match('^%s*([%w_.:]+)')
      if want and not same_name(want, fn.name) then
        problem(t.line, ('@%s %s sits above function %s (line %d)'):format(t.tag, want, fn.name,
          last + 1))
      end
    elseif PARAM_TAGS[t.tag] and not fn.params['...'] then
      -- `@tparam[opt] type name`, `@param name`, `@string name`, `---@param name type`
      local rest = t.rest:gsub('^%b[]', '')
      local name
      if t.tag == 'tparam' then
        name = rest:match('^%s*%S+%s+([%w_]+)')
      else
        name = rest:match('^%s*([%w_]+)')
      end
      if name and not fn.params[name] then
        problem(t.line, ("documents a parameter '%s' that function %s (line %d) does not have")
          :format(name, fn.name, last + 1))
      end
    end
  end
  local called = lines[first]:match('^%s*%-%-%-%s*`([%w_.:]+)%(')
  if called and not same_name(called, fn.name) then
    problem(first, ('the doc block for %s sits above function %s (line %d)'):format(called,
      fn.name, last + 1))
  end
end

local function check_file(path, problems)
  local f = assert(io.open(path))
  local lines = {}
  for line in f:lines() do
    lines[#lines + 1] = line
  end
  f:close()
  local n = 1
  while n <= #lines do
    if lines[n]:match('^%s*%-%-%-[^-]') or lines[n]:match('^%s*%-%-%-$') then
      local last = n
      while lines[last + 1] and is_comment(lines[last + 1]) do
        last = last + 1
      end
      check_block(path, lines, n, last, problems)
      n = last + 1
    else
      n = n + 1
    end
  end
end

local files = { ... }
if #files == 0 then
  local p = io.popen('find lua/orch -name "*.lua" | sort')
  for path in p:lines() do
    files[#files + 1] = path
  end
  p:close()
end
local problems = {}
for _, path in ipairs(files) do
  check_file(path, problems)
end
if #problems > 0 then
  io.stderr:write(('docblocks: %d doc block(s) on the wrong function (rule: tools/docblocks.lua)\n')
    :format(#problems))
  for _, p in ipairs(problems) do
    io.stderr:write('  ', p, '\n')
  end
  os.exit(1)
end
print(('docblocks: %d files, every doc block on its function'):format(#files))
