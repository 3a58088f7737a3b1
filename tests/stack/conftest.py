"""Fixtures of the production-stack tests: the trial running as in production (tests/stack/harness.py), once for
all the stack tests (package scope), with the demo trial loaded.

Tests that break the stack (stop PostgreSQL, kill a worker) must leave it healthy again: `stack` checks /healthz
before every test that uses it and restarts what a previous test left stopped.
"""

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import require
from tests.stack.harness import ProductionStack, postgres_bin, wait_until

# Kept on failure for the logs, like test-results/ (CI prints where).
STACK_DIRECTORY_ENV = "TRIAL_STACK_DIR"


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/stack/" in str(item.fspath):
            item.add_marker(pytest.mark.stack)


def require_stack_programs() -> None:
    require(shutil.which("redis-server") is not None, "needs redis-server (apt-get install redis-server)")
    try:
        postgres_bin()
    except Exception as error:
        require(False, str(error))


# Package scope: started at the first stack test, stopped after the last, so that its processes do not run beside
# the rest of the suite.
@pytest.fixture(scope="package")
def production_stack() -> Iterator[ProductionStack]:
    """The stack itself, started once; use `stack`, which also makes sure it is healthy."""
    require_stack_programs()
    with running_stack(stack_directory("trial-stack-")) as stack:
        yield stack


def stack_directory(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix, dir=os.environ.get(STACK_DIRECTORY_ENV)))


@contextmanager
def running_stack(directory: Path, **options) -> Iterator[ProductionStack]:
    """A stack started in `directory` with the demo loaded, stopped at the end (its logs kept)."""
    stack = ProductionStack(directory, **options)
    try:
        stack.start()
        stack.load_demo()
        yield stack
    finally:
        stack.stop()
        print(f"\nThe production stack's logs: {stack.logs}")


@pytest.fixture
def stack(production_stack: ProductionStack) -> ProductionStack:
    """The running stack, healthy: what an earlier test stopped is started again."""
    restore(production_stack)
    return production_stack


def restore(stack: ProductionStack) -> None:
    assert stack.postgres is not None and stack.redis is not None
    if not stack.postgres.running():
        stack.postgres.start()
    if not stack.redis.answers():
        stack.redis.start()
    for process, start in (
        (stack.web, stack.start_web),
        (stack.worker, stack.start_worker),
        (stack.beat, stack.start_beat),
    ):
        if process is None or not process.alive():
            start()
    wait_until(stack.healthz_answers, what="the stack to be healthy again")
