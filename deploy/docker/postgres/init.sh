#!/usr/bin/env bash
# Runs once, when the postgres container initialises an empty data directory: the same roles and
# databases as deploy/local/postgres.sh. The role verdict (Verdict's bookkeeping role) is not a
# superuser (only createdb); verdict_stmt runs client statements and is not a member of it
# (docs/security.md). Other principals' gids in pg_prepared_xacts are hidden from PUBLIC.
set -euo pipefail

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v password="$VERDICT_PG_PASSWORD" -v stmt_password="$VERDICT_PG_STMT_PASSWORD" <<'SQL'
create role verdict login password :'password' createdb;
alter role verdict set search_path = public;
create role verdict_stmt login password :'stmt_password';
create database verdict owner verdict;
create database verdict_a owner verdict;
create database verdict_b owner verdict;
SQL
for db in verdict verdict_a verdict_b; do
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$db" <<'SQL'
revoke all on pg_catalog.pg_prepared_xacts from public;
revoke execute on function pg_catalog.pg_prepared_xact() from public;
grant select on pg_catalog.pg_prepared_xacts to verdict;
grant execute on function pg_catalog.pg_prepared_xact() to verdict;
alter default privileges for role verdict in schema public
  grant select, insert, update, delete on tables to verdict_stmt;
alter default privileges for role verdict in schema public
  grant usage, select on sequences to verdict_stmt;
SQL
done
