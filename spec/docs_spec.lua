-- README.md cannot rot: its Lua examples are run by the real build/bin/orch (#integration).
--   <!-- docs-spec: check -->  the fenced lua block after it must pass `orch check`;
--   <!-- docs-spec: run -->    the same, and `orch run --until-ready` must exit 0 (the tutorial's
--                              final main.lua; it reads its port from $PORT).
--   <!-- docs-spec: test -->   a spec for the `run` block's main.lua: `orch test` must pass it
--                              (it is not a main.lua: orch check does not read it).
-- Every command of `orch --help` and every option of `orch <command> --help` must be named in
-- the README.
local R = require 'fixtures.cli.runner'

local README = R.ROOT .. '/README.md'

-- The marked blocks of `text`, in order: `{kind = 'check'|'run', code = ..., line = n}` (`line`
-- is the marker's line).
local function marked_blocks(text)
  local out = {}
  local pos = 1
  while true do
    -- a marker starts a line (the README also names the markers in its prose)
    local s, e, kind = text:find('\n<!%-%- docs%-spec: (%a+) %-%->', pos)
    if not s then
      break
    end
    local code, stop = text:match('^%s*```lua\n(.-\n)```()', e + 1)
    assert(code, ('README.md: no ```lua block right after the marker at byte %d'):format(s))
    local _, line = text:sub(1, s + 1):gsub('\n', '')
    out[#out + 1] = { kind = kind, code = code, line = line + 1 }
    pos = stop
  end
  return out
end

describe('README.md #integration', function()
  local text = assert(R.read_file(README), 'cannot read README.md')
  local blocks = marked_blocks(text)
  local dirs = {}

  after_each(function()
    for _, d in ipairs(dirs) do
      R.cleanup(d)
    end
    dirs = {}
  end)

  -- Write `code` as main.lua in a fresh directory; returns the directory.
  local function script(code)
    local dir = R.tmpdir()
    dirs[#dirs + 1] = dir
    R.write_file(dir .. '/main.lua', code)
    return dir
  end

  it('has marked examples, exactly one of them the run of the tutorial', function()
    local runs, kinds = 0, {}
    for _, b in ipairs(blocks) do
      assert.truthy(b.kind == 'check' or b.kind == 'run' or b.kind == 'test',
        ('README.md:%d: unknown marker docs-spec: %s'):format(b.line, b.kind))
      kinds[b.kind] = true
      if b.kind == 'run' then
        runs = runs + 1
      end
    end
    assert.equal(1, runs, 'README.md must mark one block with <!-- docs-spec: run -->')
    assert.is_true(kinds.check)
  end)

  for _, b in ipairs(blocks) do
    if b.kind == 'test' then
      it(('the spec of the tutorial (README.md:%d) passes orch test'):format(b.line), function()
        local main
        for _, m in ipairs(blocks) do
          main = m.kind == 'run' and m or main
        end
        local dir = script(main.code)
        R.write_file(dir .. '/main_spec.lua', b.code)
        local r = R.run({ 'test' }, { cwd = dir, timeout = 40 })
        assert.equal(0, r.code, ('README.md:%d: orch test failed:\n%s%s'):format(b.line, r.out,
          r.err))
        assert.matches('1 success / 0 failures', r.out)
      end)
    end
  end

  for i, b in ipairs(blocks) do
    if b.kind == 'test' then
      goto continue
    end
    it(('block %d (README.md:%d) passes orch check'):format(i, b.line), function()
      local dir = script(b.code)
      local r = R.run({ 'check', 'main.lua' }, { cwd = dir })
      assert.equal(0, r.code, ('README.md:%d: orch check failed:\n%s%s'):format(b.line, r.out,
        r.err))
      assert.matches('main.lua: valid, %d+ entr', r.out)
    end)
    ::continue::
  end

  for _, b in ipairs(blocks) do
    if b.kind == 'run' then
      it(('the tutorial main.lua (README.md:%d) comes up with orch run --until-ready'):format(
        b.line), function()
        local dir = script(b.code)
        local port = R.free_port()
        local r = R.run({ 'run', '--until-ready=20000', 'main.lua' },
          { cwd = dir, env = { PORT = tostring(port) }, timeout = 40 })
        assert.equal(0, r.code, ('README.md:%d: orch run --until-ready failed:\n%s%s'):format(
          b.line, r.out, r.err))
        assert.matches('every entry was ready; stopped cleanly', r.out)
        -- the three kinds of entries of the tutorial all reached success
        assert.matches('content: starting %-> success', r.out)
        -- (web may report `failure "not listening yet"` first, within its grace period)
        assert.matches('web: %a+ %-> success', r.out)
        assert.matches('homepage: starting %-> success %(home page served%)', r.out)
        assert.equal('<h1>Hello from orch</h1>\n', R.read_file(dir .. '/public/index.html'))
      end)
    end
  end

  it('names every command and every option the help lists', function()
    local main = R.run({ '--help' })
    assert.equal(0, main.code)
    -- the command lines of `orch --help`: `  run     ...`, `  stop|start|restart ID  ...`
    local commands = {}
    local head = assert(main.out:match('^(.-)\nOptions:'), 'orch --help has an Options: section')
    for line in head:gmatch('[^\n]+') do
      local names = line:match('^  (%a[%a|]*)%s')
      for cmd in (names or ''):gmatch('%a+') do
        commands[#commands + 1] = cmd
      end
    end
    assert.truthy(#commands >= 3, 'orch --help lists its commands')
    for _, cmd in ipairs(commands) do
      assert.truthy(text:find('orch ' .. cmd, 1, true),
        ("orch --help lists '%s' but README.md never shows 'orch %s'"):format(cmd, cmd))
      local help = R.run({ cmd, '--help' })
      assert.equal(0, help.code, 'orch ' .. cmd .. ' --help')
      for opt in help.out:gmatch('%f[%w-](%-%-[%w][%w-]*)') do
        local pat = '%f[%w-]' .. opt:gsub('%-', '%%-') .. '%f[^%w-]'
        assert.truthy(text:find(pat),
          ("orch %s --help lists %s but README.md does not document it"):format(cmd, opt))
      end
    end
  end)
end)
