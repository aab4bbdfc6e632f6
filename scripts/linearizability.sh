#!/usr/bin/env bash
# Builds the per-transaction linearizability checker (scripts/linearizability/, Porcupine at the
# version go.mod and go.sum pin) once per machine and source version, into
# ~/.cache/verdict/linearizability-<hash>/, and prints the binary's path. The hash covers the
# checker's sources, so a change rebuilds it and a stale binary is never used.
set -euo pipefail
src="$(cd "$(dirname "$0")/linearizability" && pwd)"
command -v go >/dev/null || {
  echo "the linearizability checker needs Go (https://go.dev/dl)" >&2
  exit 1
}
hash=$(cat "$src"/go.mod "$src"/go.sum "$src"/*.go | sha256sum | cut -c1-16)
cache="${VERDICT_CHECKER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/verdict/linearizability-$hash}"
bin="$cache/verdict-linearizability"
if [ ! -x "$bin" ]; then
  mkdir -p "$cache"
  # Build beside the target, then rename: a concurrent caller never runs half a binary.
  (cd "$src" && GOFLAGS=-mod=readonly go build -o "$bin.tmp.$$" .) >"$cache/build.log" 2>&1 || {
    cat "$cache/build.log" >&2
    exit 1
  }
  mv "$bin.tmp.$$" "$bin"
fi
echo "$bin"
