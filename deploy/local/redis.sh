# Redis for deploy/local (sourced by local.sh). A yes vote is only as durable as Redis:
# append-only file fsynced on every write, and no eviction (eviction could drop a lock).
REDIS_DIR="$VERDICT_LOCAL_DIR/redis"
REDIS_LOG="$REDIS_DIR/redis.log"
REDIS_PID="$REDIS_DIR/redis.pid"

redis_up() {
  command -v redis-server >/dev/null || apt_install redis-server
  mkdir -p "$REDIS_DIR"
  cat >"$REDIS_DIR/redis.conf" <<CONF
bind 127.0.0.1
port $VERDICT_REDIS_PORT
dir $REDIS_DIR
daemonize yes
pidfile $REDIS_PID
logfile $REDIS_LOG
appendonly yes
appendfsync always
maxmemory-policy noeviction
save ""
CONF
  if ! pid_alive "$REDIS_PID"; then
    log "starting Redis on 127.0.0.1:$VERDICT_REDIS_PORT"
    redis-server "$REDIS_DIR/redis.conf" || die "Redis did not start; its log is $REDIS_LOG"
  fi
  wait_until 30 Redis "$REDIS_LOG" redis_ping
}

redis_ping() { [ "$(redis-cli -h 127.0.0.1 -p "$VERDICT_REDIS_PORT" ping 2>/dev/null)" = PONG ]; }

redis_down() {
  pid_alive "$REDIS_PID" && log "stopping Redis"
  stop_pid Redis "$REDIS_PID"
}

redis_status() {
  if pid_alive "$REDIS_PID" && redis_ping; then
    log "redis     up    127.0.0.1:$VERDICT_REDIS_PORT  (appendfsync always, noeviction; log $REDIS_LOG)"
  else
    log "redis     down"
  fi
}

redis_reset() { rm -rf "$REDIS_DIR"; }
