#!/usr/bin/env bash
# deploy/local: real PostgreSQL, Redis and Kafka on loopback, without Docker.
#
#   deploy/local/local.sh up [postgres|redis|kafka|etcd ...]  install what is missing, start, wait until ready
#   deploy/local/local.sh down [service ...]              stop (no process is left behind)
#   deploy/local/local.sh status                          what runs, and where
#   deploy/local/local.sh reset                           down, then delete all local data
#   deploy/local/local.sh env                             print the connection settings as shell exports
#
# etcd (a 3-member cluster, docs/etcd.md) is built from source once per machine; its binaries are
# cached in $VERDICT_ETCD_CACHE (default ~/.cache/verdict/etcd-v<version>), which `reset` keeps.
# All data lives under $VERDICT_LOCAL_DIR (default: <project>/.local, git-ignored).
# Ports are configurable through the environment; the defaults avoid the standard ones.
set -euo pipefail

LOCAL_SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROJECT_DIR="$(cd "$LOCAL_SCRIPT_DIR/../.." && pwd)"
export VERDICT_LOCAL_DIR="${VERDICT_LOCAL_DIR:-$PROJECT_DIR/.local}"
export VERDICT_PG_PORT="${VERDICT_PG_PORT:-55432}"
export VERDICT_REDIS_PORT="${VERDICT_REDIS_PORT:-56379}"
export VERDICT_KAFKA_PORT="${VERDICT_KAFKA_PORT:-59092}"
export VERDICT_KAFKA_CONTROLLER_PORT="${VERDICT_KAFKA_CONTROLLER_PORT:-59093}"
export VERDICT_ETCD_CLIENT_PORT_1="${VERDICT_ETCD_CLIENT_PORT_1:-52379}"
export VERDICT_ETCD_CLIENT_PORT_2="${VERDICT_ETCD_CLIENT_PORT_2:-52389}"
export VERDICT_ETCD_CLIENT_PORT_3="${VERDICT_ETCD_CLIENT_PORT_3:-52399}"
export VERDICT_ETCD_PEER_PORT_1="${VERDICT_ETCD_PEER_PORT_1:-52380}"
export VERDICT_ETCD_PEER_PORT_2="${VERDICT_ETCD_PEER_PORT_2:-52390}"
export VERDICT_ETCD_PEER_PORT_3="${VERDICT_ETCD_PEER_PORT_3:-52400}"
export VERDICT_ETCD_HEARTBEAT_MS="${VERDICT_ETCD_HEARTBEAT_MS:-100}"
export VERDICT_ETCD_ELECTION_TIMEOUT_MS="${VERDICT_ETCD_ELECTION_TIMEOUT_MS:-1000}"
# Revisions of history kept by auto-compaction, and the backend quota (NOSPACE above it).
export VERDICT_ETCD_COMPACTION_RETENTION="${VERDICT_ETCD_COMPACTION_RETENTION:-10000}"
export VERDICT_ETCD_QUOTA_BYTES="${VERDICT_ETCD_QUOTA_BYTES:-2147483648}"
# A loopback-only development password; production deployments configure their own.
export VERDICT_PG_PASSWORD="${VERDICT_PG_PASSWORD:-verdict-local-only}"

log() { printf '[local] %s\n' "$*" >&2; }
die() {
  printf '[local] ERROR: %s\n' "$*" >&2
  exit 1
}

# apt-get update runs at most once per invocation, and only when something is missing.
APT_UPDATED=0
apt_install() {
  local missing=()
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "packages ${missing[*]} are missing and installing them needs root"
  if [ "$APT_UPDATED" -eq 0 ]; then
    log "apt-get update"
    apt-get update -qq >"$VERDICT_LOCAL_DIR/apt.log" 2>&1 || die "apt-get update failed, see $VERDICT_LOCAL_DIR/apt.log"
    APT_UPDATED=1
  fi
  log "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >>"$VERDICT_LOCAL_DIR/apt.log" 2>&1 || die "apt-get install ${missing[*]} failed, see $VERDICT_LOCAL_DIR/apt.log"
}

# port_open PORT: true when something accepts TCP connections on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_until SECONDS NAME LOGFILE COMMAND...: poll COMMAND until it succeeds or time runs out.
wait_until() {
  local seconds=$1 name=$2 logfile=$3
  shift 3
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge "$deadline" ]; then
      log "last lines of $logfile:"
      tail -n 20 "$logfile" >&2 2>/dev/null || true
      die "$name did not become ready within ${seconds}s; its log is $logfile"
    fi
    sleep 0.2
  done
}

# pid_alive PIDFILE: true when the pid in PIDFILE is a running process.
pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# stop_pid NAME PIDFILE: TERM, wait up to 30 s, then KILL; never leaves the process behind.
stop_pid() {
  local name=$1 pidfile=$2 pid i
  pid_alive "$pidfile" || {
    rm -f "$pidfile"
    return 0
  }
  pid=$(cat "$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 150); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name did not stop on TERM, killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

# shellcheck source=deploy/local/postgres.sh
. "$LOCAL_SCRIPT_DIR/postgres.sh"
# shellcheck source=deploy/local/redis.sh
. "$LOCAL_SCRIPT_DIR/redis.sh"
# shellcheck source=deploy/local/kafka.sh
. "$LOCAL_SCRIPT_DIR/kafka.sh"
# shellcheck source=deploy/local/etcd.sh
. "$LOCAL_SCRIPT_DIR/etcd.sh"

ALL_SERVICES=(postgres redis kafka etcd)

print_env() {
  cat <<EOF
export VERDICT_PG_URL_A='postgres://verdict:$VERDICT_PG_PASSWORD@127.0.0.1:$VERDICT_PG_PORT/verdict_a'
export VERDICT_PG_URL_B='postgres://verdict:$VERDICT_PG_PASSWORD@127.0.0.1:$VERDICT_PG_PORT/verdict_b'
export VERDICT_PG_ADMIN_URL='postgres://verdict:$VERDICT_PG_PASSWORD@127.0.0.1:$VERDICT_PG_PORT/postgres'
export VERDICT_PG_STATEMENT_USER='verdict_stmt'
export VERDICT_PG_STATEMENT_USER_2='verdict_stmt_2'
export VERDICT_REDIS_URL='redis://127.0.0.1:$VERDICT_REDIS_PORT'
export VERDICT_KAFKA_BROKERS='127.0.0.1:$VERDICT_KAFKA_PORT'
export VERDICT_ETCD_ENDPOINTS='$(etcd_endpoints)'
EOF
}

main() {
  local cmd=${1:-status}
  shift || true
  local services=("$@")
  [ ${#services[@]} -gt 0 ] || services=("${ALL_SERVICES[@]}")
  mkdir -p "$VERDICT_LOCAL_DIR"
  local s
  case "$cmd" in
    up)
      for s in "${services[@]}"; do "${s}_up"; done
      for s in "${services[@]}"; do "${s}_status"; done
      print_env >"$VERDICT_LOCAL_DIR/services.env"
      log "connection settings: $VERDICT_LOCAL_DIR/services.env"
      ;;
    down)
      for s in "${services[@]}"; do "${s}_down"; done
      ;;
    status)
      for s in "${services[@]}"; do "${s}_status"; done
      ;;
    reset)
      for s in "${services[@]}"; do "${s}_down"; done
      for s in "${services[@]}"; do "${s}_reset"; done
      ;;
    env)
      print_env
      ;;
    *)
      die "unknown command '$cmd' (use up, down, status, reset or env)"
      ;;
  esac
}

main "$@"
