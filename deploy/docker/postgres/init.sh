#!/usr/bin/env bash
# Runs once, when the postgres container initialises an empty data directory: the same role and
# databases as deploy/local/postgres.sh. The role verdict is not a superuser (only createdb), so
# the coordinator works with the rights a production role would have.
set -euo pipefail

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v password="$VERDICT_PG_PASSWORD" <<'SQL'
create role verdict login password :'password' createdb;
create database verdict owner verdict;
create database verdict_a owner verdict;
create database verdict_b owner verdict;
SQL
