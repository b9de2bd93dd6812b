-- The watcher of an uncontained orch (`orch-relay --watch`, src/relay_watch.c), driven directly
-- through its pipe: at EOF it SIGKILLs the process groups still listed (not those reported
-- gone, whose number may belong to someone else by then) and the processes carrying the tag.
local R = require 'fixtures.cli.runner'

-- the relay of the build under test (ORCH_BIN: build-asan's under `make sanitize`)
local RELAY = R.ORCH:gsub('orch$', 'orch-relay')

local function alive(pid)
  return R.alive(pid)
end

describe('orch-relay --watch', function()
  local started = {}
  after_each(function()
    for _, pid in ipairs(started) do
      os.execute('kill -KILL ' .. pid .. ' 2>/dev/null')
    end
    started = {}
  end)

  it('kills the listed groups and the tagged processes at EOF, and nothing else', function()
    local tag = 'ORCH_WATCH_SPEC=t' .. math.random(100000, 999999)
    -- three process groups (setsid in a shell without job control execs in place, so $! leads
    -- its own group), one reported gone again; two tagged processes, one with another tag
    local script = ([[
setsid sleep 4261 & A=$!
setsid sleep 4262 & B=$!
setsid sleep 4263 & C=$!
env %s.1 sleep 4264 & T=$!
env %sx.1 sleep 4265 & U=$!
for p in $A $B $C; do
  while [ "$(ps -o pgid= -p $p | tr -d ' ')" != "$p" ]; do sleep 0.01; done
done
echo "$A $B $C $T $U" >"$1"
{ echo "+$A"; echo "+$B"; echo "-$B"; echo "t %s."; echo "+$C"; echo "bogus"; } | %s --watch
]]):format(tag, tag, tag, R.quote(RELAY))
    local dir = R.tmpdir()
    -- without libasan in LD_PRELOAD (make sanitize): ps deadlocks at start with it
    os.execute(('%ssh -c %s sh %s >/dev/null 2>&1'):format(R.NO_PRELOAD, R.quote(script),
      R.quote(dir .. '/pids')))
    local out = R.read_file(dir .. '/pids') or ''
    R.cleanup(dir)
    local pids = {}
    for n in out:gmatch('%d+') do
      pids[#pids + 1] = tonumber(n)
    end
    assert.equals(5, #pids, out)
    for _, pid in ipairs(pids) do
      started[#started + 1] = pid
    end
    local a, b, c, t, u = table.unpack(pids)
    R.wait_until(function()
      return not alive(a) and not alive(c) and not alive(t)
    end, 2000, 'the listed groups and the tagged process to be killed')
    assert.is_true(alive(b), 'a group reported gone is left alone')
    assert.is_true(alive(u), 'a process with another tag is left alone')
  end)
end)
