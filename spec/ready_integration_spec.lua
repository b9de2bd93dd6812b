-- Issue 14 (readiness and stopping) end to end with real processes under the real
-- build/bin/orch: effects overlay, environment leaks, sd_notify readiness, stop signals,
-- limits and env files (tagged #integration).
local R = require 'fixtures.cli.runner'

local F = R.ROOT .. '/spec/fixtures/ready'

local session = R.session()
local start, tmpdir = session.start, session.tmpdir

describe('issue 14 readiness and stopping #integration', function()
  after_each(session.cleanup)

  it('logs the output of a chain whose effects define only setHealth, with the id prefix',
    function()
      local p = start({ 'run', F .. '/partial_effects.lua' })
      p:wait_for('talker | hello from talker', 10000, nil, true)
    end)

  it("keeps orch's NOTIFY_SOCKET and LISTEN_* from children unless exec.env sets them",
    function()
      local dir = tmpdir()
      local p = start({ 'run', F .. '/env_leak.lua' }, { env = {
        NOTIFY_SOCKET = dir .. '/nobody-listens', LISTEN_FDS = '3', LISTEN_PID = '1' } })
      p:wait_for('plain | ns=unset lf=unset lp=unset', 10000, nil, true)
      p:wait_for('own   | ns=/own/sock lf=unset lp=unset', 10000, nil, true)
    end)
end)
