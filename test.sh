#!/usr/bin/env bash
# Runs the whole test suite from nothing: installs dependencies, starts the real services
# (deploy/local), lints and type-checks, builds, then runs each suite under a time budget
# that is enforced here, so a hang fails fast with a clear message.
#
#   ./test.sh                 everything
#   ./test.sh unit crash      only the named suites (unit, deploy, integration, security, outage,
#                             crash, chaos, fuzz, cluster, browser)
#
# A suite named (or in the default list) with no test file in test/<suite>/ fails the run at
# once, before anything is installed or started: a suite is never skipped silently.
# Services this script started are stopped at the end; services already running are left running.
set -uo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
started=$(date +%s)

# suite name → budget in seconds (whole suite) and whether its files may run concurrently.
declare -A budget=([unit]=300 [deploy]=600 [integration]=900 [security]=600 [outage]=600 [crash]=1200 [chaos]=900 [fuzz]=420 [cluster]=600 [browser]=600)
declare -A concurrency=([unit]=2 [deploy]=1 [integration]=1 [security]=1 [outage]=1 [crash]=1 [chaos]=1 [fuzz]=1 [cluster]=1 [browser]=1)
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(unit deploy integration security outage crash chaos fuzz cluster browser)

declare -A suite_files=()
empty=()
for suite in "${suites[@]}"; do
  if [ -z "${budget[$suite]+set}" ]; then
    echo "!! unknown suite '$suite' (known: ${!budget[*]})" >&2
    exit 2
  fi
  suite_files[$suite]=$(find "test/$suite" -name '*.test.ts' 2>/dev/null | sort)
  [ -n "${suite_files[$suite]}" ] || empty+=("$suite")
done
if [ ${#empty[@]} -gt 0 ]; then
  for suite in "${empty[@]}"; do echo "!! suite '$suite' has no test files (test/$suite/**/*.test.ts)" >&2; done
  exit 1
fi

scripts/setup-node.sh || exit 1
# The browser suite drives Debian's chromium (never a downloaded browser): installed here, once.
for suite in "${suites[@]}"; do
  [ "$suite" != browser ] || scripts/setup-browser.sh || exit 1
done

# Which services were up before, so that we stop only what we started.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
declare -A port=([postgres]=${VERDICT_PG_PORT:-55432} [redis]=${VERDICT_REDIS_PORT:-56379} [kafka]=${VERDICT_KAFKA_PORT:-59092} [etcd]=${VERDICT_ETCD_CLIENT_PORT_1:-52379})
ours=()
for s in postgres redis kafka etcd; do port_open "${port[$s]}" || ours+=("$s"); done
stop_ours() { [ ${#ours[@]} -eq 0 ] || deploy/local/local.sh down "${ours[@]}"; }
trap stop_ours EXIT

deploy/local/local.sh up || exit 1
set -a
# shellcheck disable=SC1091
. .local/services.env
set +a

echo "== lint and type-check"
npx tsc -p tsconfig.json --noEmit || exit 1
npx eslint . || exit 1
npx prettier --check . >/dev/null || { npx prettier --check . ; exit 1; }
echo "== build"
npm run -s build || exit 1

mkdir -p .local/test-logs
pass=0 fail=0 failed_suites=()
for suite in "${suites[@]}"; do
  mapfile -t files <<<"${suite_files[$suite]}"
  echo "== $suite: ${#files[@]} files, budget ${budget[$suite]}s"
  out=".local/test-logs/$suite.log"
  timeout --kill-after=15 "${budget[$suite]}" node --import tsx --test --test-reporter=spec \
    --test-concurrency="${concurrency[$suite]}" --test-timeout=300000 "${files[@]}" 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "!! suite '$suite' exceeded its budget of ${budget[$suite]}s and was stopped (log: $out)"
  fi
  p=$(grep -aE '^ℹ pass [0-9]+' "$out" | tail -n1 | awk '{print $3}')
  f=$(grep -aE '^ℹ fail [0-9]+' "$out" | tail -n1 | awk '{print $3}')
  pass=$((pass + ${p:-0}))
  fail=$((fail + ${f:-0}))
  if [ "$rc" -ne 0 ]; then
    failed_suites+=("$suite")
    [ "${f:-0}" -gt 0 ] || fail=$((fail + 1))
  fi
done

echo "== done in $(($(date +%s) - started))s"
[ ${#failed_suites[@]} -eq 0 ] || echo "failed suites: ${failed_suites[*]}"
echo "tests: $pass passed, $fail failed"
[ ${#failed_suites[@]} -eq 0 ]
