-- Quickstart: a small web stack from programs every Debian machine has.
--
--   orch run examples/quickstart/main.lua [PORT]      (or: make run)
--
--   content  oneshot       writes the site into a work directory, then exits
--   web      daemon        python3 -m http.server, ready once it answers HTTP (checkWebUrl)
--   warmup   oneshot       fetches the site through `web`, then marks it warm
--   site     health check  reads the warm marker: failure until warmup is done, then success
--
-- `web` waits for `content`; `warmup` and `site` wait for `web` to be ready. Watch the log:
-- `site` goes from failure to success once `warmup` has run. Press Ctrl-C once for an orderly
-- shutdown (dependents first), twice to kill everything.
local orch = require 'orch'
local healthCheck = orch.healthCheck

return orch.setupMain(function(ctx)
  local port = tonumber(ctx.args[1] or os.getenv('PORT') or '8080')
  local url = ('http://127.0.0.1:%d/'):format(port)
  -- A fresh work directory for this run.
  local work = os.tmpname()
  os.remove(work)
  local marker = work .. '/warm.txt'

  return orch.Daemons.of{ effects = ctx.effects }
    :addOneshot('content', {
      exec = {
        command = ([[
          set -e
          mkdir -p '%s'
          printf '<h1>Hello from orch</h1>\n<p>Served by python3 -m http.server.</p>\n' \
            > '%s/index.html'
          echo "site written to %s"
        ]]):format(work, work, work),
      },
      requires = {},
    })
    :addDaemon('web', {
      exec = {
        command = { 'python3', '-u', '-m', 'http.server', tostring(port),
          '--bind', '127.0.0.1', '--directory', work },
        sigtermTimeout = 5000,
      },
      ready = {
        display = 'Web server',
        fn = function()
          return healthCheck.checkWebUrl(ctx.effects, url, {
            successMessage = 'answering on ' .. url,
            errorMessage = 'not answering on ' .. url .. ' yet',
          })
        end,
      },
      requires = { 'content' },
    })
    :addOneshot('warmup', {
      exec = {
        command = ([[
          sleep 2
          python3 -c 'import urllib.request; urllib.request.urlopen("%s").read()'
          echo warm > '%s'
          echo "cache warmed"
        ]]):format(url, marker),
      },
      requires = { 'web' },
    })
    :addHealthCheck('site', {
      ready = {
        display = 'Site',
        gracePeriod = 0,
        fn = function()
          local f = io.open(marker)
          if not f then
            return { result = 'failure', message = 'cold: waiting for warmup' }
          end
          f:close()
          return { result = 'success', message = 'warm and serving ' .. url }
        end,
      },
      requires = { 'web' },
    })
end)
