#!/usr/bin/env bash
# Start a PostgreSQL server for the tests: 127.0.0.1:5432, role and database
# `abacus` (password `abacus`), i.e.
#   DATABASE_URL=postgres://abacus:abacus@127.0.0.1:5432/abacus
#
# Idempotent; meant for a Debian machine, run as root. Prints nothing unless
# something fails. Installs the `postgresql` package only when it is missing
# and keeps its own cluster under /tmp (owned by the `postgres` user), so it
# never touches the packaged cluster's data. When something else already
# listens on 5432 (for instance the packaged `main` cluster that apt started),
# that server is reused through its Unix socket instead.
set -euo pipefail

PORT=5432
BASE=/tmp/abacus-pg
DATA="$BASE/data"
LOG="$BASE/server.log"

# Run a command quietly; show its output only if it fails.
quiet() {
    local out
    if ! out=$("$@" 2>&1); then
        printf '%s\n' "$out" >&2
        echo "postgres.sh: failed: $*" >&2
        return 1
    fi
}

pg_bindir() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [ -n "$dir" ] && [ -x "$dir/initdb" ] && printf '%s\n' "$dir"
}

if ! BIN=$(pg_bindir) || ! id postgres >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    quiet apt-get update -q
    quiet apt-get install -y -q postgresql
    BIN=$(pg_bindir) || { echo "postgres.sh: no PostgreSQL binaries after install" >&2; exit 1; }
fi

as_pg() { runuser -u postgres -- "$@"; }

ours_running() { [ -f "$DATA/PG_VERSION" ] && as_pg "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

if ours_running; then
    SOCKDIR="$BASE"
elif "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" >/dev/null 2>&1; then
    # Another server (typically the packaged cluster) owns the port: reuse it.
    SOCKDIR=/var/run/postgresql
    if [ ! -S "$SOCKDIR/.s.PGSQL.$PORT" ]; then
        echo "postgres.sh: port $PORT is taken by a server without a socket in $SOCKDIR" >&2
        exit 1
    fi
else
    mkdir -p "$BASE"
    chown postgres:postgres "$BASE"
    chmod 700 "$BASE"
    if [ ! -f "$DATA/PG_VERSION" ]; then
        rm -rf "$DATA"
        quiet as_pg "$BIN/initdb" -D "$DATA" -U postgres -E UTF8 --locale=C.UTF-8 \
            --auth-local=peer --auth-host=scram-sha-256
        cat >>"$DATA/postgresql.conf" <<EOF
# added by .ci/postgres.sh
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$BASE'
max_connections = 200
EOF
    fi
    quiet as_pg "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start
    SOCKDIR="$BASE"
fi

psql_admin() {
    as_pg "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCKDIR" -p "$PORT" -d postgres "$@"
}

quiet psql_admin -c "DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'abacus') THEN
    CREATE ROLE abacus LOGIN PASSWORD 'abacus';
  ELSE
    ALTER ROLE abacus LOGIN PASSWORD 'abacus';
  END IF;
END \$\$;"

if [ "$(psql_admin -tA -c "SELECT 1 FROM pg_database WHERE datname = 'abacus'")" != 1 ]; then
    quiet psql_admin -c "CREATE DATABASE abacus OWNER abacus"
fi

# The packaged cluster's pg_hba.conf may not allow password logins over TCP
# for every role; check that the test URL really works.
if ! PGPASSWORD=abacus "$BIN/psql" -X -q -h 127.0.0.1 -p "$PORT" -U abacus -d abacus \
    -tA -c 'SELECT 1' >/dev/null 2>&1; then
    echo "postgres.sh: cannot log in as abacus@127.0.0.1:$PORT/abacus" >&2
    exit 1
fi
