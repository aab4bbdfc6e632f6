#!/usr/bin/env bash
# Starts the main job from nothing: installs dependencies, starts PostgreSQL, Redis, Kafka and a
# 3-member etcd on loopback (deploy/local), builds Verdict, then the live demo (deploy/demo/live):
# 3 Verdict nodes over etcd, a transfer workload and a dashboard refreshed every second. Keys:
# k kills the leader, p pauses it past its lease, t hands leadership over, r restarts what was
# killed, q stops and prints the final audit. Without a terminal, or with --script, it kills
# the leader 3 times and exits 0 only if the audit holds. Node logs: .local/demo/cluster/logs.
#
#   ./start.sh            the live 3-node demo
#   ./start.sh --script   the scripted run (CI)
#   ./start.sh --single   one node on 127.0.0.1:7400 in the foreground; Ctrl-C stops it
#
# deploy/demo/crash-demo.sh is the crash-recovery demo; `deploy/local/local.sh down` stops the
# services.
set -euo pipefail
cd "$(dirname "$0")"
mode=live
live_args=()
for arg in "$@"; do
  case "$arg" in
    --single) mode=single ;;
    --script) live_args+=(--script) ;;
    *)
      echo "usage: ./start.sh [--single | --script]" >&2
      exit 2
      ;;
  esac
done
scripts/setup-node.sh
deploy/local/local.sh up
npm run -s build
deploy/demo/make-config.sh .local/demo
# The demo's accounts table (verdict_a, verdict_b) and Kafka topic demo-events, if absent.
npx tsx deploy/demo/setup.ts
if [ "$mode" = single ]; then
  echo "tokens (also in .local/demo/tokens.txt):"
  cat .local/demo/tokens.txt
  echo "try: curl -s -H \"Authorization: Bearer <client token>\" -X POST http://127.0.0.1:${VERDICT_DEMO_PORT:-7400}/v1/transactions -H 'content-type: application/json' -d '{}'"
  exec node dist/coordinator/cli/main.js start --config .local/demo/verdict.yaml
fi
# Where deploy/local's services listen (etcd's endpoints among them), for the nodes' configs.
set -a
# shellcheck disable=SC1091
. .local/services.env
set +a
exec npx tsx deploy/demo/live/main.ts "${live_args[@]}"
