#!/bin/sh
# Build the example's image `web` offline and import it into a data directory:
#   a busybox root filesystem (Debian's busybox-static: one static binary, its applet links, a
#   default site, /etc/passwd with root and the unprivileged user `web`)
#   -> an OCI layout with umoci (one layer, and the image config: user, workdir, env,
#      entrypoint httpd, cmd)
#   -> orch image import, which unpacks it into DATA/images/web.
#
# Usage: ./build-image.sh [DATA]   (default: ./data; ORCH=path/to/orch, default ../../build/bin/orch)
# Needs busybox-static and umoci (make deps). Not root: the applet links are made in a
# user namespace (unshare -r) and umoci runs rootless.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
ORCH=${ORCH:-$here/../../build/bin/orch}
DATA=${1:-${DATA:-$here/data}}

busybox=""
for b in /bin/busybox /usr/bin/busybox; do
    if [ -x "$b" ] && ! ldd "$b" >/dev/null 2>&1; then busybox=$b; break; fi
done
[ -n "$busybox" ] || { echo "build-image.sh: no static busybox (apt-get install busybox-static)" >&2; exit 1; }
command -v umoci >/dev/null || { echo "build-image.sh: umoci is missing (apt-get install umoci)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/orch-example-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/bin "$root"/sbin "$root"/usr/bin "$root"/usr/sbin "$root"/etc "$root"/root \
    "$root"/home/web "$root"/tmp "$root"/proc "$root"/dev "$root"/sys "$root"/run "$root"/data \
    "$root"/usr/share/web
cp "$busybox" "$root"/bin/busybox
# the applet links, by busybox itself, chrooted (in a user namespace when not root)
if [ "$(id -u)" -eq 0 ]; then chroot=chroot; else chroot="unshare -r chroot"; fi
$chroot "$root" /bin/busybox --install -s
chmod 1777 "$root"/tmp
cat >"$root"/etc/passwd <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
web:x:1000:1000:web server:/home/web:/bin/sh
PASSWD
cat >"$root"/etc/group <<'GROUP'
root:x:0:
web:x:1000:
GROUP
# the site the init oneshot copies into a fresh volume
cat >"$root"/usr/share/web/index.html <<'HTML'
<!doctype html>
<title>orch package example</title>
<h1>Served from a subcontainer</h1>
<p>busybox httpd, in the image <code>web</code>, serving the volume <code>main</code>.</p>
HTML

layout=$work/layout
rootless=""
[ "$(id -u)" -eq 0 ] || rootless=--rootless
umoci --log=error init --layout "$layout"
umoci --log=error new --image "$layout:web"
umoci --log=error insert $rootless --no-history --image "$layout:web" "$root" /
umoci --log=error config --image "$layout:web" \
    --config.user=web --config.workingdir=/data \
    --config.env=PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    --config.entrypoint=httpd --config.entrypoint=-f --config.entrypoint=-v \
    --config.entrypoint=-h --config.entrypoint=/data/www \
    --config.cmd=-p --config.cmd=8080

"$ORCH" image rm web --data "$DATA" >/dev/null 2>&1 || true
"$ORCH" image import "$layout" web --data "$DATA"
