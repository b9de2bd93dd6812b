#!/bin/sh
# make deb: build the Debian package (debian/) out of the source tree. The files the package
# is built from are copied to OUT/src, dpkg-buildpackage runs there, and the .deb (with its
# .buildinfo, .changes and -dbgsym) lands in OUT; nothing is written into the source tree.
# Usage: tools/deb.sh [OUT]   (default: build/deb). Prints the path of the .deb.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/build/deb}
mkdir -p "$out"
out=$(cd "$out" && pwd)
version=$(dpkg-parsechangelog -l "$root/debian/changelog" -S Version)
arch=$(dpkg --print-architecture)
src=$out/src/orch-$version
rm -rf "$out/src" "$out"/orch_* "$out"/orch-dbgsym_*
mkdir -p "$src"
# Only what the package is built from (no spec/, bench/, build directories).
tar -C "$root" -cf - CMakeLists.txt README.md src lua man completions systemd packaging debian \
  tools/luac.lua |
  tar -C "$src" -xf -
if ! (cd "$src" && DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:-parallel=$(nproc)}" \
  dpkg-buildpackage -us -uc -b) >"$out/build.log" 2>&1; then
  tail -n 40 "$out/build.log" >&2
  echo "orch: dpkg-buildpackage failed; the whole log is $out/build.log" >&2
  exit 1
fi
for f in "$out"/src/*; do
  [ -f "$f" ] && mv "$f" "$out"/
done
rm -rf "$out/src"
echo "$out/orch_${version}_${arch}.deb"
