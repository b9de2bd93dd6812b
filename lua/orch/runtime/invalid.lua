--- Validation failures, and the checks every option table shares (types, unknown keys,
-- times in ms, lists of strings). A failure is raised as an `Invalid` error (`field`, `id`,
-- `message`; `tostring` gives the message) and `check` turns it into `nil, err`.
-- @module orch.runtime.invalid
local util = require 'orch.runtime.util'

local M = {}

--- A validation failure: `message` (the whole text, wording of reference.md 5.3; also what
-- `tostring` gives), `field` (the option it is about, as written in the script:
-- `exec.sigtermTimeout`, `requires`, `exec.env.PATH`; nil when it is about the id or the entry
-- as a whole) and `id` (the entry's id, when it is about an entry).
local Invalid = {}
Invalid.__index = Invalid
Invalid.__tostring = function(e)
  return e.message
end
M.Invalid = Invalid

--- Whether `e` is a validation failure.
function M.is_invalid(e)
  return getmetatable(e) == Invalid
end

--- A context for messages: their prefix (`Daemons: entry 'web': `) and the entry's id.
function M.context(prefix, id)
  return { prefix = prefix, id = id }
end

--- Raise a failure about `field` of the entry of `ctx`; `text` follows the context's prefix.
function M.fail(ctx, field, text)
  error(setmetatable({ field = field, id = ctx.id, message = ctx.prefix .. text }, Invalid), 0)
end

--- The same with a message that does not start with the context's prefix.
function M.fail_whole(ctx, field, message)
  error(setmetatable({ field = field, id = ctx.id, message = message }, Invalid), 0)
end

--- Run `fn(...)`; a validation failure becomes `nil, err` (an `M.Invalid`), anything else is
-- re-raised.
function M.check(fn, ...)
  local res = table.pack(pcall(fn, ...))
  if res[1] then
    return table.unpack(res, 2, res.n)
  end
  local err = res[2]
  if getmetatable(err) == Invalid then
    return nil, err
  end
  error(err, 0)
end

--- The type of `v` as messages spell it, 'nil' for nil (for 'got ...').
function M.type_name(v)
  if v == nil then
    return 'nil'
  end
  return type(v)
end

--- Fail on the first key of `t` (sorted) not in `valid`, naming the nearest valid key, or the
-- hint `misplaced[key]`; `path` prefixes the key in the message and the field (`exec.`).
-- valid list -> set of its keys (the lists are constants of the validating modules; building the
-- set on every call was 7% of evaluating 1000 entries)
local key_sets = setmetatable({}, { __mode = 'k' })

function M.unknown_keys(t, valid, ctx, path, misplaced)
  local set = key_sets[valid]
  if not set then
    set = {}
    for _, k in ipairs(valid) do
      set[k] = true
    end
    key_sets[valid] = set
  end
  local bad
  for k in pairs(t) do
    if not set[k] then
      bad = bad or {}
      bad[#bad + 1] = k
    end
  end
  if not bad then
    return
  end
  table.sort(bad, function(a, b)
    return tostring(a) < tostring(b)
  end)
  local k = bad[1]
  local field = path .. tostring(k)
  if misplaced and misplaced[k] then
    M.fail(ctx, field, ('unknown option %s (%s)'):format(field, misplaced[k]))
  end
  local near = util.nearest(k, valid)
  if near then
    M.fail(ctx, field, ('unknown option %s (did you mean %s?)'):format(field, near))
  end
  M.fail(ctx, field, ('unknown option %s (valid: %s)'):format(field, util.join(valid)))
end

--- Fail with `<name> must be <what>, got <type>` unless `ok`.
function M.expect(v, ok, ctx, name, what)
  if not ok then
    M.fail(ctx, name, ('%s must be %s, got %s'):format(name, what, M.type_name(v)))
  end
end

--- The longest time option accepted (ms): 2^31 - 1, about 24.8 days (what a JavaScript
-- timer accepts: upstream code with more would fire at once).
M.MAX_MS = util.MAX_MS

--- Fail unless `v` is nil or a time in ms (`util.check_ms`: an integer 0..MAX_MS).
function M.check_ms(v, ctx, name)
  if v == nil then
    return
  end
  local bad, shown = util.check_ms(v)
  if bad == 'type' then
    M.fail(ctx, name, ('%s must be a non-negative integer (ms), got %s'):format(name, shown))
  elseif bad then
    M.fail(ctx, name, ('%s must be at most %d ms (about 24.8 days), got %s'):format(name,
      M.MAX_MS, shown))
  end
end

--- Fail unless `v` is a list of strings without NUL bytes (not empty unless `allow_empty`).
function M.check_string_list(v, ctx, name, allow_empty)
  if not util.is_sequence(v) then
    M.fail(ctx, name, ('%s must be a list of strings, got %s'):format(name, M.type_name(v)))
  end
  if #v == 0 and not allow_empty then
    M.fail(ctx, name, name .. ' must not be empty')
  end
  for _, a in ipairs(v) do
    if type(a) ~= 'string' then
      M.fail(ctx, name, ('%s must be a list of strings, got a %s element'):format(name, type(a)))
    end
    if a:find('\0', 1, true) then
      M.fail(ctx, name, name .. ' contains a NUL byte')
    end
  end
end

return M
