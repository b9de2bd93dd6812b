-- Specs for orch.status_file: the document, coalesced writes, and a directory other users can
-- write into (planted links and FIFOs, refused directories). Real core (timers, files).
local core = require 'orch.core'
local status = require 'orch.status'
local status_file = require 'orch.status.file'
local helpers = require 'spec.support.helpers'
local cjson = require 'cjson'

local function sh(cmd)
  assert(os.execute(cmd), cmd)
end

local function read(path)
  local f = io.open(path, 'rb')
  if not f then
    return nil
  end
  local s = f:read('a')
  f:close()
  return s
end

local function doc(path)
  local s = assert(read(path), 'no file at ' .. path)
  return cjson.decode(s)
end

local function names(dir)
  local out = assert(core.readdir(dir))
  table.sort(out)
  return out
end

-- A sink that logs nothing but keeps its warnings.
local function make_sink()
  local warnings = {}
  local sink = status.new({ writer = false })
  sink:subscribe(function(ev)
    if ev.type == 'log' then
      warnings[#warnings + 1] = ev.message
    end
  end)
  return sink, warnings
end

local dir
before_each(function()
  local p = assert(io.popen('mktemp -d /tmp/orch-status-XXXXXX'))
  dir = p:read('l')
  p:close()
end)

after_each(function()
  sh('chmod -R u+w ' .. dir .. ' && rm -rf ' .. dir)
  assert.is_false(core.run('nowait'))
end)

describe('status_file', function()
  it('holds every entry and the meta fields after the loop turn of a change', function()
    local sink = make_sink()
    local path = dir .. '/status.json'
    local f = status_file.new(sink, path, {
      meta = function()
        return { orch = { phase = 'running' } }
      end,
    })
    sink:declare({ { id = 'db', kind = 'daemon' },
      { id = 'api', kind = 'daemon', requires = { 'db' } } })
    sink:onState({ id = 'db', result = 'success', message = 'up' })
    assert.is_nil(read(path)) -- not within the turn of the change
    helpers.drive_loop(core)
    local d = doc(path)
    assert.same({ 1, 'running', 1, 2 }, { d.v, d.orch.phase, d.ready, d.total })
    assert.same({ 'db', 'success', 'up' },
      { d.entries[1].id, d.entries[1].result, d.entries[1].message })
    assert.same({ 'db' }, d.entries[2].requires)
    assert.same({ 'status.json' }, names(dir)) -- no temporary file left
    assert.is_true(f:close())
    sink:onState({ id = 'db', result = 'failure' })
    helpers.drive_loop(core)
    assert.equal('success', doc(path).entries[1].result)
  end)

  it('writes once for a burst of changes, with the last state', function()
    local sink = make_sink()
    local path = dir .. '/status.json'
    local f = status_file.new(sink, path)
    local entries = {}
    for i = 1, 300 do
      entries[i] = { id = 'c' .. i, kind = 'oneshot' }
    end
    sink:declare(entries)
    for i = 1, 300 do
      sink:onState({ id = 'c' .. i, result = 'starting' })
      sink:onState({ id = 'c' .. i, result = 'success' })
    end
    helpers.drive_loop(core)
    assert.equal(1, f.writes)
    assert.same({ 300, 300 }, { doc(path).ready, doc(path).total })
    f:close()
  end)

  it('writes at most once per interval while changes keep coming', function()
    local sink = make_sink()
    local path = dir .. '/status.json'
    local f = status_file.new(sink, path, { interval = 100 })
    local t0
    helpers.run(function()
      local sched = require 'orch.runtime.sched'
      t0 = core.now()
      for i = 1, 100 do -- a change every 5 ms for 500 ms or more
        sink:onState({ id = 'a', result = 'starting', message = tostring(i) })
        sched.sleep(5)
      end
    end)
    local elapsed = core.now() - t0
    assert.is_true(f.writes <= elapsed // 100 + 2, ('%d writes in %d ms'):format(f.writes,
      elapsed))
    assert.is_true(f.writes >= 2)
    f:close()
    assert.equal('100', doc(path).entries[1].message) -- the last change is in the file
  end)

  it('writes a pending change on close (the final state at exit)', function()
    local sink = make_sink()
    local path = dir .. '/status.json'
    local f = status_file.new(sink, path)
    assert.is_true(f:write())
    sink:onState({ id = 'a', result = 'success', message = 'last' })
    assert.is_true(f:close()) -- without a loop turn in between
    assert.equal('last', doc(path).entries[1].message)
    assert.equal(2, f.writes)
  end)

  it('reports a path it cannot write, once', function()
    local sink, warnings = make_sink()
    local f = status_file.new(sink, '/nonexistent/dir/status.json')
    local ok, err = f:write()
    assert.is_nil(ok)
    assert.matches('nonexistent', err)
    f:write()
    assert.equal(1, #warnings)
    assert.matches('cannot write status file /nonexistent/dir/status.json', warnings[1])
    f:close()
  end)

  describe('in a directory someone else may write into', function()
    local target
    before_each(function()
      target = dir .. '/target'
      sh(('printf secret > %s'):format(target))
    end)

    -- Every name a status file of `sink` at `path` could be expected to use: the old one built
    -- from the sink's address (PATH.<hex>.tmp, the same for a whole run) and the first names
    -- the given random source yields.
    local function predictable(sink, path, firsts)
      local list = { path .. '.tmp',
        ('%s.%s.tmp'):format(path, tostring(sink):match('0x(%x+)') or 'new') }
      for _, h in ipairs(firsts) do
        list[#list + 1] = ('%s.%s.tmp'):format(path, h)
      end
      return list
    end

    -- A random source that yields these hex names first, then fresh random ones.
    local function scripted(hexes)
      local i = 0
      return function(n)
        i = i + 1
        local h = hexes[i]
        if h then
          return (h:gsub('%x%x', function(b)
            return string.char(tonumber(b, 16))
          end))
        end
        return core.random(n)
      end
    end

    it('never follows a link planted at a name it may use', function()
      local sink = make_sink()
      local path = dir .. '/status.json'
      local firsts = { '0001020304050607', '08090a0b0c0d0e0f' }
      for _, name in ipairs(predictable(sink, path, firsts)) do
        assert(core.lstat(name) == nil)
        sh(('ln -s %s %s'):format(target, name))
      end
      local f = status_file.new(sink, path, { random = scripted(firsts) })
      sink:onState({ id = 'a', result = 'success' })
      assert.is_true(f:write())
      assert.is_true(f:write())
      assert.equal('secret', read(target))
      assert.equal('file', core.lstat(path).type)
      assert.equal('success', doc(path).entries[1].result)
      f:close()
    end)

    it('never opens a FIFO planted at a name it may use (no hang)', function()
      local sink = make_sink()
      local path = dir .. '/status.json'
      local firsts = { '1011121314151617' }
      for _, name in ipairs(predictable(sink, path, firsts)) do
        sh('mkfifo ' .. name)
      end
      local f = status_file.new(sink, path, { random = scripted(firsts) })
      sink:onState({ id = 'a', result = 'success' })
      assert.is_true(f:write())
      assert.equal('success', doc(path).entries[1].result)
      f:close()
    end)

    it('gives up with a message when every name it tries is taken', function()
      local sink = make_sink()
      local path = dir .. '/status.json'
      sh(('ln -s %s %s.%s.tmp'):format(target, path, '2020202020202020'))
      local f = status_file.new(sink, path, {
        random = function()
          return '        ' -- always the same name: taken
        end,
      })
      local ok, err = f:write()
      assert.is_nil(ok)
      assert.matches('no free temporary name', err)
      assert.equal('secret', read(target))
      f:close()
    end)

    it('refuses a group- or world-writable directory without the sticky bit', function()
      for _, mode in ipairs({ '770', '707', '777' }) do
        sh(('chmod %s %s'):format(mode, dir))
        local sink = make_sink()
        local f = status_file.new(sink, dir .. '/status.json')
        local ok, err = f:write()
        assert.is_nil(ok, mode)
        assert.matches('is writable by other users', err)
        assert.is_nil(core.lstat(dir .. '/status.json'))
        f:close()
      end
    end)

    it('accepts a world-writable directory with the sticky bit (/tmp)', function()
      sh(('chmod 1777 %s'):format(dir))
      local sink = make_sink()
      local f = status_file.new(sink, dir .. '/status.json')
      assert.is_true(f:write())
      f:close()
    end)

    it('refuses a directory of another user', function()
      if core.getuid() ~= 0 then
        pending('needs root to give the directory away')
        return
      end
      sh(('chown 65534 %s'):format(dir))
      local sink = make_sink()
      local f = status_file.new(sink, dir .. '/status.json')
      local ok, err = f:write()
      assert.is_nil(ok)
      assert.matches('belongs to uid 65534', err)
      f:close()
    end)

    it('follows a link to the directory to judge the directory itself', function()
      sh(('mkdir %s/real && chmod 777 %s/real && ln -s real %s/alias'):format(dir, dir, dir))
      local sink = make_sink()
      local f = status_file.new(sink, dir .. '/alias/status.json')
      local ok, err = f:write()
      assert.is_nil(ok)
      assert.matches('is writable by other users', err)
      f:close()
    end)
  end)
end)
