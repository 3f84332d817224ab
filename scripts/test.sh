#!/usr/bin/env bash
# The one test command: installs what is missing, checks formatting, vet and
# staticcheck, runs every test against a real PostgreSQL the tests start
# themselves, then stops that server.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
export PATH="$(go env GOPATH)/bin:$PATH"

stop_pg() {
  # The shared test server (internal/pgtest) outlives each package's test
  # binary so packages share it; stop it once everything has run.
  local data="${BILLINGD_PGTEST_DIR:-/tmp/billingd-pgtest}/data"
  [ -f "$data/postmaster.pid" ] || return 0
  local pgctl
  pgctl=$(command -v pg_ctl || ls /usr/lib/postgresql/*/bin/pg_ctl | sort -V | tail -n1)
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$pgctl" stop -D "$data" -m fast -w >/dev/null || true
  else
    "$pgctl" stop -D "$data" -m fast -w >/dev/null || true
  fi
}
[ -n "${TEST_DATABASE_URL:-}" ] || trap stop_pg EXIT

unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt needed on:" >&2
  echo "$unformatted" >&2
  exit 1
fi
go vet ./...
# Unused code, dubious constructs and style slips go vet does not catch;
# the version is pinned in install-deps.sh so every machine agrees.
staticcheck ./...
go test -count=1 -timeout 20m "$@" ./...
