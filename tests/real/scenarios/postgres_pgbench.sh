#!/bin/sh
# PostgreSQL under pgbench: initdb, start, `pgbench -i` (scale 1), then 4 clients running
# TPC-B-like transactions concurrently, a fixed number each, stop. Each step as the postgres
# user through runuser, as postgres_session.sh does.
# Usage: postgres_pgbench.sh BINDIR WORKDIR [TRANSACTIONS [all|prepare|run]]   (WORKDIR owned
# by postgres; the server listens only on the unix socket WORKDIR/.s.PGSQL.5432, no TCP).
# prepare: initdb, start, pgbench -i, stop; run: start, the clients, stop; all: both in one.
set -eu
bin=$1 work=$2 transactions=${3:-200} mode=${4:-all}
as_postgres() { runuser -u postgres -- "$@"; }
start() {
  # -w: pg_ctl returns once the server accepts connections. The server's settings are initdb's.
  as_postgres "$bin/pg_ctl" -D "$work/data" -o "-k $work -c listen_addresses=" -l "$work/server.log" -w start >/dev/null
}
if [ "$mode" != run ]; then
  as_postgres "$bin/initdb" -D "$work/data" -U postgres --auth=trust >/dev/null
  start
  as_postgres "$bin/pgbench" -h "$work" -U postgres -i -s 1 -q postgres 2>/dev/null
fi
if [ "$mode" = prepare ]; then
  as_postgres "$bin/pg_ctl" -D "$work/data" -w stop >/dev/null
  exit 0
fi
[ "$mode" = run ] && start
# -t: a fixed number of transactions per client (a deterministic length, unlike -T); 4 clients
# committing at once is what makes the backends share WAL flushes (group commit).
as_postgres "$bin/pgbench" -h "$work" -U postgres -c 4 -j 2 -t "$transactions" -n postgres >/dev/null
as_postgres "$bin/pg_ctl" -D "$work/data" -w stop >/dev/null
