#!/usr/bin/env bash
# Installs tuf-js, the independent TUF implementation flotilla's cross-check
# tests run against (tests/metadata/tuf_interop_test.cpp), into
# tests/metadata/interop/node_modules, exactly as package-lock.json pins it.
# Needs Node.js >= 20.17 and npm (installed from Debian's packages when
# absent) and the npm registry. Idempotent: does nothing when the installed
# tree already matches the lock file.
set -euo pipefail
cd "$(dirname "$0")/../tests/metadata/interop"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "setup-tuf-js: installing nodejs and npm"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends nodejs npm
fi

# Every package the lock file pins, installed at its pinned version: nothing to do.
if node -e '
  const lock = require("./package-lock.json").packages;
  for (const [dir, pkg] of Object.entries(lock)) {
    if (dir && require("./" + dir + "/package.json").version !== pkg.version) process.exit(1);
  }' 2>/dev/null; then
  echo "setup-tuf-js: tuf-js already installed"
  exit 0
fi
echo "setup-tuf-js: npm ci in $(pwd)"
npm ci --no-audit --no-fund --loglevel=error
