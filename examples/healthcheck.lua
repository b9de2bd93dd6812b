--- Health checks only: no process is supervised, the chain just watches the host.
-- Run: orch run examples/healthcheck.lua
-- `root-fs` reads `df -P /` and fails above 95 % use: first after 200 ms (statusTrigger uses
-- its `starting` interval while the entry is starting), then every 10 s, or every 2 s while
-- failing. `tmp-writable` creates and removes a file in /tmp with runHealthScript on the default
-- trigger. Both report `success` within a second.
local orch = require 'orch'
local Daemons, healthCheck, trigger = orch.Daemons, orch.healthCheck, orch.trigger

local LIMIT = 95

return orch.setupMain(function(ctx)
  return Daemons.of{ effects = ctx.effects }
    :addHealthCheck('root-fs', {
      ready = {
        display = 'Root filesystem',
        fn = function()
          local r = assert(orch.exec({ 'df', '-P', '/' }, { timeout = 5000 }))
          local used = tonumber(r.stdout:match('(%d+)%%'))
          if r.exitCode ~= 0 or not used then
            return { result = 'failure', message = 'df failed: ' .. r.stderr }
          end
          local msg = ('root filesystem %d%% used'):format(used)
          return { result = used < LIMIT and 'success' or 'failure', message = msg }
        end,
        trigger = trigger.statusTrigger(10000, { starting = 200, failure = 2000 }),
      },
      requires = {},
    })
    :addHealthCheck('tmp-writable', {
      ready = {
        display = 'Temporary directory',
        fn = function()
          return healthCheck.runHealthScript({ 'sh', '-c', 't=$(mktemp) && rm -f "$t"' }, {
            timeout = 5000,
            errorMessage = '/tmp is not writable',
            message = function()
              return '/tmp is writable'
            end,
          })
        end,
      },
      requires = {},
    })
end)
