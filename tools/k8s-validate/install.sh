#!/bin/sh
# The Kubernetes schema validator of the export specs (npm kubernetes-models, from the committed
# package-lock.json), installed into tools/k8s-validate/node_modules once. Nothing is fetched by
# the tests themselves; without npm the specs that need it are pending, with the reason.
set -u
dir=$(dirname "$0")
[ -f "$dir/node_modules/kubernetes-models/package.json" ] && exit 0
if ! command -v npm >/dev/null 2>&1; then
  echo "orch: npm is missing: the Kubernetes validator of the export specs is not installed" >&2
  exit 0
fi
cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2
