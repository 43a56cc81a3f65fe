#!/bin/sh
# PostgreSQL as an administrator runs it: initdb, start, a table and three autocommit
# INSERTs through psql, stop. Each step as the postgres user through runuser (PAM, audit).
# Usage: postgres_session.sh BINDIR WORKDIR   (WORKDIR owned by postgres; the server listens
# only on the unix socket WORKDIR/.s.PGSQL.5432, no TCP).
set -eu
bin=$1 work=$2
as_postgres() { runuser -u postgres -- "$@"; }
as_postgres "$bin/initdb" -D "$work/data" -U postgres --auth=trust >/dev/null
# -w: pg_ctl returns once the server accepts connections.
as_postgres "$bin/pg_ctl" -D "$work/data" -o "-k $work -c listen_addresses=" -l "$work/server.log" -w start >/dev/null
as_postgres psql -h "$work" -U postgres -d postgres -qc "CREATE TABLE t (x int)"
for i in 1 2 3; do
  as_postgres psql -h "$work" -U postgres -d postgres -qc "INSERT INTO t VALUES ($i)"
done
as_postgres "$bin/pg_ctl" -D "$work/data" -w stop >/dev/null
