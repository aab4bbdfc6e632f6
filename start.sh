#!/usr/bin/env bash
# Starts the main job from nothing: installs dependencies, starts PostgreSQL, Redis and Kafka
# on loopback (deploy/local), builds Verdict and runs the demo node (participants pg-a, pg-b,
# redis, kafka) in the foreground. deploy/demo/crash-demo.sh is the crash-recovery demo.
# Ctrl-C stops the node; `deploy/local/local.sh down` stops the services.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup-node.sh
deploy/local/local.sh up
npm run -s build
deploy/demo/make-config.sh .local/demo
# The demo's accounts table (verdict_a, verdict_b) and Kafka topic demo-events, if absent.
npx tsx deploy/demo/setup.ts
echo "tokens (also in .local/demo/tokens.txt):"
cat .local/demo/tokens.txt
echo "try: curl -s -H \"Authorization: Bearer <client token>\" -X POST http://127.0.0.1:${VERDICT_DEMO_PORT:-7400}/v1/transactions -H 'content-type: application/json' -d '{}'"
exec node dist/coordinator/cli/main.js start --config .local/demo/verdict.yaml
