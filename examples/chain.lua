--- A oneshot and a daemon chain: `prepare` writes a small site, `web` serves it once `prepare`
-- exited 0, and the `content` health check fetches the home page once `web` is ready.
-- Run: orch run examples/chain.lua [PORT] [SITE_DIR]
--   (defaults: 8124 and $TMPDIR/orch-example-site)
-- Startup is dependency-driven: `web` is spawned the instant `prepare` exits 0; shutdown goes in
-- reverse (content, then web; prepare has already finished).
local orch = require 'orch'
local Daemons, healthCheck = orch.Daemons, orch.healthCheck

local args = { ... }

return orch.setupMain(function(ctx)
  local a = ctx.args or args
  local port = tonumber(a[1]) or 8124
  local site = a[2] or ((os.getenv('TMPDIR') or '/tmp') .. '/orch-example-site')
  local url = ('http://127.0.0.1:%d/'):format(port)
  return Daemons.of{ effects = ctx.effects }
    :addOneshot('prepare', {
      exec = {
        command = 'mkdir -p "$SITE" && echo "<h1>hello from orch</h1>" > "$SITE/index.html"',
        env = { SITE = site },
      },
      requires = {},
    })
    :addDaemon('web', {
      exec = {
        command = { 'python3', '-m', 'http.server', tostring(port), '--bind', '127.0.0.1',
          '--directory', site },
        sigtermTimeout = 5000,
      },
      ready = {
        display = 'Web server',
        fn = function()
          return healthCheck.checkPortListening(port, {
            successMessage = 'listening on ' .. port,
            errorMessage = 'not listening yet',
          })
        end,
      },
      requires = { 'prepare' },
    })
    :addHealthCheck('content', {
      ready = {
        display = 'Home page',
        fn = function()
          return healthCheck.checkWebUrl(url, {
            expectStatus = 200,
            successMessage = 'home page served',
            errorMessage = 'home page missing',
          })
        end,
      },
      requires = { 'web' },
    })
end)
