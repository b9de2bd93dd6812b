--- What each key does in `orch ui` (orch.cli.ui.app): moving the selection (in table or tree
-- order), scrolling the log, the actions on the selected entry, the signal and filter prompts,
-- the views (tree, help, hidden entries). Installed as methods of the app's App.
-- @module orch.cli.ui.bindings
local util = require 'orch.runtime.util'
local protocol = require 'orch.control.protocol'
local view = require 'orch.cli.ui.view'

local M = {}

-- The methods this file adds (`install` copies them onto the class).
local App = {}

function App:move(delta)
  local list = self:shown()
  if #list == 0 then
    return
  end
  local idx = 1
  for i, e in ipairs(list) do
    if e.id == self.sel_id then
      idx = i
    end
  end
  if self.mode == 'tree' then -- in tree order
    local tree = view.tree(list)
    local pos = 1
    for i, t in ipairs(tree) do
      if t[2].id == self.sel_id then
        pos = i
        break
      end
    end
    pos = math.max(1, math.min(#tree, pos + delta))
    self.sel_id = tree[pos][2].id
    return
  end
  idx = math.max(1, math.min(#list, idx + delta))
  self.sel_id = list[idx].id
  self.log_scroll = 0
end

-- A key while a prompt is open.
function App:prompt_key(k)
  if k == 'esc' or k == 'ctrl-c' then
    if self.prompt_kind == 'filter' then
      self.filter = nil
    end
    self.prompt = nil
  elseif k == 'enter' then
    local input = self.input
    self.prompt = nil
    if self.prompt_kind == 'signal' and input ~= '' then
      local sig = protocol.signal_name(input)
      if sig then
        self:act('signal', { signal = sig })
      else
        self:say(("unknown signal '%s'"):format(input))
      end
    end
  elseif k == 'backspace' then
    self.input = self.input:sub(1, (utf8.offset(self.input, -1) or 1) - 1)
  elseif k == 'ctrl-u' then
    self.input = ''
  elseif #k == 1 or (#k <= 4 and k:byte(1) >= 0xC0) then
    self.input = self.input .. k
  end
  if self.prompt_kind == 'filter' and self.prompt then
    self.filter = self.input
  end
end

local PAGE = 10

-- A key: true when it means quit.
function App:key(k)
  if self.prompt then
    self:prompt_key(k)
    return false
  end
  if self.mode == 'help' then
    self.mode = self.before_help or 'table'
    return false
  end
  if k == 'q' or k == 'ctrl-c' or k == 'ctrl-d' then
    return true
  elseif k == 'up' then
    self:move(-1)
  elseif k == 'down' then
    self:move(1)
  elseif k == 'home' then
    self:move(-1e9)
  elseif k == 'end' then
    self:move(1e9)
  elseif k == 'pgup' then
    self.log_scroll = (self.log_scroll or 0) + PAGE
  elseif k == 'pgdn' then
    self.log_scroll = math.max(0, (self.log_scroll or 0) - PAGE)
  elseif k == 'enter' or k == 'l' then
    self.log_scope = self.log_scope == 'all' and 'selected' or 'all'
    self.log_scroll = 0
  elseif k == 'r' then
    self:act('restart')
  elseif k == 's' then
    self:act('stop')
  elseif k == 'S' then
    self:act('start')
  elseif k == 'k' then
    local e = self:selected_entry()
    if e then
      self.prompt, self.prompt_kind, self.input = ('signal for %s (HUP, TERM, USR1...): ')
        :format(e.id), 'signal', ''
    end
  elseif k == '/' then
    self.prompt, self.prompt_kind, self.input = 'filter: ', 'filter', self.filter or ''
  elseif k == 'esc' then
    self.filter = nil
  elseif k == 'h' then
    self.show_hidden = not self.show_hidden
  elseif k == 't' then
    self.mode = self.mode == 'tree' and 'table' or 'tree'
  elseif k == '?' then
    self.before_help, self.mode = self.mode, 'help'
  elseif k == 'ctrl-l' then
    self.full = true
  elseif k == 'ctrl-z' then
    if self.embedded then
      self:say('ctrl-z: orch run --ui does not suspend the supervisor (q stops it)')
    else
      self:suspend()
    end
  end
  return false
end

--- Add the methods (`key`, `prompt_key`, `move`) to the class `App`.
function M.install(class)
  util.assign(class, App)
end

return M
