#!/usr/bin/env bash
# Installs what the test suite needs when it is missing: PostgreSQL server
# binaries, PgBouncer, stripe-mock, staticcheck and Chromium. Safe to run again; does
# nothing when all are present.
set -euo pipefail

have_pg() {
  command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}

apt_install() {
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: need root to apt-get install $*; install them, or run as root" >&2
    return 1
  fi
  if [ -z "${APT_UPDATED:-}" ]; then
    apt-get update -qq >/dev/null
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! have_pg; then
  echo "install-deps: installing postgresql" >&2
  apt_install postgresql
fi

# The replica and fault tests also run through PgBouncer in transaction
# mode (Debian's package: 1.18 on bookworm). The package enables a system
# service; the tests start their own pgbouncer and need no service.
if ! command -v pgbouncer >/dev/null 2>&1 && [ ! -x /usr/sbin/pgbouncer ]; then
  echo "install-deps: installing pgbouncer" >&2
  apt_install pgbouncer
fi

gobin="$(go env GOPATH)/bin"
if ! command -v stripe-mock >/dev/null 2>&1 && [ ! -x "$gobin/stripe-mock" ]; then
  echo "install-deps: installing stripe-mock" >&2
  go install github.com/stripe/stripe-mock@v0.203.0
fi

if ! command -v staticcheck >/dev/null 2>&1 && [ ! -x "$gobin/staticcheck" ]; then
  echo "install-deps: installing staticcheck" >&2
  go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
fi

if ! command -v chromium >/dev/null 2>&1; then
  echo "install-deps: installing chromium" >&2
  apt_install chromium || echo "install-deps: chromium could not be installed; the browser test will say so" >&2
fi
