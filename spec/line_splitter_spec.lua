-- Unit specs for orch.line_splitter: raw output chunks into lines. No core needed.
local line_splitter = require 'orch.runtime.line_splitter'

local function split_all(chunks, max)
  local lines = {}
  local feed = line_splitter.new(function(l)
    lines[#lines + 1] = l
  end, max)
  for _, c in ipairs(chunks) do
    feed(c)
  end
  return lines, feed
end

describe('line_splitter.new', function()
  it('emits complete lines and keeps a partial line until its newline', function()
    local lines, feed = split_all({ 'a\nb', 'c\n', 'd' })
    assert.same({ 'a', 'bc' }, lines)
    feed('e\n')
    assert.same({ 'a', 'bc', 'de' }, lines)
  end)

  it('flushes the partial line at EOF and only once', function()
    local lines, feed = split_all({ 'x\ny' })
    feed(nil)
    feed(nil)
    assert.same({ 'x', 'y' }, lines)
  end)

  it('keeps empty lines and strips a trailing CR', function()
    local lines = split_all({ '\n\r\nz\r\n' })
    assert.same({ '', '', 'z' }, lines)
  end)

  it('splits lines over the maximum, never drops bytes', function()
    local long = string.rep('a', 25)
    local lines, feed = split_all({ long:sub(1, 7), long:sub(8), '\n' }, 10)
    feed(nil)
    assert.same({ 'aaaaaaaaaa', 'aaaaaaaaaa', 'aaaaa' }, lines)
    assert.equal(long, table.concat(lines))
  end)

  it('splits a pending over-long partial line before its newline arrives', function()
    local lines = split_all({ string.rep('b', 35) }, 10)
    assert.same({ 'bbbbbbbbbb', 'bbbbbbbbbb', 'bbbbbbbbbb' }, lines)
  end)

  it('does not cut a UTF-8 character when splitting', function()
    local s = 'aaaaaaaa\u{20AC}bb' -- 8 + 3 + 2 bytes
    local lines, feed = split_all({ s }, 10)
    feed(nil)
    assert.same({ 'aaaaaaaa', '\u{20AC}bb' }, lines)
  end)

  it('handles the 64 KiB default with a 200 KiB line', function()
    local s = string.rep('x', 200 * 1024)
    local lines = split_all({ s .. '\n' })
    assert.equal(4, #lines)
    assert.equal(64 * 1024, #lines[1])
    assert.equal(s, table.concat(lines))
  end)
end)

-- The stream's lines as the splitter must give them, computed the plain way: the whole stream
-- cut at newlines (a CR before one removed), each line cut into pieces of at most `max` bytes
-- (stepping back over UTF-8 continuation bytes), the unterminated rest last.
local function reference(stream, max)
  local out = {}
  local function pieces(line)
    while #line > max do
      local k = max
      for back = 0, 3 do
        local b = line:byte(max + 1 - back)
        if b & 0xC0 ~= 0x80 then
          k = max - back
          break
        end
      end
      out[#out + 1] = line:sub(1, k)
      line = line:sub(k + 1)
    end
    out[#out + 1] = line
  end
  local pos = 1
  while true do
    local nl = stream:find('\n', pos, true)
    if not nl then
      break
    end
    pieces((stream:sub(pos, nl - 1):gsub('\r$', '')))
    pos = nl + 1
  end
  if pos <= #stream then
    pieces(stream:sub(pos))
  end
  return out
end

describe('line_splitter.blocks (orch.lines, C)', function()
  local lines = require 'orch.lines'

  it('gives the chunk itself as the block when it is whole plain lines', function()
    local sp = line_splitter.blocks()
    local chunk = 'one\ntwo\nthree\n'
    local block, count = sp:feed(chunk)
    assert.equal(chunk, block)
    assert.equal(3, count)
    assert.is_nil(sp:feed('par'))
    assert.equal(3, sp:pending())
    block, count = sp:feed('tial\r\nx')
    assert.equal('partial\n', block)
    assert.equal(1, count)
    assert.same({ 'x\n', 1 }, { sp:feed(nil) })
    assert.is_nil(sp:feed(nil))
  end)

  it('matches the plain cutting for random streams cut into random chunks', function()
    math.randomseed(19)
    local alphabet = { 'a', 'b', '\n', '\r', '\u{20AC}', '\u{1F600}', 'z', '\n' }
    for _ = 1, 300 do
      local max = math.random(4, 24)
      local parts = {}
      for i = 1, math.random(0, 120) do
        parts[i] = alphabet[math.random(#alphabet)]
      end
      local stream = table.concat(parts)
      local sp, got, count = line_splitter.blocks(max), {}, 0
      local pos = 1
      while pos <= #stream do
        local len = math.random(1, 30)
        local block, n = sp:feed(stream:sub(pos, pos + len - 1))
        if block then
          count = count + n
          assert.equal(n, lines.count(block))
          assert.equal('\n', block:sub(-1))
          for l in line_splitter.each(block) do
            got[#got + 1] = l
          end
        end
        pos = pos + len
      end
      local block, n = sp:feed(nil)
      if block then
        count = count + n
        got[#got + 1] = block:sub(1, -2)
      end
      assert.same(reference(stream, max), got, ('stream %q, max %d'):format(stream, max))
      assert.equal(#got, count)
    end
  end)

  it('refuses a maximum under 4 bytes', function()
    assert.has_error(function()
      line_splitter.blocks(3)
    end)
  end)
end)

describe('orch.lines.prefix', function()
  local lines = require 'orch.lines'

  it('puts the prefix before every line, with or without the count', function()
    assert.equal('> a\n> \n> b\n', lines.prefix('a\n\nb\n', '> '))
    assert.equal('> a\n> \n> b\n', lines.prefix('a\n\nb\n', '> ', 3))
    assert.equal('> a\n> b\n', lines.prefix('a\nb', '> '))
    assert.equal('', lines.prefix('', '> '))
  end)

  it('refuses a count lower than the lines of the block', function()
    assert.has_error(function()
      lines.prefix('a\nb\nc\n', '> ', 2)
    end)
  end)
end)
