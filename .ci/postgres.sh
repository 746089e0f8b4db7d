# PostgreSQL for the tests: a throwaway server on 127.0.0.1, for the store
# suite's PostgreSQL run (FERRY_TEST_POSTGRES). Sourced by .ci/run and by
# .ci/with-postgres; bash only.
#
#   start_postgres   initdb into a temporary directory (as the postgres user
#                    when run as root: initdb refuses root), start it on a
#                    free port, create the database ferry_test and export
#                    FERRY_TEST_POSTGRES=postgres://postgres@127.0.0.1:PORT/ferry_test
#   stop_postgres    stop it and remove its directory

PG_BIN="${PG_BIN:-/usr/lib/postgresql/15/bin}"
pg_dir=

pg_as() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_postgres() {
  if [ ! -x "$PG_BIN/initdb" ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 >/dev/null
  fi
  pg_dir=$(mktemp -d)
  chmod 755 "$pg_dir"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$pg_dir"; fi
  pg_as "$PG_BIN/initdb" -D "$pg_dir/data" -A trust -U postgres --locale=C.UTF-8 -E UTF8 >"$pg_dir/initdb.log" 2>&1 ||
    { echo "initdb failed:"; cat "$pg_dir/initdb.log"; return 1; }
  local port
  for _ in $(seq 20); do
    port=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue # taken
    if pg_as "$PG_BIN/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w -t 60 \
      -o "-p $port -k $pg_dir -c listen_addresses=127.0.0.1" start >/dev/null; then
      "$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres ferry_test
      export FERRY_TEST_POSTGRES="postgres://postgres@127.0.0.1:$port/ferry_test?sslmode=disable"
      echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
      return 0
    fi
  done
  echo "PostgreSQL did not start:"; cat "$pg_dir/server.log"; return 1
}

stop_postgres() {
  [ -n "$pg_dir" ] || return 0
  pg_as "$PG_BIN/pg_ctl" -D "$pg_dir/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$pg_dir"
  pg_dir=
}
