# PostgreSQL for deploy/local (sourced by local.sh). initdb and pg_ctl refuse to run as
# root, so the server runs as the ordinary system user verdictpg, owning its data folder.
PG_OS_USER=verdictpg
PG_DIR="$VERDICT_LOCAL_DIR/postgres"
PG_DATA="$PG_DIR/data"
PG_LOG="$PG_DIR/postgres.log"

pg_bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$d" ] && [ -x "$d/pg_ctl" ] && echo "$d"
}

pg_run() { runuser -u "$PG_OS_USER" -- "$@"; }

postgres_install() {
  pg_bindir >/dev/null || apt_install postgresql
  pg_bindir >/dev/null || die "PostgreSQL binaries not found after install (looked in /usr/lib/postgresql/*/bin)"
  id -u "$PG_OS_USER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_OS_USER"
}

postgres_init() {
  local bin=$1
  [ -f "$PG_DATA/PG_VERSION" ] && return 0
  log "initdb $PG_DATA"
  mkdir -p "$PG_DIR"
  chown "$PG_OS_USER" "$PG_DIR"
  local pwfile="$PG_DIR/.pw"
  printf '%s\n' "$VERDICT_PG_PASSWORD" >"$pwfile"
  chown "$PG_OS_USER" "$pwfile"
  pg_run "$bin/initdb" -D "$PG_DATA" -U "$PG_OS_USER" --auth-local=trust --auth-host=scram-sha-256 \
    -E UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1 || die "initdb failed, see $PG_DIR/initdb.log"
  rm -f "$pwfile"
  # Two-phase commit needs max_prepared_transactions > 0 (the default is 0); fsync stays on.
  cat >>"$PG_DATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $VERDICT_PG_PORT
unix_socket_directories = '$PG_DIR'
max_connections = 300
max_prepared_transactions = 300
fsync = on
synchronous_commit = on
shared_buffers = 128MB
CONF
}

# Roles (docs/security.md): verdict is Verdict's bookkeeping role (owns the databases and
# Verdict's schema); verdict_stmt runs client statements (the default statement role) and
# verdict_stmt_2 serves a second principal. Neither statement role is a member of verdict.
PG_STATEMENT_ROLES=(verdict_stmt verdict_stmt_2)

postgres_bootstrap() {
  local bin=$1
  local psql=("$bin/psql" -h "$PG_DIR" -p "$VERDICT_PG_PORT" -U "$PG_OS_USER" -v ON_ERROR_STOP=1 -qAt)
  if [ "$(pg_run "${psql[@]}" -d postgres -c "select 1 from pg_roles where rolname='verdict'")" != 1 ]; then
    log "creating role verdict and databases verdict, verdict_a, verdict_b"
    pg_run "${psql[@]}" -d postgres -c "create role verdict login password '$VERDICT_PG_PASSWORD' createdb"
  fi
  # Verdict's default schema is also named verdict: with the default search_path ("$user",
  # public) the role's unqualified CREATE TABLE would land in Verdict's own schema.
  pg_run "${psql[@]}" -d postgres -c "alter role verdict set search_path = public"
  local db role
  for role in "${PG_STATEMENT_ROLES[@]}"; do
    if [ "$(pg_run "${psql[@]}" -d postgres -c "select 1 from pg_roles where rolname='$role'")" != 1 ]; then
      log "creating statement role $role"
      pg_run "${psql[@]}" -d postgres -c "create role $role login password '$VERDICT_PG_PASSWORD'"
    fi
    # Idempotent on an existing data folder: no superuser, no membership in verdict.
    pg_run "${psql[@]}" -d postgres -c "set client_min_messages = error" \
      -c "alter role $role nosuperuser nocreatedb nocreaterole nobypassrls" \
      -c "revoke verdict from $role"
  done
  # Verdict (not a superuser) ends a statement session of a cancelled prepare through the
  # statement role's own pool, so it needs no pg_signal_backend.
  for db in verdict verdict_a verdict_b; do
    if [ "$(pg_run "${psql[@]}" -d postgres -c "select 1 from pg_database where datname='$db'")" != 1 ]; then
      pg_run "${psql[@]}" -d postgres -c "create database $db owner verdict"
    fi
    postgres_grant_business "$db"
  done
  # Other principals' gids: pg_prepared_xacts lists every database's prepared transactions,
  # so PUBLIC loses it in every database that accepts connections (and template1, for new
  # ones). A view's functions are checked against the caller, hence both grants.
  for db in $(pg_run "${psql[@]}" -d postgres -c "select datname from pg_database where datallowconn"); do
    pg_run "${psql[@]}" -d "$db" \
      -c "revoke all on pg_catalog.pg_prepared_xacts from public" \
      -c "revoke execute on function pg_catalog.pg_prepared_xact() from public" \
      -c "grant select on pg_catalog.pg_prepared_xacts to verdict" \
      -c "grant execute on function pg_catalog.pg_prepared_xact() to verdict"
  done
}

# postgres_grant_business DB: the default statement role gets the business tables of the
# demo and tests (tables verdict creates in schema public), nothing else; verdict_stmt_2 gets
# only what a test grants it.
postgres_grant_business() { # uses the caller's psql array
  local db=$1
  pg_run "${psql[@]}" -d "$db" \
    -c "alter default privileges for role verdict in schema public grant select, insert, update, delete on tables to verdict_stmt" \
    -c "alter default privileges for role verdict in schema public grant usage, select on sequences to verdict_stmt" \
    -c "grant select, insert, update, delete on all tables in schema public to verdict_stmt" \
    -c "grant usage, select on all sequences in schema public to verdict_stmt"
}

postgres_up() {
  postgres_install
  local bin
  bin=$(pg_bindir)
  postgres_init "$bin"
  if ! pg_run "$bin/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
    log "starting PostgreSQL on 127.0.0.1:$VERDICT_PG_PORT"
    pg_run "$bin/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 start >/dev/null 2>&1 ||
      die "PostgreSQL did not start; its log is $PG_LOG"
  fi
  wait_until 60 PostgreSQL "$PG_LOG" pg_run "$bin/pg_isready" -h 127.0.0.1 -p "$VERDICT_PG_PORT"
  postgres_bootstrap "$bin"
}

postgres_down() {
  local bin
  bin=$(pg_bindir) || return 0
  [ -f "$PG_DATA/postmaster.pid" ] || return 0
  if pg_run "$bin/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
    log "stopping PostgreSQL"
    pg_run "$bin/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null 2>&1 || die "PostgreSQL did not stop; see $PG_LOG"
  fi
}

postgres_status() {
  local bin
  if bin=$(pg_bindir) && [ -d "$PG_DATA" ] && pg_run "$bin/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
    log "postgres  up    127.0.0.1:$VERDICT_PG_PORT  (databases verdict, verdict_a, verdict_b; log $PG_LOG)"
  else
    log "postgres  down"
  fi
}

postgres_reset() { rm -rf "$PG_DIR"; }
