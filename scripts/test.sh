#!/usr/bin/env bash
# The whole suite. Uses PostgreSQL and Redis when they can be reached (DATABASE_URL / REDIS_URL, or the
# local defaults), SQLite and the in-process broker otherwise, and says loudly what that leaves out.
# With CI=true, a test that needs PostgreSQL, Redis, a Celery worker or the browser fails instead of skipping.
#
# `make test` calls it with --with-busy-races first: after the suite, the race tests (marker `race`: threads racing on
# PostgreSQL) run a second time with every CPU kept busy by spinning processes (--busy-cpus), into their own JUnit
# report (test-results/junit-races-busy.xml), so that a race that holds only on an idle machine is caught.
set -uo pipefail
busy_races=false
if [ "${1:-}" = "--with-busy-races" ]; then
  busy_races=true
  shift
fi
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export TRIAL_ENV=test

reachable_postgres() {
  "$PY" - "$1" <<'PYEOF' 2>/dev/null
import sys, psycopg2
url = sys.argv[1].rsplit("/", 1)[0] + "/postgres"
psycopg2.connect(url, connect_timeout=2).close()
PYEOF
}
reachable_redis() {
  "$PY" - "$1" <<'PYEOF' 2>/dev/null
import sys, redis
redis.Redis.from_url(sys.argv[1], socket_connect_timeout=2).ping()
PYEOF
}

notes=()
if [ -z "${DATABASE_URL:-}" ]; then
  if reachable_postgres "postgresql://postgres@127.0.0.1:5432/familypartner"; then
    export DATABASE_URL="postgresql://postgres@127.0.0.1:5432/familypartner"
  else
    notes+=("PostgreSQL is not reachable: running on SQLite; the PostgreSQL concurrency tests are SKIPPED.")
  fi
fi
if [ -z "${REDIS_URL:-}" ]; then
  if reachable_redis "redis://127.0.0.1:6379/0"; then
    export REDIS_URL="redis://127.0.0.1:6379/0"
  else
    notes+=("Redis is not reachable: Celery uses the filesystem broker; the Redis tests are SKIPPED.")
  fi
fi
if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  notes+=("Chromium is not installed (apt-get install chromium): the browser tests are SKIPPED.")
fi

echo "================================================================"
echo " database: ${DATABASE_URL:-SQLite (var/test.sqlite3)}"
echo " broker:   ${REDIS_URL:-filesystem (no server)}"
for note in "${notes[@]}"; do echo " !! $note"; done
echo "================================================================"

"$PY" -m pytest "$@"
status=$?

if $busy_races; then
  if [ -n "${DATABASE_URL:-}" ] || [ "${CI:-}" = "true" ]; then
    echo "================================================================"
    echo " The race tests again, with every CPU kept busy"
    echo "================================================================"
    mkdir -p test-results
    "$PY" -m pytest -m race --busy-cpus -q --junitxml=test-results/junit-races-busy.xml
    race_status=$?
    [ $status -eq 0 ] && status=$race_status
  else
    notes+=("No PostgreSQL: the race tests were not run again with busy CPUs.")
  fi
fi
if [ ${#notes[@]} -gt 0 ]; then
  echo "================================================================"
  for note in "${notes[@]}"; do echo " !! $note"; done
  echo "================================================================"
fi
exit $status
