#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster on loopback (a free port, trust authentication, a folder
# under /tmp) and prints its URL: postgres://tollgate@127.0.0.1:PORT/postgres. Installs Debian's
# postgresql when no server is found. Stop it with: pg_ctl -D "$(cat <folder>/.datadir)" stop,
# or let the machine's /tmp cleaning take it; `.ci/run` stops it at exit.
set -euo pipefail
bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
fi
dir="$(mktemp -d /tmp/tollgate-pg.XXXXXX)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
run() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; fi
run "$bin/initdb" -D "$dir/data" -U tollgate -A trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
run "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >&2 || { cat "$dir/server.log" >&2; exit 1; }
echo "$bin/pg_ctl -D $dir/data" >"$dir/stop"
echo "postgres://tollgate@127.0.0.1:$port/postgres?sslmode=disable"
echo "$dir" >&2
