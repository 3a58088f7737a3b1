#!/usr/bin/env bash
# `make bench`: the benchmark table (see bench/run.py). BENCH_FAMILIES and BENCH_REQUESTS scale it; BENCH_PARTNERS,
# BENCH_VISIT_FAMILIES and BENCH_CONTACTS size the Family Partner pages' data (200, 1,000 and 500,000 by default).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python bench/run.py
