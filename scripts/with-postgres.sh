#!/usr/bin/env bash
# Runs a command with COBBLE_TEST_PG_URL pointing at a PostgreSQL where databases can be created.
#
# Uses $COBBLE_TEST_PG_URL (or a postgres:// $DATABASE_URL) when set; otherwise starts a
# throwaway cluster in a temp dir from the local server binaries (installing Debian's
# postgresql package when they are missing), and removes it when the command ends.
#   scripts/with-postgres.sh cargo bench -p cobble-store --bench nonce
set -euo pipefail

log() { printf '[with-postgres] %s\n' "$*" >&2; }

find_pg_bin() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
  done
  command -v initdb >/dev/null 2>&1 && dirname "$(command -v initdb)" && return 0
  return 1
}

if [ -z "${COBBLE_TEST_PG_URL:-}" ] && [[ "${DATABASE_URL:-}" == postgres* ]]; then
  export COBBLE_TEST_PG_URL="$DATABASE_URL"
fi

if [ -z "${COBBLE_TEST_PG_URL:-}" ]; then
  if ! PGBIN=$(find_pg_bin); then
    log "PostgreSQL server binaries not found; installing Debian's postgresql package"
    if [ "$(id -u)" -ne 0 ]; then log "not root: install postgresql yourself or set COBBLE_TEST_PG_URL"; exit 1; fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
    PGBIN=$(find_pg_bin)
  fi
  PGTMP=$(mktemp -d /tmp/cobble-pg.XXXXXX)
  chmod 755 "$PGTMP"
  # initdb refuses to run as root: run the cluster as the postgres user.
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir "$PGTMP" --shell /usr/sbin/nologin postgres
    chown postgres "$PGTMP"
    as_pg() { runuser -u postgres -- "$@"; }
  else
    as_pg() { "$@"; }
  fi
  PGPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  stop_pg() {
    as_pg "$PGBIN/pg_ctl" -D "$PGTMP/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$PGTMP"
  }
  trap stop_pg EXIT
  as_pg "$PGBIN/initdb" -D "$PGTMP/data" --auth=trust -U postgres -E UTF8 >/dev/null
  as_pg "$PGBIN/pg_ctl" -D "$PGTMP/data" -l "$PGTMP/log" -w -t 60 \
    -o "-p $PGPORT -k $PGTMP -c listen_addresses=127.0.0.1 -c max_connections=500 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_wal_size=256MB" \
    start >/dev/null
  export COBBLE_TEST_PG_URL="postgres://postgres@127.0.0.1:$PGPORT/postgres"
  log "throwaway PostgreSQL ($("$PGBIN/postgres" --version)) on 127.0.0.1:$PGPORT"
fi


"$@"
