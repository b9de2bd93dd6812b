-- orch.runtime.json: the encoder's own rules on top of lua-cjson.
local json = require 'orch.runtime.json'

describe('orch.runtime.json', function()
  it('writes integers exactly, also above 10^14 (cjson would round them to %.14g)', function()
    assert.equal('123456789012345', json.encode(123456789012345))
    assert.equal('1796370000000000000', json.encode(1796370000000000000))
    assert.equal('-42', json.encode(-42))
    assert.equal(123456789012345, json.decode(json.encode(123456789012345)))
  end)

  it('quotes plain strings as they are and escapes the rest as cjson does, / unescaped', function()
    assert.equal('"web-1 is up"', json.encode('web-1 is up'))
    assert.equal('"a/b"', json.encode('a/b'))
    assert.equal('"a\\\\/b"', json.encode('a\\/b'))
    assert.equal('"say \\"hi\\"\\n"', json.encode('say "hi"\n'))
    assert.equal('"\\u0000\\u007f"', json.encode('\0\127'))
    assert.equal('"é"', json.encode('é'))
    assert.equal('"\xef\xbf\xbd"', json.encode('\255'))
  end)

  it('writes keys in a stable order: ts, id, stream, event, line, old, result, then sorted',
    function()
      assert.equal('{"ts":1,"id":"x","result":"success","a":true,"z":false}',
        json.encode({ z = false, a = true, result = 'success', id = 'x', ts = 1 }))
      assert.equal('{"1":"a","x":"b"}', json.encode({ [1] = 'a', x = 'b' }))
    end)

  it('keeps an empty array marked as such', function()
    assert.equal('{"requires":[]}', json.encode({ requires = json.array({}) }))
  end)
end)
