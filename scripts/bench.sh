#!/usr/bin/env bash
# `make bench`: the benchmark table (see bench/run.py). BENCH_FAMILIES and BENCH_REQUESTS scale it; BENCH_PARTNERS,
# BENCH_VISIT_FAMILIES and BENCH_CONTACTS size the Family Partner pages' data (200, 1,000 and 500,000 by default).
# Then the load and soak tables against a production stack (bench/load.py, ~20 minutes): BENCH_LOAD_USERS,
# BENCH_LOAD_SECONDS and BENCH_SOAK_SECONDS shorten it, BENCH_LOAD=0 leaves it out.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python bench/run.py
if [ "${BENCH_LOAD:-1}" != "0" ]; then
    .venv/bin/python bench/load.py
fi
