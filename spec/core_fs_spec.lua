-- core.write_new and core.random (src/fs.c): the mechanism under the status file.
local core = require 'orch.core'

local function sh(cmd)
  assert(os.execute(cmd), cmd)
end

local function read(path)
  local f = assert(io.open(path, 'rb'))
  local s = f:read('a')
  f:close()
  return s
end

describe('core.write_new', function()
  local dir
  before_each(function()
    local p = assert(io.popen('mktemp -d /tmp/orch-fs-XXXXXX'))
    dir = p:read('l')
    p:close()
  end)
  after_each(function()
    sh('rm -rf ' .. dir)
  end)

  it('creates a new file with the data, mode reduced by the umask', function()
    assert.is_true(core.write_new(dir .. '/f', 'hello\0world\n', 384)) -- 0600
    assert.equal('hello\0world\n', read(dir .. '/f'))
    assert.equal(384, core.lstat(dir .. '/f').mode)
  end)

  it('fails with EEXIST on an existing file and leaves it as it was', function()
    sh(('printf old > %s/f'):format(dir))
    local ok, msg, code = core.write_new(dir .. '/f', 'new')
    assert.same({ nil, 'EEXIST' }, { ok, code })
    assert.matches("open '" .. dir:gsub('%p', '%%%0') .. "/f'", msg)
    assert.equal('old', read(dir .. '/f'))
  end)

  it('never follows a symbolic link, even a dangling one', function()
    sh(('printf secret > %s/target && ln -s %s/target %s/link && ln -s %s/none %s/dangling')
      :format(dir, dir, dir, dir, dir))
    assert.equal('EEXIST', select(3, core.write_new(dir .. '/link', 'x')))
    assert.equal('EEXIST', select(3, core.write_new(dir .. '/dangling', 'x')))
    assert.equal('secret', read(dir .. '/target'))
    assert.is_nil(core.lstat(dir .. '/none'))
  end)

  it('never opens a FIFO (no hang)', function()
    sh(('mkfifo %s/fifo'):format(dir))
    assert.equal('EEXIST', select(3, core.write_new(dir .. '/fifo', 'x')))
  end)

  it('reports a missing directory', function()
    assert.equal('ENOENT', select(3, core.write_new(dir .. '/no/f', 'x')))
  end)

  it('raises on bad arguments', function()
    assert.has_error(function()
      core.write_new(dir .. '/f', nil)
    end)
    assert.has_error(function()
      core.write_new(dir .. '/f', 'x', 8192)
    end)
  end)
end)

describe('core.random', function()
  it('returns n bytes, different each time', function()
    local a, b = core.random(16), core.random(16)
    assert.same({ 16, 16 }, { #a, #b })
    assert.not_equal(a, b)
    assert.equal(256, #core.random(256))
  end)

  it('raises outside 1..256', function()
    for _, n in ipairs({ 0, 257, -1 }) do
      assert.has_error(function()
        core.random(n)
      end)
    end
  end)
end)

describe('core.fs_watch', function()
  local dir
  before_each(function()
    local p = assert(io.popen('mktemp -d /tmp/orch-fs-XXXXXX'))
    dir = p:read('l')
    p:close()
  end)
  after_each(function()
    sh('rm -rf ' .. dir)
  end)

  it('calls back with the name of what changed in the directory, until closed', function()
    local got = {}
    local w = assert(core.fs_watch(dir, function(name, change)
      got[#got + 1] = name .. ' ' .. change
    end))
    local t = core.timer()
    t:start(20, 0, function()
      local f = assert(io.open(dir .. '/a', 'w'))
      f:write('x')
      f:close()
      t:start(100, 0, function()
        w:close()
        w:close() -- idempotent
        local f2 = assert(io.open(dir .. '/b', 'w'))
        f2:close()
        t:start(100, 0, function()
          t:close()
        end)
      end)
    end)
    core.run()
    assert.truthy(#got > 0)
    for _, g in ipairs(got) do
      assert.matches('^a ', g) -- nothing of b: closed by then
    end
  end)

  it('returns nil and the reason for a path that does not exist', function()
    local w, why, code = core.fs_watch(dir .. '/nope/x', function() end)
    assert.is_nil(w)
    assert.matches('no such file', why)
    assert.equal('ENOENT', code)
  end)
end)
