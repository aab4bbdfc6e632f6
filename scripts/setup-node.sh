#!/usr/bin/env bash
# Installs the Node dependencies when package-lock.json changed since the last install (idempotent).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v node >/dev/null || { echo "node is required (20.19 or newer)" >&2; exit 1; }
stamp=node_modules/.verdict-lock-sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  # `npm install` honours the lock file's exact versions; `npm ci` (npm 11) wrongly reports the
  # lock file out of sync over optional platform packages of a lint dependency.
  echo "[setup] npm install" >&2
  npm install --no-audit --no-fund --loglevel=error >&2
  sha256sum package-lock.json | cut -d' ' -f1 >"$stamp"
fi
