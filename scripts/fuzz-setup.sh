#!/usr/bin/env bash
# Installs the API fuzzer (Schemathesis, pinned) into a Python virtual environment under
# .local/fuzz-venv (idempotent: an existing venv with the pinned version is reused as is).
# Prints the path of the `st` executable on stdout; progress goes to stderr.
# Used by test/fuzz (docs/fuzz.md).
set -euo pipefail
cd "$(dirname "$0")/.."
version=4.32.5
venv=.local/fuzz-venv
st="$venv/bin/st"
installed() { "$venv/bin/python" -m pip show schemathesis 2>/dev/null | sed -n 's/^Version: //p'; }
command -v python3 >/dev/null || { echo "python3 (3.10 or newer) is required" >&2; exit 1; }
if [ ! -x "$venv/bin/python" ]; then
  echo "[fuzz-setup] creating $venv" >&2
  python3 -m venv "$venv"
fi
if [ "$(installed)" != "$version" ] || [ ! -x "$st" ]; then
  echo "[fuzz-setup] installing schemathesis $version" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis==$version" >&2
fi
[ "$(installed)" = "$version" ] || { echo "schemathesis $version did not install" >&2; exit 1; }
echo "$(pwd)/$st"
