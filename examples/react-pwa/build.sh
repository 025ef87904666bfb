#!/usr/bin/env bash
# Build this example the way an adopter would: from the package as `npm pack`
# ships it (vendor/vantage-live.tgz), never from the repo's sources.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$here/../.."

(cd "$repo" && npm run build --silent)
rm -rf "$here/vendor" "$here/node_modules/vantage-live"
mkdir -p "$here/vendor"
(cd "$repo" && npm pack --silent --pack-destination "$here/vendor" >/dev/null)
mv "$here"/vendor/vantage-live-*.tgz "$here/vendor/vantage-live.tgz"

cd "$here"
# No lockfile: the tarball changes with every pack, and the example should install as a fresh adopter's app would.
npm install --no-audit --no-fund --no-package-lock
npm run build
