--- A single daemon: a static web server whose readiness is an HTTP check.
-- Run: orch run examples/single.lua [PORT]          (default port 8123; Ctrl-C stops it)
-- The server's request log (stderr) appears as `web | ...` lines; the readiness check turns
-- the entry from `starting` to `success` within a second.
local orch = require 'orch'
local Daemons, healthCheck = orch.Daemons, orch.healthCheck

local default_port = tonumber((...)) or 8123

return orch.setupMain(function(ctx)
  local port = tonumber(ctx.args and ctx.args[1]) or default_port
  local url = ('http://127.0.0.1:%d/'):format(port)
  return Daemons.of{ effects = ctx.effects }
    :addDaemon('web', {
      exec = {
        command = { 'python3', '-m', 'http.server', tostring(port), '--bind', '127.0.0.1' },
        sigtermTimeout = 5000,
      },
      ready = {
        display = 'Web server',
        fn = function()
          return healthCheck.checkWebUrl(url, { successMessage = 'serving ' .. url })
        end,
        gracePeriod = 10000,
      },
      requires = {},
    })
end)
