--- Where in main.lua an `add*` call went wrong: `file:line` for validation errors raised while
-- the CLI evaluates a script.
--
-- Lua gives every call of a chained expression (`Daemons.of{}:addDaemon(...):addDaemon(...)`)
-- the line where the expression *starts*, and a `return chain:addDaemon(...)` tail call has no
-- caller frame at all, so `error(msg, 2)` would point at the `return` line for every entry.
-- The locator does better: it anchors on the caller's line (or, for a tail call, on the last
-- line the script ran, tracked by a line hook), finds the call itself in the source from there
-- (`addDaemon('web'` with the entry's id as a literal), then the offending field inside the
-- call (`sigtermTimeout =`, else its parent `exec =`): the field a validation failure names
-- (`orch.validate`'s `field`), never read back from its text. Anything it cannot find falls back
-- to the anchor line; nothing here can raise.
-- @module orch.graph.locate
local sched = require 'orch.runtime.sched'

local M = {}

-- Lua pattern escape.
local function esc(s)
  return (s:gsub('[%^%$%(%)%%%.%[%]%*%+%-%?]', '%%%0'))
end

local KIND_METHOD = { daemon = 'addDaemon', oneshot = 'addOneshot', health = 'addHealthCheck' }

local Locator = {}
Locator.__index = Locator

--- A locator for scripts under evaluation; `lib_dir` is the orch library's directory (its
-- frames are skipped).
function M.new(lib_dir)
  return setmetatable({ lib = lib_dir, sources = {}, starts = {}, last = {}, pending = {},
    user_src = {} }, Locator)
end

function Locator:_user_source(src)
  return type(src) == 'string' and src:sub(1, 1) == '@'
    and (self.lib == nil or src:find(self.lib, 1, true) == nil)
end

--- Start tracking: returns the `on_line(source, line)` function to give the task that
-- evaluates the script (`sched.start{on_line = ...}`: the scheduler owns the coroutine's hook,
-- and reports only lines outside orch's modules); it remembers the last line run in a user
-- file, across yields too.
function Locator:start()
  self.last = {}
  self.hook = function(src, line)
    if src:sub(1, 1) == '@' then
      local last = self.last
      last.source, last.line = src, line
    end
  end
  return self.hook
end

--- Stop tracing lines while library code runs (an add* call): the scheduler's hook does not
-- report orch's own lines, but firing on each of them cost half of a 1000-entry evaluation.
-- Returns whether tracing was on, for `resume`.
function Locator:pause() -- luacheck: ignore 212
  return sched.trace_lines(false)
end

--- Trace lines again if `was_on` (what `pause` returned).
function Locator:resume(was_on) -- luacheck: ignore 212
  if was_on then
    sched.trace_lines(true)
  end
end

--- The evaluation is over: forget what only its errors needed (the chain keeps the evaluation's
-- scope, and with it this locator: 1000 recorded calls held ~170 KiB).
function Locator:stop()
  self.hook = nil
  self.pending, self.sources, self.starts, self.user_src = {}, {}, {}, {}
  self.prev_source, self.prev_end = nil, nil
end

-- The text of a source (`@path`), cached; nil when unreadable.
function Locator:_text(source)
  local t = self.sources[source]
  if t == nil then
    local f = io.open(source:sub(2), 'rb')
    t = f and f:read('a') or false
    if f then
      f:close()
    end
    self.sources[source] = t
  end
  return t or nil
end

-- The byte offset where each line of `text` starts, computed once per source (Locator.starts):
-- every add* call looks a line up, and rescanning from the top made 1000 entries quadratic.
local function starts_of(text)
  local starts = { 1 }
  for pos in text:gmatch('\n()') do
    starts[#starts + 1] = pos
  end
  return starts
end

-- Byte offset where line `n` starts (1-based; `starts` from starts_of); nil past the end.
local function line_start(starts, n)
  return starts[n]
end

-- The line holding byte `pos` (binary search over the line starts).
local function line_of(starts, pos)
  local lo, hi = 1, #starts
  while lo < hi do
    local mid = (lo + hi + 1) // 2
    if starts[mid] <= pos then
      lo = mid
    else
      hi = mid - 1
    end
  end
  return lo
end

-- The innermost frame (above the library) in a user file: source, current line. `skip`: how
-- many frames above the caller of `anchor` are known to be the library's (not looked at: each
-- look costs a debug.getinfo, and every add* call asks).
function Locator:_anchor(skip)
  local user = self.user_src
  for level = 4 + (skip or 0), 60 do
    local info = debug.getinfo(level, 'Sl')
    if not info then
      break
    end
    local src = info.source
    local u = user[src]
    if u == nil then
      u = self:_user_source(src) or false
      user[src] = u
    end
    if u and info.currentline > 0 then
      return src, info.currentline
    end
  end
  if self.last.source then
    return self.last.source, self.last.line
  end
  return nil
end

--- The anchor of an add* call being entered: the innermost user frame, or the last line run
-- (taken before an options function runs, which would move it). `skip`: the number of library
-- frames between the caller and the script (see `_anchor`).
function Locator:anchor(skip)
  local ok, source, line = pcall(self._anchor, self, skip)
  if ok and source then
    return { source = source, line = line }
  end
  return nil
end

--- `file:line` for an error of `add<kind>(id, ...)` about `field` (may be nil), from `anchor`
-- (see `anchor`; nil: now), or nil when there is no user frame to point at.
function Locator:position(kind, id, field, anchor)
  local p = self.pending
  for i = 1, #p, 3 do
    pcall(self._find, self, p[i], p[i + 1], nil, p[i + 2])
  end
  self.pending = {}
  local ok, source, line = pcall(self._find, self, kind, id, field, anchor)
  if ok and source then
    return ('%s:%d'):format(source:sub(2), line)
  end
  return nil
end

function Locator:_find(kind, id, field, at)
  local source, anchor
  if at then
    source, anchor = at.source, at.line
  else
    source, anchor = self:_anchor(-1)
  end
  if not source then
    return nil
  end
  local text = self:_text(source)
  local starts = text and self.starts[source]
  if text and not starts then
    starts = starts_of(text)
    self.starts[source] = starts
  end
  local from = text and line_start(starts, anchor)
  if not from then
    return source, anchor
  end
  -- the call: `addDaemon('id'` / `addDaemon("id"` / `addDaemon{...}` is not an id literal
  local method = KIND_METHOD[kind]
  local call_s, call_e
  local pat
  if method and type(id) == 'string' then
    pat = ':%s*' .. method .. '%s*%(%s*([\'"])' .. esc(id) .. '%1'
  elseif method and math.type(id) == 'integer' then
    pat = ':%s*' .. method .. '%s*%(%s*()' .. esc(tostring(id)) .. '%f[^%w_.]'
  end
  if pat then
    local prev = self.prev_end and self.prev_source == source and self.prev_end or 0
    call_s, call_e = text:find(pat, math.max(from, prev + 1))
    if not call_s then
      call_s, call_e = text:find(pat, from)
    end
  end
  if not call_s then
    return source, anchor
  end
  self.prev_source, self.prev_end = source, call_e
  local line = line_of(starts, call_s)
  if not field then
    return source, line
  end
  -- the field, inside this call: up to the next add* call
  local stop = text:find(':%s*add%u%w*%s*[%(\'"{]', call_e + 1) or #text + 1
  local body = text:sub(call_e + 1, stop - 1)
  local parts = {}
  for p in field:gmatch('[^%.]+') do
    parts[#parts + 1] = p
  end
  for i = #parts, 1, -1 do
    local found = body:find('%f[%w_]' .. esc(parts[i]) .. '%s*=')
    if found then
      return source, line_of(starts, call_e + found)
    end
  end
  return source, line
end

--- Note that an add* call succeeded: the next search starts after it (so a duplicate id in
-- the same expression is found at its own call).
function Locator:seen(kind, id, anchor)
  -- Recorded only: the searches run when an error needs a position (`position` replays them
  -- first), so a valid script pays nothing for them.
  local p = self.pending -- flat: kind, id, anchor, ... (no table per entry)
  local n = #p
  p[n + 1], p[n + 2], p[n + 3] = kind, id, anchor or false
end

--- An error the Lua VM raised inside one of orch's own frames while the script ran, moved to
-- the script's innermost line: a stack overflow strikes whatever function runs when the stack
-- is full (often the locator's line hook), which says nothing to the script's author. `lib`:
-- the library's directory; `level`: the raising function's level as the caller sees it (2 in a
-- message handler). A position Lua added is recognised by the raising frame, not by reading the
-- message: the message must start with that frame's own `file:line: `. Other errors (and
-- errors raised with `error(msg, level)`, whose frame is the C function `error`) are returned
-- as they are.
function M.relocate(e, lib, level)
  if type(e) ~= 'string' then
    return e
  end
  local info = debug.getinfo(level + 1, 'Sl')
  if not (info and info.currentline > 0 and info.source:sub(1, 1) == '@'
    and info.source:find(lib, 1, true)) then
    return e
  end
  local prefix = ('%s:%d: '):format(info.short_src, info.currentline)
  if e:sub(1, #prefix) ~= prefix then
    return e
  end
  for l = level + 2, level + 200 do
    local u = debug.getinfo(l, 'Sl')
    if not u then
      break
    end
    if u.currentline > 0 and u.source:sub(1, 1) == '@' and not u.source:find(lib, 1, true) then
      return ('%s:%d: %s'):format(u.short_src, u.currentline, e:sub(#prefix + 1))
    end
  end
  return e
end

return M
