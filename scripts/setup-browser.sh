#!/usr/bin/env bash
# Installs Debian's chromium for the browser tests (test/browser), once: playwright-core drives
# this system binary and never downloads a browser of its own. Idempotent: does nothing when
# the binary is there; otherwise `apt-get update` once, then the install.
set -euo pipefail
bin=${VERDICT_CHROMIUM:-/usr/bin/chromium}
[ -x "$bin" ] && exit 0
command -v apt-get >/dev/null || { echo "chromium is missing and apt-get is not available" >&2; exit 1; }
echo "[setup] apt-get install chromium" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >&2
[ -x "$bin" ] || { echo "chromium installed but $bin is missing" >&2; exit 1; }
