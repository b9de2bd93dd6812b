-- A consumer of orch's stdout that stops reading never blocks a daemon (issue 19): orch's own
-- stdout goes through a bounded buffer written by a thread of its own (cli/run_stdout.lua,
-- src/outbuf.c); what does not fit is dropped in whole lines, counted, and said once the reader
-- reads again.
local R = require 'fixtures.cli.runner'

local MAIN = [[
local orch = require 'orch'
-- a chatty daemon: 600 lines of 100 bytes per turn, and a heartbeat file per turn
return orch.Daemons.of():addDaemon('chatty', { exec = { command = {'sh', '-c', [=[
i=0
while :; do
  i=$((i+1)); echo $i >hb.tmp && mv hb.tmp hb
  yes $(printf %099d 0) | head -n 600
done]=] } }, requires = {} })
]]

describe('orch run with a slow reader of its stdout #integration', function()
  local dir, pid, reader

  after_each(function()
    if pid then
      os.execute(('kill -TERM %d 2>/dev/null'):format(pid))
    end
    if reader then
      reader:close()
      reader = nil
    end
    if pid then
      pcall(R.wait_until, function()
        return not R.alive(pid)
      end, 10000, 'orch to exit')
      os.execute(('kill -KILL %d 2>/dev/null'):format(pid))
    end
    R.cleanup(dir)
    pid = nil
  end)

  local function heartbeat()
    return tonumber(R.read_file(dir .. '/hb') or '') or 0
  end

  it('keeps the daemon running while nobody reads, then says how many lines it dropped',
    function()
      dir = R.tmpdir()
      R.write_file(dir .. '/main.lua', MAIN)
      assert(os.execute('mkfifo ' .. R.quote(dir .. '/out')))
      os.execute(('%ssh -c %s >/dev/null 2>&1 &'):format(R.NO_PRELOAD, R.quote(
        ('cd %s && %s run --no-control main.lua >out 2>err & echo $! >%s/pid'):format(
          R.quote(dir), R.quote(R.ORCH), R.quote(dir)))))
      reader = assert(io.open(dir .. '/out', 'rb')) -- opens once orch's shell opens it
      pid = R.wait_until(function()
        return tonumber(R.read_file(dir .. '/pid') or '')
      end, 5000, 'orch to start')
      assert.matches('running main.lua', reader:read('l'))
      -- nobody reads from now on: the pipe (64 KiB) and orch's buffer (4 MiB) fill up after
      -- ~70 turns; the daemon must go on well past that
      R.wait_until(function()
        return heartbeat() >= 200
      end, 60000, 'the heartbeat to pass 200 turns (12 MB) while stdout is not read')
      local hb = heartbeat()
      R.wait_until(function()
        return heartbeat() >= hb + 20
      end, 20000, 'the heartbeat to keep advancing')
      assert.is_true(R.alive(pid))
      -- reading again: what was held comes first, then the warning with the count
      local dropped
      for _ = 1, 1000000 do
        local line = reader:read('l')
        assert(line, 'orch stopped writing before the warning')
        dropped = line:match('stdout was not read fast enough: (%d+) lines')
        if dropped then
          break
        end
      end
      assert.is_true(tonumber(dropped) > 0, 'a count of dropped lines')
    end)
end)
