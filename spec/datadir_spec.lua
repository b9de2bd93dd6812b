-- orch.runtime.datadir: where images, volumes, assets and backups live, and image configs.
local datadir = require 'orch.runtime.datadir'

local function sh(cmd)
  assert(os.execute(cmd), cmd)
end

local function write(path, text)
  local f = assert(io.open(path, 'w'))
  f:write(text)
  f:close()
end

local function env(t)
  return function(k)
    return t[k]
  end
end

describe('datadir.default_path', function()
  it('is /var/lib/orch/<name> as root', function()
    assert.equal('/var/lib/orch/web', datadir.default_path('web', 0, env({ HOME = '/root' })))
  end)

  it('is $XDG_DATA_HOME/orch/<name> otherwise, else ~/.local/share/orch/<name>', function()
    assert.equal('/x/data/orch/web', datadir.default_path('web', 1000,
      env({ XDG_DATA_HOME = '/x/data/', HOME = '/home/u' })))
    -- a relative XDG_DATA_HOME is ignored, as the XDG specification says
    assert.equal('/home/u/.local/share/orch/web', datadir.default_path('web', 1000,
      env({ XDG_DATA_HOME = 'rel', HOME = '/home/u' })))
    local p, err = datadir.default_path('web', 1000, env({}))
    assert.is_nil(p)
    assert.matches('use %-%-data DIR', err)
  end)
end)

describe('datadir.check_id', function()
  it('accepts plain ids and refuses paths, dots and empty ids, naming the id', function()
    for _, id in ipairs({ 'main', 'postgres-16', 'a.b_c', '0' }) do
      assert.equal(id, datadir.check_id(id))
    end
    for _, id in ipairs({ '', '.', '..', '../etc', 'a/b', '.hidden', '-x', 'a b',
      ('x'):rep(129) }) do
      local ok, err = datadir.check_id(id, 'volume')
      assert.is_nil(ok, id)
      assert.matches('volume id', err)
    end
    assert.matches("invalid image id 'a/b'", select(2, datadir.check_id('a/b')))
  end)
end)

describe('a data directory', function()
  local dir, dd
  before_each(function()
    local p = assert(io.popen('mktemp -d /tmp/orch-datadir-XXXXXX'))
    dir = p:read('l')
    p:close()
    dd = datadir.open(dir .. '/')
  end)
  after_each(function()
    sh('rm -rf ' .. dir)
  end)

  it('lays out images, volumes, assets and backups', function()
    assert.equal(dir, dd.root)
    assert.equal(dir .. '/images/main/rootfs', dd:image_rootfs('main'))
    assert.equal(dir .. '/images/main/config.json', dd:image_config_path('main'))
    assert.equal(dir .. '/volumes/data', dd:volume('data'))
    assert.equal(dir .. '/assets', dd:assets())
    assert.equal(dir .. '/backups', dd:backups())
  end)

  it('lists the images that have a rootfs, not work in progress', function()
    assert.same({}, dd:image_ids())
    sh(('mkdir -p %s/images/b/rootfs %s/images/a/rootfs %s/images/.tmp-c/rootfs %s/images/d')
      :format(dir, dir, dir, dir))
    assert.same({ 'a', 'b' }, dd:image_ids())
    assert.is_true(dd:has_image('a'))
    assert.is_false(dd:has_image('d'))
  end)

  it('reads an image config, nulls as missing keys', function()
    sh(('mkdir -p %s/images/main/rootfs'):format(dir))
    write(dd:image_config_path('main'), '{"user":"app","workdir":"/srv","env":["A=1","B=x=y"],'
      .. '"entrypoint":null,"cmd":["sh","-c","echo hi"]}')
    assert.same({ user = 'app', workdir = '/srv', env = { 'A=1', 'B=x=y' },
      cmd = { 'sh', '-c', 'echo hi' } }, dd:image_config('main'))
    write(dd:image_config_path('main'), '{}')
    assert.same({}, dd:image_config('main'))
  end)

  it('writes a config that reads back the same', function()
    sh(('mkdir -p %s/images/main/rootfs'):format(dir))
    local cfg = { user = '1000:1000', env = { 'PATH=/bin' }, entrypoint = {}, cmd = { 'x' } }
    assert.is_true(datadir.write_config(dd:image_config_path('main'), cfg))
    assert.same(cfg, dd:image_config('main'))
  end)

  it('names the image id when the image or its config is missing or malformed', function()
    local cases = {
      { nil, "image 'main': no such image in " },
      { false, "image 'main': cannot read its config" },
      { '{"user":', "image 'main': .*config.json is not valid JSON" },
      { '[1]', "image 'main': .*config.json: not a JSON object" },
      { '{"user":1}', "'user' must be a string, got number" },
      { '{"env":["A"]}', "'env%[1%]' must be NAME=VALUE, got 'A'" },
      { '{"cmd":"sh"}', "'cmd' must be an array of strings, got string" },
      { '{"cmd":{"a":"b"}}', "'cmd' must be an array of strings, got an object" },
      { '{"Cmd":[]}', "unknown key 'Cmd'" },
    }
    for _, c in ipairs(cases) do
      sh(('rm -rf %s/images'):format(dir))
      if c[1] ~= nil then
        sh(('mkdir -p %s/images/main/rootfs'):format(dir))
      end
      if c[1] then
        write(dd:image_config_path('main'), c[1])
      end
      local cfg, err = dd:image_config('main')
      assert.is_nil(cfg, c[2])
      assert.matches(c[2], err)
    end
    assert.matches("invalid image id '../x'", select(2, dd:image_config('../x')))
  end)

  it('mkdir_p creates missing parents and refuses a file on the way', function()
    assert.is_true(datadir.mkdir_p(dir .. '/volumes/data/x'))
    assert.is_true(datadir.mkdir_p(dir .. '/volumes/data/x'))
    write(dir .. '/f', '')
    local ok, err = datadir.mkdir_p(dir .. '/f/y')
    assert.is_nil(ok)
    assert.matches("'" .. dir:gsub('%p', '%%%0') .. "/f' is not a directory", err)
  end)

  it('current() is the scope of the evaluation, else ORCH_DATA', function()
    local sched = require 'orch.runtime.sched'
    local seen
    sched.run(function()
      local t = sched.start({ scope = { data_dir = dir } }, function()
        seen = datadir.current().root
      end)
      t:join()
    end, { timeout = 1000 })
    assert.equal(dir, seen)
    -- outside a scope: ORCH_DATA, which this process does not set
    if not os.getenv('ORCH_DATA') then
      local dd2, err = datadir.current()
      assert.is_nil(dd2)
      assert.matches('set ORCH_DATA', err)
    end
  end)
end)
