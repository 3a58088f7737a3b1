#!/usr/bin/env bash
# `make bench`: the benchmark table (see bench/run.py). BENCH_FAMILIES and BENCH_REQUESTS scale it.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python bench/run.py
