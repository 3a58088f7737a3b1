#!/usr/bin/env bash
# `make mutation`: mutation testing (mutmut, configured in setup.cfg) of the modules that protect the trial, with
# their tests; outside CI, it takes long. Prints the score per module at the end; `.venv/bin/mutmut browse` shows
# the surviving mutants. MUTATION_TIME_LIMIT (seconds, default 4 hours) stops a run that goes on too long: the
# mutants checked so far keep their results, and a second run goes on from there.
# It uses its own PostgreSQL database (MUTATION_DATABASE_URL) so that it never meets a test run's.
set -uo pipefail
cd "$(dirname "$0")/.."
export TRIAL_ENV=test
export DATABASE_URL="${MUTATION_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/familypartner_mutation}"
export TRIAL_VAR_DIR="${TRIAL_VAR_DIR:-$PWD/var}"
.venv/bin/python -m pip install --quiet -r requirements-mutation.txt
timeout "${MUTATION_TIME_LIMIT:-14400}" .venv/bin/mutmut run --max-children 1
status=$?
[ $status -eq 124 ] && echo "!! stopped after MUTATION_TIME_LIMIT seconds: the scores below count the mutants checked so far"
.venv/bin/python scripts/mutation_scores.py
exit $status
