-- Shell completion (#integration): completions/orch.bash, sourced in bash with COMP_WORDS and
-- COMP_CWORD set as readline sets them, offers the commands and, per command, exactly the
-- options `orch <command> --help` defines; script files for run; and the entry ids of a real
-- running orch through its control socket. completions/_orch passes `zsh -n` and names the
-- same options.
local R = require 'fixtures.cli.runner'
local cjson = require 'cjson'

local BASH = R.ROOT .. '/completions/orch.bash'
local ZSH = R.ROOT .. '/completions/_orch'

local session = R.session()

local HAVE_ZSH = R.capture('command -v zsh || true'):match('zsh') ~= nil

-- What an interactive zsh lists for `orch <line><TAB>` (spec/fixtures/completion/
-- zsh_complete.zsh drives it in a zpty, with completions/ first in $fpath).
local function zsh_complete(line)
  return R.capture(('zsh -f %s %s %s %s 2>&1'):format(
    R.quote(R.ROOT .. '/spec/fixtures/completion/zsh_complete.zsh'),
    R.quote(R.ROOT .. '/completions'), R.quote(R.ORCH), R.quote(line)))
end

-- The completions bash offers for `words` (the last one is the word being completed), as a
-- sorted list, run in `cwd`.
local function complete(words, cwd)
  local q = { R.quote(R.ORCH) }
  for i, w in ipairs(words) do
    q[i + 1] = R.quote(w)
  end
  local script = ('source %s; COMP_WORDS=(%s); COMP_CWORD=%d; _orch; '
    .. 'printf "%%s\\n" "${COMPREPLY[@]}"'):format(R.quote(BASH), table.concat(q, ' '), #words)
  local out = R.capture(('cd %s && bash -c %s 2>&1'):format(R.quote(cwd or R.ROOT),
    R.quote(script)))
  local list = {}
  for line in out:gmatch('[^\n]+') do
    list[#list + 1] = line
  end
  table.sort(list)
  return list
end

local function sorted(t)
  local out = {}
  for k in pairs(t) do
    out[#out + 1] = k
  end
  table.sort(out)
  return out
end

-- The options a --help text defines: those of its Usage: line, and those of the option column
-- of its Options: section (not the ones its prose mentions).
local function defined_options(help)
  local set = {}
  local function add(text)
    for opt in text:gmatch('%f[%w-](%-%-%w[%w-]*)') do
      set[opt] = true
    end
    for opt in text:gmatch('%f[%w-](%-%a)%f[^%w-]') do
      set[opt] = true
    end
  end
  add(help:match('^Usage: [^\n]*') or '')
  local section = help:match('\nOptions:\n(.-)\n\n') or help:match('\nOptions:\n(.*)$') or ''
  for line in section:gmatch('[^\n]+') do
    if line:match('^  %-') then
      add(line:match('^  (.-)%s%s') or line)
    end
  end
  return sorted(set)
end

local function help_commands()
  local help = R.run({ '--help' }).out
  local commands = {}
  for line in assert(help:match('^(.-)\nOptions:')):gmatch('[^\n]+') do
    for cmd in (line:match('^  (%a[%a|]*)%s') or ''):gmatch('%a+') do
      commands[#commands + 1] = cmd
    end
  end
  table.sort(commands)
  return commands
end

describe('shell completion #integration', function()
  teardown(session.cleanup)

  it('bash offers the commands of orch --help, and completes a prefix', function()
    local commands = help_commands()
    assert.truthy(#commands >= 10)
    assert.same(commands, complete({ '' }))
    assert.same({ 'start', 'status', 'stop' }, complete({ 'st' }))
    assert.same({ '--help', '--version', '-V', '-h' }, complete({ '-' }))
  end)

  it('bash offers, per command, exactly the options its --help defines', function()
    for _, cmd in ipairs(help_commands()) do
      local want = defined_options(R.run({ cmd, '--help' }).out)
      assert.truthy(#want > 0, cmd)
      assert.same(want, complete({ cmd, '-' }), 'orch ' .. cmd .. ' -<TAB>')
    end
    assert.same({ '--log-dir', '--log-format', '--log-lines' }, complete({ 'run', '--log' }))
  end)

  it('bash completes option values and script files', function()
    assert.same({ 'json', 'text' }, complete({ 'run', '--log-format', '' }))
    assert.same({ 'dot', 'mermaid' }, complete({ 'graph', '--format', '' }))
    local dir = session.tmpdir()
    R.write_file(dir .. '/main.lua', 'return nil\n')
    R.write_file(dir .. '/notes.txt', '')
    os.execute('mkdir ' .. R.quote(dir .. '/sub'))
    assert.same({ 'main.lua', 'sub' }, complete({ 'run', '' }, dir))
    assert.same({ 'main.lua', 'sub' }, complete({ 'check', '--help', '' }, dir))
    -- `orch main.lua` is `orch run main.lua`; after the script come its arguments (any file)
    assert.same({ 'main.lua' }, complete({ 'ma' }, dir))
    assert.same({ 'main.lua', 'notes.txt', 'sub' }, complete({ 'run', 'main.lua', '' }, dir))
  end)

  describe('against a running orch', function()
    local dir, sock, p

    setup(function()
      dir = session.tmpdir()
      sock = dir .. '/ctl.sock'
      R.write_file(dir .. '/main.lua', [[
local orch = require 'orch'
return orch.Daemons.of{}
  :addDaemon('web', { exec = { command = { 'sleep', '86398' } }, requires = {} })
  :addDaemon('worker', { exec = { command = { 'sleep', '86398' } }, requires = { 'web' } })
  :addOneshot('warm-up', { exec = { command = 'true' }, requires = { 'web' } })
]])
      p = session.start({ 'run', '--no-contain', '--control', sock, dir .. '/main.lua' })
      R.wait_until(function()
        local r = R.run({ 'status', '--json', '--control', sock })
        return r.code == 0 and cjson.decode(r.out).orch.total == 3
      end, 15000, 'orch to answer on its control socket')
    end)

    teardown(function()
      if p then
        p:signal('TERM')
        p:wait(15000)
      end
    end)

    it('bash offers its entry ids where a command takes one', function()
      local ids = { 'warm-up', 'web', 'worker' }
      assert.same(ids, complete({ 'stop', '--control', sock, '' }))
      assert.same(ids, complete({ 'status', '--control=' .. sock, '' }))
      assert.same({ 'web' }, complete({ 'restart', '--control', sock, 'we' }))
      assert.same(ids, complete({ 'logs', 'web', '--control', sock, '' }))
      assert.same(ids, complete({ 'signal', '--control', sock, '' }))
      assert.same({ 'HUP' }, complete({ 'signal', '--control', sock, 'web', 'H' }))
      -- one id only for stop; none for shutdown
      assert.same({}, complete({ 'stop', '--control', sock, 'web', '' }))
      assert.same({}, complete({ 'shutdown', '--control', sock, '' }))
    end)

    it('zsh lists its entry ids where a command takes one', function()
      if not HAVE_ZSH then
        pending('zsh is not installed (make deps installs it)')
        return
      end
      local out = zsh_complete('stop --control ' .. sock .. ' ')
      for _, id in ipairs({ 'warm-up', 'web', 'worker' }) do
        assert.truthy(out:find('%f[%w-]' .. id:gsub('%-', '%%-') .. '%f[^%w-]'), out)
      end
      out = zsh_complete('signal --control ' .. sock .. ' web ')
      assert.matches('HUP', out)
      assert.matches('TERM', out)
    end)

    it('bash offers no ids, quickly and silently, when no orch answers', function()
      local t0 = R.now()
      assert.same({}, complete({ 'stop', '--control', dir .. '/none.sock', '' }))
      assert.truthy(R.now() - t0 < 5)
    end)
  end)

  it('zsh lists the commands, and the options of a command', function()
    if not HAVE_ZSH then
      pending('zsh is not installed (make deps installs it)')
      return
    end
    local out = zsh_complete('st')
    for _, cmd in ipairs({ 'start', 'status', 'stop' }) do
      assert.matches('\n' .. cmd .. ' +%-%- ', out)
    end
    out = zsh_complete('logs --')
    for _, opt in ipairs(defined_options(R.run({ 'logs', '--help' }).out)) do
      if opt:match('^%-%-') then
        assert.truthy(out:find(opt .. ' ', 1, true), opt .. ' in\n' .. out)
      end
    end
  end)

  it('zsh: _orch parses and names every option each --help defines', function()
    if not HAVE_ZSH then
      pending('zsh is not installed (make deps installs it)')
      return
    end
    local out = R.capture(('zsh -n %s 2>&1; echo "rc=$?"'):format(R.quote(ZSH)))
    assert.matches('^rc=0%s*$', out, out)
    local text = assert(R.read_file(ZSH))
    local absent = {}
    for _, cmd in ipairs(help_commands()) do
      assert.truthy(text:find("'" .. cmd .. ':', 1, true), 'zsh lists the command ' .. cmd)
      for _, opt in ipairs(defined_options(R.run({ cmd, '--help' }).out)) do
        if not text:find('%f[%w-]' .. opt:gsub('%-', '%%-') .. '%f[^%w-]') then
          absent[#absent + 1] = cmd .. ' ' .. opt
        end
      end
    end
    assert.equal('', table.concat(absent, ', '))
  end)
end)
