-- The man pages cannot drift from the program (#integration): orch(1), as `man` renders
-- build/man/orch.1, has one subsection per command that `orch --help` lists, naming exactly the
-- options that command's --help names, each of which the parser accepts; orch-lua(7) names
-- every field of `require 'orch'`, of orch.healthCheck and of orch.trigger. mandoc finds no
-- error in either page.
local R = require 'fixtures.cli.runner'

local BUILD = R.ORCH:gsub('/bin/orch$', '')
local MAN1, MAN7 = BUILD .. '/man/orch.1', BUILD .. '/man/orch-lua.7'

-- The page as a reader sees it: plain text, 200 columns, words broken at a hyphen joined again.
local function render(path)
  assert(R.read_file(path), path .. ' is missing: the build makes it with scdoc (make deps)')
  local text = R.capture(('LC_ALL=C MANWIDTH=200 man --nh --nj -l %s 2>&1'):format(R.quote(path)))
  return (text:gsub('(%w%-)\n%s+(%l)', '%1%2'))
end

-- The options named in `text`: --long and single-letter -x tokens, as a set.
local function options(text)
  local set = {}
  for opt in text:gmatch('%f[%w-](%-%-%w[%w-]*)') do
    set[opt] = true
  end
  for opt in text:gmatch('%f[%w-](%-%a)%f[^%w-]') do
    set[opt] = true
  end
  return set
end

-- 'a, b' for what is in `a` and not in `b`, or nil.
local function missing(a, b)
  local out = {}
  for k in pairs(a) do
    if not b[k] then
      out[#out + 1] = k
    end
  end
  table.sort(out)
  return #out > 0 and table.concat(out, ', ') or nil
end

-- The commands of `orch --help` (`  run     ...`, `  stop|start|restart ID  ...`), in order.
local function help_commands(help)
  local commands = {}
  local head = assert(help:match('^(.-)\nOptions:'), 'orch --help has an Options: section')
  for line in head:gmatch('[^\n]+') do
    for cmd in (line:match('^  (%a[%a|]*)%s') or ''):gmatch('%a+') do
      commands[#commands + 1] = cmd
    end
  end
  return commands
end

-- The sections of a rendered page: {name = text}, and the subsections of COMMANDS by command.
local function sections(text)
  local top, sub = {}, {}
  local cur_top, cur_sub
  for line in (text .. '\n'):gmatch('([^\n]*)\n') do
    local heading = line:match('^(%u[%u ]+)$')
    local subheading = line:match('^   (%S.*)$')
    if heading then
      cur_top, cur_sub = heading, nil
      top[cur_top] = ''
    elseif subheading and cur_top == 'COMMANDS' then
      cur_sub = assert(subheading:match('^orch (%a+)'), 'a COMMANDS subsection names its command: '
        .. subheading)
      sub[cur_sub] = subheading .. '\n'
    elseif cur_sub then
      sub[cur_sub] = sub[cur_sub] .. line .. '\n'
    elseif cur_top then
      top[cur_top] = top[cur_top] .. line .. '\n'
    end
  end
  return top, sub
end

describe('man pages #integration', function()
  local page, top, sub, main_help, commands

  setup(function()
    page = render(MAN1)
    top, sub = sections(page)
    local h = R.run({ '--help' })
    assert.equal(0, h.code)
    main_help = h.out
    commands = help_commands(main_help)
  end)

  it('orch(1) renders with the sections a reader looks for', function()
    for _, s in ipairs({ 'NAME', 'SYNOPSIS', 'DESCRIPTION', 'OPTIONS', 'COMMANDS', 'ENVIRONMENT',
      'EXIT STATUS', 'SEE ALSO' }) do
      assert.truthy(top[s], 'orch(1) has no section ' .. s)
    end
    assert.matches('orch %- start, supervise and control', top.NAME)
  end)

  it('orch(1) has one subsection per command of orch --help, and no other', function()
    assert.truthy(#commands >= 10, 'orch --help lists its commands')
    local want = {}
    for _, c in ipairs(commands) do
      want[c] = true
    end
    local m = missing(want, sub)
    assert.is_nil(m, 'commands of orch --help without a subsection in orch(1): ' .. tostring(m))
    m = missing(sub, want)
    assert.is_nil(m, 'subsections of orch(1) for commands orch --help does not list: '
      .. tostring(m))
  end)

  it('names every option of orch --help, and only options some help names', function()
    -- not the systemctl and journalctl lines of SYSTEMD
    local in_page = options(page:gsub('\nSYSTEMD\n.-\n(%u)', '\n%1'))
    local m = missing(options(main_help), in_page)
    assert.is_nil(m, 'orch --help names options orch(1) does not: ' .. tostring(m))
    local all = options(main_help)
    for _, cmd in ipairs(commands) do
      for o in pairs(options(R.run({ cmd, '--help' }).out)) do
        all[o] = true
      end
    end
    m = missing(in_page, all)
    assert.is_nil(m, 'orch(1) names options no --help names: ' .. tostring(m))
  end)

  it('documents, per command, exactly the options its --help names', function()
    local diffs = {}
    for _, cmd in ipairs(commands) do
      local help = R.run({ cmd, '--help' })
      assert.equal(0, help.code, 'orch ' .. cmd .. ' --help')
      local h, m = options(help.out), options(sub[cmd] or '')
      local only_help, only_man = missing(h, m), missing(m, h)
      if only_help then
        diffs[#diffs + 1] = ('orch %s --help names %s, orch(1) does not'):format(cmd, only_help)
      end
      if only_man then
        diffs[#diffs + 1] = ('orch(1) names %s for %s, its --help does not'):format(only_man, cmd)
      end
    end
    assert.equal('', table.concat(diffs, '\n'))
  end)

  it('every option orch(1) documents for a command is one its parser knows', function()
    -- An option named as `orch run --log-lines` in another command's subsection is run's.
    -- Control commands get a socket that does not exist: no orch is ever reached. One shell
    -- runs them all.
    local sock = '/tmp/orch-man-spec-no-such-dir/none.sock'
    local lines = {}
    for _, cmd in ipairs(commands) do
      for o in pairs(options(sub[cmd] or '')) do
        local owner = sub[cmd]:match('orch (%a+) ' .. o:gsub('%-', '%%-') .. '%f[^%w-]') or cmd
        local args = { R.ORCH, owner }
        if not ({ run = true, check = true, graph = true, image = true, export = true,
          import = true, probe = true })[owner] then
          args[#args + 1], args[#args + 2] = '--control', sock
        end
        args[#args + 1] = o
        for i, a in ipairs(args) do
          args[i] = R.quote(a)
        end
        lines[#lines + 1] = ('e=$(ORCH_CONTROL=0 timeout 10 %s 2>&1 >/dev/null); '
          .. 'echo "$? %s %s: $e"'):format(table.concat(args, ' '), owner, o)
      end
    end
    local unknown = {}
    local out = R.capture('cd /tmp && ' .. table.concat(lines, '; '))
    local n = 0
    for line in out:gmatch('[^\n]+') do
      local code, what = line:match('^(%d+) (.*)$')
      if code then
        n = n + 1
        if tonumber(code) > 2 or what:find('unknown option', 1, true) then
          unknown[#unknown + 1] = 'orch ' .. what
        end
      end
    end
    assert.equal(#lines, n, out)
    assert.equal('', table.concat(unknown, '\n'))
  end)

  it('orch-lua(7) names every field of the orch module, its health checks and triggers', function()
    local text = render(MAN7)
    assert.matches('orch%-lua %- the Lua API of orch', text)
    local orch = require 'orch'
    local absent = {}
    local function check(tbl, where, public)
      for k in pairs(tbl) do
        if (not public or k:match(public)) and not text:find('%f[%w_]' .. k .. '%f[^%w_]') then
          absent[#absent + 1] = where .. k
        end
      end
    end
    check(orch, 'orch.')
    check(orch.healthCheck, 'orch.healthCheck.', '^%l%w*$')
    check(orch.trigger, 'orch.trigger.', '^%l%w*$') -- not the internal fast_delay, FAST_*
    table.sort(absent)
    assert.equal('', table.concat(absent, ', '))
  end)

  it('mandoc finds no error in either page', function()
    if not R.capture('command -v mandoc') :match('mandoc') then
      pending('mandoc is not installed (make deps installs it)')
      return
    end
    for _, path in ipairs({ MAN1, MAN7 }) do
      local out = R.capture(('mandoc -T lint -W error %s 2>&1; echo "rc=$?"'):format(R.quote(path)))
      assert.matches('rc=0%s*$', out, out)
    end
  end)
end)
