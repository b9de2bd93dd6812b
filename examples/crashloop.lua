--- A crash-looping daemon: watch the restart backoff grow 0, 1, 2, 3 ... s (capped at 30 s).
-- Run: orch run examples/crashloop.lua
-- `flaky` prints a line, then exits 1 after 0.2 s; each exit is logged with its status and the
-- next spawn waits one second longer than the last. `app` requires `flaky`, so it stays
-- `waiting` ("Flaky service"): a crash-looping dependency never lets its dependents start.
local orch = require 'orch'
local Daemons, healthCheck = orch.Daemons, orch.healthCheck

return orch.setupMain(function(ctx)
  return Daemons.of{ effects = ctx.effects }
    :addDaemon('flaky', {
      exec = {
        command = 'echo "flaky: starting"; sleep 0.2; echo "flaky: giving up" >&2; exit 1',
      },
      ready = {
        display = 'Flaky service',
        fn = function()
          return healthCheck.checkPortListening(65011, {
            successMessage = 'flaky is serving',
            errorMessage = 'flaky never listens',
          })
        end,
      },
      requires = {},
    })
    :addDaemon('app', {
      exec = { command = { 'sleep', '3600' } },
      ready = {
        display = 'App',
        fn = function()
          return { result = 'success', message = 'app is up' }
        end,
      },
      requires = { 'flaky' },
    })
end)
