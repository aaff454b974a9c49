#!/usr/bin/env bash
# Makes sure the real servers the tests drive can be started here. Idempotent.
#  - PostgreSQL 15 server binaries (initdb, pg_ctl): the state store's team backend.
set -euo pipefail

have_pg() {
    [ -n "${REKEY_PG_BIN:-}" ] && [ -x "$REKEY_PG_BIN/initdb" ] && return 0
    compgen -G "/usr/lib/postgresql/*/bin/initdb" > /dev/null
}

if ! have_pg; then
    if command -v apt-get > /dev/null && [ "$(id -u)" = 0 ]; then
        echo "peers: installing the PostgreSQL server (postgresql-15)" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15 > /dev/null
    else
        echo "peers: PostgreSQL server binaries not found; install postgresql-15 (or set REKEY_PG_BIN)" >&2
        exit 1
    fi
fi
# Clusters run as the `postgres` user when the tests run as root (initdb refuses root).
if [ "$(id -u)" = 0 ] && ! id postgres > /dev/null 2>&1; then
    useradd --system --home /var/lib/postgresql --shell /bin/bash postgres
fi
echo "peers: PostgreSQL server ready to start" >&2
