# etcd for deploy/local (sourced by local.sh): a 3-member cluster on loopback that replicates
# the decision log (docs/etcd.md). Debian ships etcd 3.4, so etcd 3.6 is built from Go modules
# once per machine and cached outside .local (the cache survives `local.sh reset`).
VERDICT_ETCD_VERSION="${VERDICT_ETCD_VERSION:-3.6.16}"
VERDICT_ETCD_CACHE="${VERDICT_ETCD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/verdict/etcd-v$VERDICT_ETCD_VERSION}"
ETCD_BIN="$VERDICT_ETCD_CACHE/bin/etcd"
ETCDCTL_BIN="$VERDICT_ETCD_CACHE/bin/etcdctl"
ETCD_DIR="$VERDICT_LOCAL_DIR/etcd"
ETCD_MEMBERS=(1 2 3)

# Client and peer port of member N (1..3).
etcd_client_port() {
  local var="VERDICT_ETCD_CLIENT_PORT_$1"
  echo "${!var}"
}
etcd_peer_port() {
  local var="VERDICT_ETCD_PEER_PORT_$1"
  echo "${!var}"
}

etcd_endpoints() {
  local n out=()
  for n in "${ETCD_MEMBERS[@]}"; do out+=("127.0.0.1:$(etcd_client_port "$n")"); done
  (
    IFS=,
    echo "${out[*]}"
  )
}

etcd_initial_cluster() {
  local n out=()
  for n in "${ETCD_MEMBERS[@]}"; do out+=("verdict-etcd-$n=http://127.0.0.1:$(etcd_peer_port "$n")"); done
  (
    IFS=,
    echo "${out[*]}"
  )
}

# etcd_build: compile etcd and etcdctl once. `go install ...@version` refuses modules with replace
# directives, so a throwaway module requires them and `go build` compiles them (about 5 minutes
# on 2 cores). The binaries move into place only when both built (no half-filled cache).
etcd_build() {
  [ -x "$ETCD_BIN" ] && [ -x "$ETCDCTL_BIN" ] && return 0
  command -v go >/dev/null || die "building etcd $VERDICT_ETCD_VERSION needs Go (https://go.dev/dl)"
  local work
  work=$(mktemp -d)
  mkdir -p "$VERDICT_ETCD_CACHE"
  log "building etcd $VERDICT_ETCD_VERSION into $VERDICT_ETCD_CACHE (once per machine, ~5 minutes; log $VERDICT_ETCD_CACHE/build.log)"
  cat >"$work/tools.go" <<GO
//go:build tools

package tools

import (
	_ "go.etcd.io/etcd/etcdctl/v3"
	_ "go.etcd.io/etcd/server/v3"
)
GO
  (
    cd "$work" &&
      go mod init verdict-etcd-build &&
      go get "go.etcd.io/etcd/server/v3@v$VERDICT_ETCD_VERSION" "go.etcd.io/etcd/etcdctl/v3@v$VERDICT_ETCD_VERSION" &&
      go build -o bin/etcd go.etcd.io/etcd/server/v3 &&
      go build -o bin/etcdctl go.etcd.io/etcd/etcdctl/v3
  ) >"$VERDICT_ETCD_CACHE/build.log" 2>&1 || {
    tail -n 20 "$VERDICT_ETCD_CACHE/build.log" >&2
    rm -rf "$work"
    die "building etcd failed; see $VERDICT_ETCD_CACHE/build.log"
  }
  mkdir -p "$VERDICT_ETCD_CACHE/bin"
  mv "$work/bin/etcdctl" "$ETCDCTL_BIN"
  mv "$work/bin/etcd" "$ETCD_BIN"
  rm -rf "$work"
}

etcd_member_dir() { echo "$ETCD_DIR/member-$1"; }
etcd_member_pid() { echo "$ETCD_DIR/member-$1.pid"; }
etcd_member_log() { echo "$ETCD_DIR/member-$1.log"; }

