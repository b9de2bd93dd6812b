-- The catalogue of broken scripts (spec/fixtures/bad/*.lua): for each, `orch check` and `orch run`
-- exit 1 with the exact error its header announces, and nothing is started.
--
-- Every fixture starts with a header:
--   -- Broken: <what is wrong>
--   -- expect: <the exact first line orch prints on stderr>
--   -- line: <the main.lua line the message points at>   (where the error has a position)
--   -- entry: <the entry id the message names>           (where the error is about an entry)
--   -- field: <the option the message names>             (where the error is about an option)
-- and every command in it would create $ORCH_BAD_MARKER: if anything ran, the marker exists.
-- Runs the real build/bin/orch (tagged #integration).
local R = require 'fixtures.cli.runner'

local DIR = R.ROOT .. '/spec/fixtures/bad'

local function fixtures()
  local names = {}
  local p = assert(io.popen('ls ' .. R.quote(DIR)))
  for name in p:lines() do
    if name:match('%.lua$') then
      names[#names + 1] = name
    end
  end
  p:close()
  table.sort(names)
  return names
end

local function header(name)
  local h = {}
  for line in io.lines(DIR .. '/' .. name) do
    local k, v = line:match('^%-%- (%a+): (.*)$')
    if not k then
      if not line:match('^%-%-') then
        break
      end
    else
      h[k:lower()] = v
    end
  end
  return h
end

-- stderr without orch's notices about its own environment (containment, tracking).
local function error_text(err)
  local lines = {}
  for line in (err .. '\n'):gmatch('([^\n]*)\n') do
    if not line:match('^orch: notice: ') then
      lines[#lines + 1] = line
    end
  end
  return table.concat(lines, '\n')
end

-- The text after the first line: nothing, the rest of a multi-line message (indented, as
-- `require` writes it) or a traceback of the script's own frames.
local function check_rest(name, text)
  local rest = text:match('^[^\n]*\n(.*)$') or ''
  rest = rest:gsub('\n+$', '')
  if rest == '' then
    return
  end
  for line in (rest .. '\n'):gmatch('([^\n]*)\n') do
    assert(line == 'stack traceback:' or line:match('^\t'),
      ('%s: unexpected extra output %q'):format(name, line))
  end
end

describe('broken scripts #integration', function()
  local names = fixtures()

  it('the catalogue holds at least 40 scripts, each with an expected message', function()
    assert.is_true(#names >= 40, 'only ' .. #names .. ' fixtures')
    for _, name in ipairs(names) do
      local h = header(name)
      assert.is_string(h.broken, name .. ': no "-- Broken:" header')
      assert.is_string(h.expect, name .. ': no "-- expect:" header')
      assert.equal(name, h.expect:sub(1, #name), name .. ': the message must start with its file')
    end
  end)

  local dir = R.tmpdir()
  local marker = dir .. '/marker'
  teardown(function()
    R.cleanup(dir)
  end)

  for _, name in ipairs(names) do
    local h = header(name)
    describe(name .. ' (' .. tostring(h.broken) .. ')', function()

      for _, cmd in ipairs({ 'check', 'run' }) do
        it('orch ' .. cmd .. ' exits 1 with the exact message and starts nothing', function()
          local r = R.run({ cmd, name }, { cwd = DIR, env = { ORCH_BAD_MARKER = marker },
            timeout = 10 })
          local text = error_text(r.err)
          local first = text:match('^[^\n]*')
          assert.equal(1, r.code, name .. ': exit status; stderr:\n' .. r.err)
          assert.equal(h.expect, first)
          check_rest(name, text)
          if h.line then
            assert.equal(name .. ':' .. h.line .. ':', first:sub(1, #name + #h.line + 2))
          end
          if h.entry then
            assert.truthy(first:find("'" .. h.entry .. "'", 1, true), 'names the entry')
          end
          if h.field then
            assert.truthy(first:find(h.field, 1, true), 'names the field')
          end
          -- nothing started: no marker, no process event in the log
          assert.is_nil(R.read_file(marker), name .. ': something ran')
          assert.falsy(r.out:find('started (pid', 1, true), name .. ': ' .. r.out)
          if cmd == 'check' then
            assert.equal('', r.out)
          end
        end)
      end
    end)
  end
end)
