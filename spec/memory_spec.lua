-- What keeps orch's memory small (issue 5: under 10 MiB of RSS with 1000 daemons): things that
-- cost memory without anyone noticing in a review.

describe('memory', function()
  it("no module folds a '^' at load: it calls libm's pow(), ~380 KiB of RSS", function()
    local bad = {}
    local p = io.popen('find lua/orch -name "*.lua"')
    for path in p:lines() do
      local f = assert(io.open(path))
      local text = f:read('a')
      f:close()
      -- drop comments and strings (patterns such as '^%s' live in strings), scanning in order
      -- so that a quote inside a string of the other kind does not confuse it
      local code, i = {}, 1
      while i <= #text do
        local c = text:sub(i, i)
        local long = text:match('^%-%-%[(=*)%[', i) or text:match('^%[(=*)%[', i)
        if long then
          local close = text:find(']' .. long .. ']', i, true)
          i = (close or #text) + #long + 2
        elseif text:sub(i, i + 1) == '--' then
          i = (text:find('\n', i, true) or #text) + 1
        elseif c == '"' or c == "'" then
          local j = i + 1
          while j <= #text and text:sub(j, j) ~= c do
            j = j + (text:sub(j, j) == '\\' and 2 or 1)
          end
          i = j + 1
        else
          code[#code + 1] = c
          i = i + 1
        end
      end
      text = table.concat(code)
      if text:find('%^') then
        bad[#bad + 1] = path
      end
    end
    p:close()
    assert.same({}, bad)
  end)

  it('the locator forgets the calls it recorded once the evaluation is over', function()
    local locate = require 'orch.graph.locate'
    local loc = locate.new('/nowhere/')
    loc:start()
    for i = 1, 3 do
      loc:seen('daemon', 'd' .. i, { source = '@main.lua', line = i })
    end
    assert.is_true(#loc.pending > 0)
    loc:stop()
    assert.equal(0, #loc.pending)
  end)
end)
