-- Fault: output floods (spec/fixtures/faults/output.lua). One entry writes as fast as it can
-- (50 MB in `make test`, 1 GB in `make soak`), one writes a single 10 MB line, one writes random
-- binary bytes, while a ticker writes a numbered line every 10 ms. orch's log goes through a
-- pipe into spec/fixtures/faults/linecheck.py, which checks that every byte of every entry is in
-- the log, under the right entry, with no line torn or mixed (the ticker's lines all arrive, in
-- order). orch's memory stays bounded: its peak RSS (VmHWM) stays under BOUND_KB.
-- Runs the real build/bin/orch (tagged #integration).
local F = require 'spec.support.faults'
local R = F.R
local cjson = require 'cjson'

-- The bound on orch's peak RSS, whatever the volume: per entry, the 64 KiB read buffer, a line
-- kept until its newline of at most log.MAX_LINE (64 KiB, longer ones are cut), the ring of
-- recent lines (status.DEFAULT_RING_BYTES, 1 MiB), plus the Lua heap's garbage between
-- collections. Measured: ~11 MB for 50 MB and for 1 GB alike (see the printed line).
local BOUND_KB = 32 * 1024

local function start_piped(dir, flood, long)
  local fifo = dir .. '/log.fifo'
  assert(os.execute('mkfifo ' .. R.quote(fifo)))
  os.execute(('%s%s %s %s %d %d <%s >%s 2>&1 &'):format(R.NO_PRELOAD, F.PY,
    R.quote(F.FIX .. '/linecheck.py'), R.quote(dir), flood, long, R.quote(fifo),
    R.quote(dir .. '/checker.out')))
  local inner = ('cd %s || exit 99; env FAULT_DIR=%s FAULT_FLOOD=%d FAULT_LONGLINE=%d %s run %s '
    .. '>%s 2>%s/err </dev/null & echo $! >%s/pid.tmp; mv %s/pid.tmp %s/pid; wait $!; '
    .. 'echo $? >%s/rc.tmp; mv %s/rc.tmp %s/rc'):format(R.quote(R.ROOT), R.quote(dir), flood,
    long, R.quote(R.ORCH), R.quote(F.FIX .. '/output.lua'), R.quote(fifo), dir, dir, dir, dir,
    dir, dir, dir)
  os.execute(('%ssh -c %s >/dev/null 2>&1 &'):format(R.NO_PRELOAD, R.quote(inner)))
  local pid = R.wait_until(function()
    return tonumber(R.read_file(dir .. '/pid') or '')
  end, 5000, 'orch to start')
  return pid
end

local function flood(bytes, ms)
  local dir = R.tmpdir()
  local pid
  local ok, e = pcall(function()
    local long = 10 * 1024 * 1024
    assert(os.execute(('head -c %d /dev/urandom | tr -d "\\r" >%s/garbage.bin'):format(
      10 * 1024 * 1024, R.quote(dir))))
    local t0 = R.now()
    pid = start_piped(dir, bytes, long)
    R.wait_until(function()
      return F.exists(dir .. '/done.flag') or F.exists(dir .. '/rc')
    end, ms, 'every flood to be through orch')
    local secs = R.now() - t0
    local orch = F.inner_pid(pid)
    local st = F.proc_status(orch)
    assert.is_not_nil(st, 'orch is alive')
    os.execute('kill -TERM ' .. pid)
    R.wait_until(function()
      return F.exists(dir .. '/rc')
    end, 10000, 'orch to exit')
    assert.equal('0', (R.read_file(dir .. '/rc'):gsub('%s', '')))
    R.wait_until(function()
      return F.exists(dir .. '/summary.json')
    end, 10000, 'the checker to finish')
    local s = cjson.decode(R.read_file(dir .. '/summary.json'))
    io.stderr:write(('\n[output %d MB] through orch in %.1f s: flood %d lines, longline %d '
      .. 'pieces, garbage %d lines, %d ticks; orch peak RSS %d kB, RSS %d kB (bound %d kB)\n')
      :format(bytes // 1000000, secs, s.lines.flood or 0, s.longline_pieces,
        s.lines.garbage or 0, s.ticks, st.VmHWM, st.VmRSS, BOUND_KB))
    assert.same({}, s.errors)
    assert.is_true(s.done)
    -- the 10 MB line is cut into log.MAX_LINE (64 KiB) pieces, none lost
    assert.equal(long // 65536, s.longline_pieces)
    assert.is_true(s.ticks >= 10, 'the ticker kept going')
    if not F.sanitized() then
      assert.is_true(st.VmHWM < BOUND_KB, ('peak RSS %d kB'):format(st.VmHWM))
    end
    local err = R.read_file(dir .. '/err') or ''
    assert.falsy(err:find('error', 1, true), err)
  end)
  if pid and not F.exists(dir .. '/rc') then
    os.execute('kill -KILL ' .. pid .. ' 2>/dev/null')
  end
  R.cleanup(dir)
  if not ok then
    error(e, 0)
  end
end

describe('faults: output floods #integration', function()
  it('50 MB as fast as possible, a 10 MB line, 10 MB of binary garbage: all through, '
    .. 'attributed, memory bounded', function()
    flood(50 * 1000 * 1000, 60000)
  end)

  it('1 GB as fast as possible #soak', function()
    flood(1024 * 1024 * 1024, 600000)
  end)
end)
