"""The load benchmark's settings (bench/load.py): production's own (trial.settings, read from the same environment),
with the URLs of bench/load_urls.py, which add the bare view that is the ceiling of the load table."""

from trial.settings import *  # noqa: F403

ROOT_URLCONF = "bench.load_urls"
