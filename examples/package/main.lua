-- A service packaged the way a StartOS package's main.ts is written: every process runs in a
-- subcontainer made from the package's image, its state lives in a volume, a oneshot prepares
-- the volume before the daemon starts, and a health check looks at the running service.
--
--   make -C examples/package run        (builds the image offline, then: orch run main.lua)
--   orch run --data DATA main.lua [PORT]
--
--   init-volume  oneshot       as root in the subcontainer: copies the image's default site
--                              into the volume the first time, counts boots, chowns to `web`
--   primary      daemon        the image's entrypoint (busybox httpd) as the image's user
--                              `web`, ready once its port listens
--   site         health check  a script run inside the subcontainer fetches the home page
--
-- The image `web` (build-image.sh: busybox -> OCI layout with umoci -> orch image import)
-- gives the user, the working directory, PATH and the command. The volume `main` is
-- DATA/volumes/main on the host and /data in the subcontainer: it survives restarts and
-- re-runs (the boot count goes up), while whatever the daemon writes elsewhere goes to the
-- subcontainer's own copy-on-write layer and is gone when orch stops.
local sdk = require 'orch'

return sdk.setupMain(function(ctx)
  local effects = ctx.effects
  local port = math.tointeger(tonumber(ctx.args[1] or os.getenv('PORT') or '8080'))

  -- The mounts of the subcontainer: the volume `main` at /data, read-write.
  local mounts = sdk.Mounts.of()
    :mountVolume({ volumeId = 'main', subpath = nil, mountpoint = '/data', readonly = false })

  -- One subcontainer for the image, shared by the oneshot, the daemon and the health check;
  -- lazy: it starts with the first entry that runs in it, and orch destroys it after the last
  -- one stopped.
  local web = sdk.SubContainer.of(effects, { imageId = 'web' }, mounts, 'web')

  return sdk.Daemons.of({ effects = effects })
    :addOneshot('init-volume', {
      subcontainer = web,
      exec = {
        command = { 'sh', '-c', [[
          set -e
          mkdir -p /data/www
          if [ ! -e /data/www/index.html ]; then
            cp /usr/share/web/index.html /data/www/index.html
            echo "volume initialised"
          fi
          boots=$(( $(cat /data/boots 2>/dev/null || echo 0) + 1 ))
          echo "$boots" > /data/boots
          printf '%s\n' "$boots" > /data/www/boots.txt
          chown -R web:web /data
          echo "boot $boots"
        ]] },
        user = 'root', -- the image's user is `web`; preparing the volume needs root
      },
      requires = {},
    })
    :addDaemon('primary', {
      subcontainer = web,
      exec = {
        -- the image's entrypoint (httpd -f -v -h /data/www) with our port instead of its cmd
        command = sdk.useEntrypoint({ '-p', tostring(port) }),
        sigtermTimeout = 5000,
      },
      ready = {
        display = 'Web interface',
        fn = function()
          return sdk.healthCheck.checkPortListening(effects, port, {
            successMessage = ('listening on port %d'):format(port),
            errorMessage = ('not listening on port %d yet'):format(port),
          })
        end,
      },
      requires = { 'init-volume' },
    })
    :addHealthCheck('site', {
      ready = {
        display = 'Home page',
        fn = function()
          -- runs inside the subcontainer: its wget, the daemon seen on the shared network
          return sdk.healthCheck.runHealthScript(
            { 'sh', '-c', ('wget -q -O - http://127.0.0.1:%d/ | grep -q "from a subcontainer"')
              :format(port) },
            web,
            { errorMessage = 'the home page is not served', message = function()
              return 'the home page is served'
            end })
        end,
      },
      requires = { 'primary' },
    })
end)
