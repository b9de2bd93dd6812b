-- The bytecode bundle (tools/luac.lua, src/bytecode.c) with a real orch binary laid out as an
-- installed one (#integration): bin/orch, share/orch/lua, lib/orch/bytecode in a temporary
-- prefix. The searcher it puts second in package.searchers gives a loader for a module whose
-- source is the text it was compiled from, steps aside for an edited one, and is not there
-- for a bundle made for another directory, a damaged bundle or ORCH_NO_BYTECODE.
local R = require 'fixtures.cli.runner'

local q = R.quote

-- What a main.lua run by `orch check` sees: whether a searcher says it is the bundle's (asked
-- for a module that does not exist), and what it says of orch.runtime.util.
local PROBE = [[
local mine
for _, search in ipairs(package.searchers) do
  local msg = search('orch.no_such_module')
  if type(msg) == 'string' and msg:find('bytecode bundle', 1, true) then
    mine = search
  end
end
local r = {}
if mine then
  r = { mine('orch.runtime.util') }
end
local said = tostring(r[2] or r[1]):gsub('\n', ' ')
io.stderr:write(('PROBE %s %s %s\n'):format(mine and 'yes' or 'no', type(r[1]), said))
return require('orch').Daemons.of()
]]

describe('bytecode bundle #integration', function()
  local prefix, lua_dir

  local function sh(cmd)
    local ok = os.execute(cmd)
    assert(ok, cmd)
  end

  local function bundle(for_dir)
    sh(('lua5.4 %s/tools/luac.lua %s %s %s/lib/orch/bytecode'):format(q(R.ROOT), q(lua_dir),
      q(for_dir), q(prefix)))
  end

  local function probe(env)
    local out = R.capture(('cd %s && %s %s/bin/orch check main.lua 2>&1; echo "rc=$?"'):format(
      q(prefix), env or '', q(prefix)))
    local n, kind, detail = out:match('PROBE (%S+) (%S+) ([^\n]*)')
    assert(out:match('rc=0'), out)
    return n, kind, detail
  end

  before_each(function()
    prefix = R.capture('mktemp -d /tmp/orch-bytecode.XXXXXX'):gsub('\n$', '')
    prefix = R.capture('realpath ' .. q(prefix)):gsub('\n$', '')
    lua_dir = prefix .. '/share/orch/lua'
    sh(('mkdir -p %s/bin %s/lib/orch %s && cp %s %s/bin/orch && cp -r %s/lua/orch %s/'):format(
      q(prefix), q(prefix), q(lua_dir), q(R.ORCH), q(prefix), q(R.ROOT), q(lua_dir)))
    R.write_file(prefix .. '/main.lua', PROBE)
  end)

  after_each(function()
    if prefix and prefix:match('^/tmp/orch%-bytecode%.') then
      os.execute('rm -rf ' .. q(prefix))
    end
  end)

  it('loads an unchanged module from the bundle', function()
    bundle(lua_dir)
    local n, kind, detail = probe()
    assert.equal('yes', n)
    assert.equal('function', kind)
    assert.equal(lua_dir .. '/orch/runtime/util.lua', detail)
  end)

  it('compiles an edited module from its source', function()
    bundle(lua_dir)
    local f = assert(io.open(lua_dir .. '/orch/runtime/util.lua', 'a'))
    f:write('\n-- edited after the bundle was made\n')
    f:close()
    local n, kind, detail = probe()
    assert.equal('yes', n)
    assert.equal('string', kind)
    assert.matches('source changed', detail)
  end)

  it('steps aside for a module found first in a directory put before the library', function()
    bundle(lua_dir)
    sh(('mkdir -p %s/mine/orch/runtime && echo "return {}" > %s/mine/orch/runtime/util.lua')
      :format(q(prefix), q(prefix)))
    R.write_file(prefix .. '/main.lua', "package.path = './mine/?.lua;' .. package.path\n"
      .. PROBE)
    local n, kind, detail = probe()
    assert.equal('yes', n)
    assert.equal('string', kind)
    assert.matches('no module', detail)
  end)

  it('is not used for another directory, damaged, or with ORCH_NO_BYTECODE', function()
    bundle('/nonexistent/orch/lua')
    assert.equal('no', (probe()))
    bundle(lua_dir)
    assert.equal('yes', (probe()))
    assert.equal('no', (probe('ORCH_NO_BYTECODE=1')))
    sh(('truncate -s 100 %s/lib/orch/bytecode'):format(q(prefix)))
    assert.equal('no', (probe()))
    R.write_file(prefix .. '/lib/orch/bytecode', 'ORCHBC1\0' .. string.rep('\255', 64))
    assert.equal('no', (probe()))
  end)
end)
