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
