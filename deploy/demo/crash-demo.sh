#!/usr/bin/env bash
# The crash-recovery demo (deploy/demo/crash-demo.ts): makes sure the services run and dist/ is built, as start.sh does, then runs it. Exit 0 when every check holds.
set -euo pipefail; cd "$(dirname "$0")/../.."; scripts/setup-node.sh; deploy/local/local.sh up >/dev/null; npm run -s build; exec npx tsx deploy/demo/crash-demo.ts "$@"