# etcd_member_alive N: the pid file names a live (not zombie) etcd of THIS member: tests kill
# members with SIGKILL, and a recycled pid must not pass for a running member.
etcd_member_alive() {
  local pidfile pid state
  pidfile=$(etcd_member_pid "$1")
  pid_alive "$pidfile" || return 1
  pid=$(cat "$pidfile")
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ "$state" != Z ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "--data-dir $(etcd_member_dir "$1") "
}

# etcd_member_start N: start member N unless it runs. fsync stays on (etcd's default; there is
# no flag that turns it off but --unsafe-no-fsync, never used here).
etcd_member_start() {
  local n=$1 pidfile
  pidfile=$(etcd_member_pid "$n")
  etcd_member_alive "$n" && return 0
  local port
  for port in "$(etcd_client_port "$n")" "$(etcd_peer_port "$n")"; do
    port_open "$port" && die "port $port (etcd member $n) is taken by another process"
  done
  mkdir -p "$(etcd_member_dir "$n")"
  log "starting etcd member $n on 127.0.0.1:$(etcd_client_port "$n") (peer $(etcd_peer_port "$n"))"
  # setsid: a member outlives the process group that started it (a test runner under
  # `timeout` signals its whole group), so only `down` or a test's deliberate kill stops it.
  setsid nohup "$ETCD_BIN" \
    --name "verdict-etcd-$n" \
    --data-dir "$(etcd_member_dir "$n")" \
    --listen-client-urls "http://127.0.0.1:$(etcd_client_port "$n")" \
    --advertise-client-urls "http://127.0.0.1:$(etcd_client_port "$n")" \
    --listen-peer-urls "http://127.0.0.1:$(etcd_peer_port "$n")" \
    --initial-advertise-peer-urls "http://127.0.0.1:$(etcd_peer_port "$n")" \
    --initial-cluster "$(etcd_initial_cluster)" \
    --initial-cluster-token "verdict-local-etcd" \
    --initial-cluster-state new \
    --heartbeat-interval "$VERDICT_ETCD_HEARTBEAT_MS" \
    --election-timeout "$VERDICT_ETCD_ELECTION_TIMEOUT_MS" \
    --auto-compaction-mode revision \
    --auto-compaction-retention "$VERDICT_ETCD_COMPACTION_RETENTION" \
    --quota-backend-bytes "$VERDICT_ETCD_QUOTA_BYTES" \
    --log-level warn \
    >>"$(etcd_member_log "$n")" 2>&1 </dev/null &
  echo $! >"$pidfile"
}

etcd_member_stop() {
  local n=$1
  if etcd_member_alive "$n"; then
    log "stopping etcd member $n"
    stop_pid "etcd member $n" "$(etcd_member_pid "$n")"
  fi
  rm -f "$(etcd_member_pid "$n")"
}

etcd_healthy() { "$ETCDCTL_BIN" --endpoints="$(etcd_endpoints)" --command-timeout=2s endpoint health >/dev/null 2>&1; }

etcd_up() {
  etcd_build
  mkdir -p "$ETCD_DIR"
  local n
  # All three start together: a fresh member waits for a quorum of its peers.
  for n in "${ETCD_MEMBERS[@]}"; do etcd_member_start "$n"; done
  wait_until 60 etcd "$(etcd_member_log 1)" etcd_healthy
}

etcd_down() {
  local n
  for n in "${ETCD_MEMBERS[@]}"; do etcd_member_stop "$n"; done
}

etcd_status() {
  local n running=0
  for n in "${ETCD_MEMBERS[@]}"; do etcd_member_alive "$n" && running=$((running + 1)); done
  if [ "$running" -gt 0 ] && [ -x "$ETCDCTL_BIN" ] && etcd_healthy; then
    log "etcd      up    $(etcd_endpoints)  ($running/3 members; quota $VERDICT_ETCD_QUOTA_BYTES bytes; data $ETCD_DIR)"
  elif [ "$running" -gt 0 ]; then
    log "etcd      degraded  $running/3 members running, not all healthy; logs $ETCD_DIR/member-N.log"
  else
    log "etcd      down"
  fi
}

# Deletes the cluster's data; the compiled binaries stay cached in $VERDICT_ETCD_CACHE.
etcd_reset() { rm -rf "$ETCD_DIR"; }
