#!/usr/bin/env bash
# Redis and PostgreSQL from Debian's packages, on loopback and non-default ports, in a scratch
# directory, for the cluster tests (used by .ci/run and by hand):
#
#   eval "$(.ci/services.sh start)"      # prints the exports: TASKSYNC_TEST_REDIS_URL, ...
#   .ci/services.sh restart redis|postgres
#   .ci/services.sh stop
#
# State lives in $TASKSYNC_SERVICES_DIR (default /tmp/tasksync-services-$UID). PostgreSQL refuses
# to run as root, so as root it runs as the `postgres` user (created by the Debian package).
set -euo pipefail

DIR="${TASKSYNC_SERVICES_DIR:-/tmp/tasksync-services-$(id -u)}"
REDIS_PORT="${TASKSYNC_REDIS_PORT:-56379}"
PG_PORT="${TASKSYNC_PG_PORT:-55432}"
PG_BIN="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}"

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

exports() {
  echo "export TASKSYNC_SERVICES_DIR='$DIR'"
  echo "export TASKSYNC_TEST_REDIS_URL='redis://127.0.0.1:$REDIS_PORT/0'"
  echo "export TASKSYNC_TEST_POSTGRES_URL='postgresql://tasksync@127.0.0.1:$PG_PORT/tasksync'"
}

start_redis() {
  mkdir -p "$DIR/redis"
  # Append-only file: queued jobs survive a restart (fsync every second, as in production).
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$DIR/redis" --daemonize yes \
    --pidfile "$DIR/redis/redis.pid" --logfile "$DIR/redis/redis.log" \
    --appendonly yes --appendfsync everysec --save ""
  for _ in $(seq 100); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "services: redis did not start (see $DIR/redis/redis.log)" >&2
  return 1
}

stop_redis() {
  redis-cli -p "$REDIS_PORT" shutdown >/dev/null 2>&1 || true
  for _ in $(seq 100); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 || return 0
    sleep 0.1
  done
}

start_postgres() {
  if [ ! -f "$DIR/pg/data/PG_VERSION" ]; then
    mkdir -p "$DIR/pg"
    chmod 755 "$DIR"
    [ "$(id -u)" = 0 ] && chown postgres: "$DIR/pg"
    as_pg "$PG_BIN/initdb" -D "$DIR/pg/data" -U postgres --auth=trust -E UTF8 >/dev/null
    # A scratch server: a clean shutdown (pg_ctl -m fast) still flushes everything.
    as_pg tee -a "$DIR/pg/data/postgresql.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$DIR/pg'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
shared_buffers = 32MB
EOF
    fresh=1
  fi
  as_pg "$PG_BIN/pg_ctl" -D "$DIR/pg/data" -l "$DIR/pg/postgres.log" -w -t 60 start >/dev/null
  if [ "${fresh:-0}" = 1 ]; then
    as_pg "$PG_BIN/psql" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
      -c "CREATE ROLE tasksync LOGIN CREATEDB" -c "CREATE DATABASE tasksync OWNER tasksync"
  fi
}

stop_postgres() {
  if [ -f "$DIR/pg/data/postmaster.pid" ]; then
    as_pg "$PG_BIN/pg_ctl" -D "$DIR/pg/data" -m fast -w -t 60 stop >/dev/null || true
  fi
}

case "${1:-}" in
  start)
    start_redis >&2
    start_postgres >&2
    exports
    ;;
  stop)
    stop_redis
    stop_postgres
    rm -rf "$DIR"
    ;;
  restart)
    case "${2:-}" in
      redis) stop_redis; start_redis ;;
      postgres) stop_postgres; start_postgres ;;
      *) echo "usage: $0 restart redis|postgres" >&2; exit 2 ;;
    esac
    ;;
  env) exports ;;
  *) echo "usage: $0 start|stop|restart redis|postgres|env" >&2; exit 2 ;;
esac
