-- Fault: readiness functions that misbehave (spec/fixtures/faults/health.lua): they raise every
-- kind of value, return garbage, probe a dead port, hang (waiting, or in a busy loop that would
-- freeze a cooperative scheduler). Each first call becomes a clear `failure` with the message
-- below, and the loop goes on: the next call's success is reported too. A check that hangs on
-- every call with no time limit is cancelled at stop. Runs the real build/bin/orch
-- (tagged #integration).
local F = require 'spec.support.faults'
local R = F.R

local WANT = {
  ['raise-nil'] = 'ready.fn raised nil',
  ['raise-false'] = 'ready.fn raised false',
  ['raise-true'] = 'ready.fn raised true',
  ['raise-number'] = '42',
  ['raise-string'] = 'database is down',
  ['raise-string-level0'] = 'database is down',
  ['raise-empty'] = 'ready.fn raised an empty error message',
  ['raise-table-message'] = 'bad gateway',
  ['raise-table-plain'] = 'ready.fn raised a table value',
  ['raise-tostring'] = 'custom error',
  ['raise-tostring-raises'] = 'ready.fn raised a table value whose __tostring failed: '
    .. '__tostring broke',
  ['raise-tostring-number'] = '5',
  ['raise-function'] = 'ready.fn raised a function value',
  ['raise-thread'] = 'ready.fn raised a thread value',
  ['raise-userdata'] = '^file %(0x%x+%)$', -- io.stdout's own __tostring
  ['raise-after-yield'] = 'late failure',
  ['return-nil'] = "invalid health result 'nil'",
  ['return-number'] = "invalid health result '42'",
  ['return-string'] = "invalid health result 'success'",
  ['return-empty-table'] = "invalid health result 'nil'",
  ['return-bad-result'] = "invalid health result 'great'",
  ['return-table-result'] = 'invalid health result (a table)',
  ['return-raising-index'] = 'ready.fn returned a value that cannot be read: no fields here',
  ['return-huge-message'] = '^' .. ('x'):rep(4096) .. '%.%.%. %(10481664 bytes cut%)$',
  ['return-table-message'] = '(a table message)',
  ['dead-port'] = 'Port %d is not listening',
  ['dead-url'] = 'Error while fetching URL: http://127.0.0.1:%d/health',
  ['dead-script'] = 'Error while running command: sh,-c,exit 3',
  ['hang-sleep'] = 'ready.fn did not return within 300 ms',
  ['hang-busy'] = 'ready.fn ran for more than 300 ms without yielding',
  ['hang-busy-pcall'] = 'ready.fn ran for more than 300 ms without yielding',
}

describe('faults: misbehaving health functions #integration', function()
  it('each becomes a clear failure, the loop goes on, a hung one is cancelled at stop',
    function()
      local port = R.free_port()
      local p = R.start({ 'run', '--log-format', 'json', F.FIX .. '/health.lua' },
        { env = { FAULT_PORT = tostring(port) } })
      local ok, e = pcall(function()
        local first, after
        R.wait_until(function()
          first, after = {}, {}
          for _, ev in ipairs(R.json_lines(p:out())) do
            if ev.event == 'state' and WANT[ev.id] then
              if ev.old == 'starting' then
                first[ev.id] = ev
              elseif ev.old == 'failure' and ev.result == 'success' then
                after[ev.id] = ev
              end
            end
          end
          for id in pairs(WANT) do
            if not after[id] then
              return false
            end
          end
          return true
        end, 15000, 'every check to fail once, then succeed')
        for id, want in pairs(WANT) do
          local ev = first[id]
          assert.equal('failure', ev.result, id)
          if want:sub(1, 1) == '^' then
            assert.matches(want, ev.message, id)
          else
            assert.equal(want:gsub('%%d', tostring(port)), ev.message, id)
          end
          assert.equal('call 2', after[id].message, id) -- the loop went on
        end
        assert.is_false(p:exited(), 'orch survived all of it')
        -- `hang-forever` is still in its first call: stopping cancels it
        local t0 = R.now()
        p:signal('TERM')
        assert.equal(0, p:wait(5000))
        -- real clock: a hung probe in the real binary must not hold up its shutdown
        assert.is_true(R.now() - t0 < 2, 'the hung probe held up the shutdown')
        assert.matches('"message":"stopped"', p:out())
        assert.equal('', p:err())
      end)
      p:cleanup()
      if not ok then
        error(e, 0)
      end
    end)
end)
