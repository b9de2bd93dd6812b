#!/bin/sh
# Install the Debian packages orch needs, only when something is missing.
# As root: `apt-get update` once, then `apt-get install -y`. Otherwise print the command.
set -u
missing=""
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
    missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "orch: missing Debian packages:$missing" >&2
  echo "orch: run: sudo apt-get update && sudo apt-get install -y$missing" >&2
  exit 1
fi
echo "orch: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2 || exit 1
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >&2
