#!/usr/bin/env bash
# Builds the manifest validator (this Go module, versions pinned in go.mod and go.sum) once per
# machine and prints the binary's path on stdout; progress goes to stderr. The binary is cached
# under ${XDG_CACHE_HOME:-~/.cache}/verdict/k8s-validate/<hash of the sources>, so a change to
# the sources builds a new one and an unchanged tree builds nothing. Modules come from the Go
# module proxy on the first build only (about a minute on 2 cores, then seconds).
# Used by test/deploy/k8s.test.ts.
set -euo pipefail
cd "$(dirname "$0")"
command -v go >/dev/null || { echo "the manifest validator needs Go (https://go.dev/dl)" >&2; exit 1; }
hash=$(cat go.mod go.sum ./*.go | sha256sum | cut -c1-16)
cache="${XDG_CACHE_HOME:-$HOME/.cache}/verdict/k8s-validate/$hash"
bin="$cache/validate"
if [ ! -x "$bin" ]; then
  echo "[k8s-validate] building into $cache (once per machine)" >&2
  mkdir -p "$cache"
  # GOTOOLCHAIN=local: the go.mod's version is this machine's; never download a toolchain.
  GOTOOLCHAIN=local GOFLAGS=-mod=readonly go build -o "$bin.partial" . >&2
  mv "$bin.partial" "$bin"
fi
echo "$bin"
