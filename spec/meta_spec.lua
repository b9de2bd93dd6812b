-- lua/orch/meta.lua (the LuaCATS definitions editors read) against what orch accepts: the option
-- classes list exactly the keys orch.graph.validate and orch.entries.validate_exec take, and the
-- module classes exactly the public functions, so the editor's completion cannot drift.

local function read(path)
  local f = assert(io.open(path))
  local s = f:read('a')
  f:close()
  return s
end

-- The `---@field` names of each `---@class` in meta.lua, and its `function Class.x` / `:x`.
local function meta_classes()
  local classes, current = {}, nil
  for line in read('lua/orch/meta.lua'):gmatch('[^\n]+') do
    local class = line:match('^%-%-%-@class%s+([%w_.]+)')
    if class then
      current = { fields = {}, var = nil }
      classes[class] = current
    elseif line:match('^%-%-%-@field') and current then
      current.fields[#current.fields + 1] = line:match('^%-%-%-@field%s+([%w_]+)')
    elseif line:match('^local%s+([%w_]+)%s*=%s*{}') and current then
      current.var = line:match('^local%s+([%w_]+)')
    elseif not line:match('^%-%-') then
      current = nil
    end
    local var, name = line:match('^function%s+([%w_]+)[.:]([%w_]+)%(')
    if var then
      for _, c in pairs(classes) do
        if c.var == var then
          c.fields[#c.fields + 1] = name
        end
      end
    end
    local tvar, tname = line:match('^([%w_]+)%.([%w_]+)%s*=')
    if tvar then
      for _, c in pairs(classes) do
        if c.var == tvar then
          c.fields[#c.fields + 1] = tname
        end
      end
    end
  end
  return classes
end

-- The strings of `local NAME = { ... }` in validate.lua or validate_exec.lua (or
-- `kind = { ... }` inside it).
local function validate_list(name, kind)
  local src = read('lua/orch/graph/validate.lua') .. read('lua/orch/entries/validate_exec.lua')
  local body = src:match('local ' .. name .. ' = (%b{})')
  assert(body, name)
  if kind then
    body = body:match(kind .. ' = (%b{})')
    assert(body, kind)
  end
  local out = {}
  for k in body:gmatch("'([%w_]+)'") do
    out[#out + 1] = k
  end
  return out
end

local function sorted(list)
  local t = table.move(list, 1, #list, 1, {})
  table.sort(t)
  return t
end

local function public(mod)
  local out = {}
  for k, v in pairs(mod) do
    if type(k) == 'string' and not k:match('^_') and k:match('^%l') or k == 'ABORTED' then
      if type(v) == 'function' or k == 'ABORTED' then
        out[#out + 1] = k
      end
    end
  end
  return out
end

describe('lua/orch/meta.lua', function()
  local classes = meta_classes()

  it('is a definition file that loads as Lua 5.4', function()
    assert.matches('^%-%-%-@meta', read('lua/orch/meta.lua'))
    assert.is_function(loadfile('lua/orch/meta.lua'))
  end)

  it('lists exactly the option keys validate.lua accepts', function()
    local cases = {
      { 'orch.DaemonOptions', validate_list('ENTRY_KEYS', 'daemon') },
      { 'orch.OneshotOptions', validate_list('ENTRY_KEYS', 'oneshot') },
      { 'orch.HealthCheckOptions', validate_list('ENTRY_KEYS', 'health') },
      { 'orch.Exec', validate_list('EXEC_KEYS') },
      { 'orch.Ready', validate_list('READY_KEYS') },
      { 'orch.Subcontainer', validate_list('SUB_KEYS') },
    }
    for _, c in ipairs(cases) do
      assert(classes[c[1]], c[1])
      assert.same(sorted(c[2]), sorted(classes[c[1]].fields), c[1])
    end
    -- what exec.fn returns: an exec without fn and without the entry's restart policy
    local policy = { fn = true, restart = true, maxRestarts = true, restartWindow = true,
      backoff = true }
    local spec = {}
    for _, k in ipairs(validate_list('EXEC_KEYS')) do
      if not policy[k] then
        spec[#spec + 1] = k
      end
    end
    assert.same(sorted(spec), sorted(classes['orch.CommandSpec'].fields))
  end)

  insulate('the public functions', function()
    it('has every public function of the modules, and no other', function()
      local H = require 'spec.support.helpers'
      local _, orch = H.fake()
      local daemons_public = {}
      for _, k in ipairs(public(orch.Daemons)) do
        daemons_public[#daemons_public + 1] = k
      end
      local cases = {
        { 'orch', public(orch), { 'Daemons', 'Daemon', 'healthCheck', 'trigger',
          'SubContainer', 'Mounts' } },
        { 'orch.SubContainerModule', public(orch.SubContainer) },
        { 'orch.SubContainer', public(orch.SubContainer.SubContainer) },
        { 'orch.MountsModule', public(orch.Mounts) },
        { 'orch.healthCheck', public(orch.healthCheck) },
        { 'orch.trigger', public(orch.trigger), nil, { fast_delay = true } },
        -- entry_changed: the entries' observer callback, not for scripts
        { 'orch.Daemons', daemons_public, nil, { entry_changed = true } },
      }
      for _, c in ipairs(cases) do
        local want = {}
        for _, k in ipairs(c[2]) do
          if not (c[4] and c[4][k]) then
            want[#want + 1] = k
          end
        end
        for _, k in ipairs(c[3] or {}) do
          want[#want + 1] = k
        end
        assert.same(sorted(want), sorted(classes[c[1]].fields), c[1])
      end
    end)
  end)
end)
