"""An upgrade as docs/deployment.md describes it, on a stack of its own: the previous release (deploy/previous-release,
its code from `git archive`) serves a fresh database with the demo; its test journey runs; this release's `migrate`
runs while the old Gunicorn keeps serving (the expand step); the previous release's journey runs again against the
old Gunicorn on the migrated database; then web, worker and beat are replaced by this release's, which serves what
both releases wrote and runs its own journey.

When no migration was added since the previous release, the test still runs: it then proves that the new code's
`migrate` and processes take over the old database without breaking anything, not that migrations are safe
(tests/test_migration_safety.py checks each new migration's operations either way).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import pytest
import requests

from tests.releases import ROOT, ReleaseError, export_release, previous_release
from tests.stack.conftest import STACK_DIRECTORY_ENV, require_stack_programs
from tests.stack.harness import ProductionStack, wait_until


@pytest.fixture(scope="module")
def previous_code(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        return export_release(previous_release(), tmp_path_factory.mktemp("previous-release"))
    except ReleaseError as error:
        pytest.fail(str(error))


def load_journey(code_root: Path) -> ModuleType:
    """The release's own tests/stack/journey.py; this release's for a release made before the journey existed."""
    path = code_root / "tests" / "stack" / "journey.py"
    if not path.exists():
        path = ROOT / "tests" / "stack" / "journey.py"
    name = f"journey_of_{code_root.name.replace('-', '_')}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@contextmanager
def users_at_work(stack: ProductionStack) -> Iterator[list[tuple[str, int]]]:
    """A signed-in researcher requesting pages and the health check until the block ends; yields the answers
    (path, status), a status 0 for a request that got no answer at all."""
    researcher = stack.login("researcher")
    answers: list[tuple[str, int]] = []
    stop = threading.Event()

    def work() -> None:
        while not stop.is_set():
            for path in ("/healthz", "/families/", "/families/OEI-001/"):
                try:
                    status = researcher.get(stack.url(path), timeout=60).status_code
                except requests.RequestException:
                    status = 0
                answers.append((path, status))

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(answers) >= 3, what="the first pages before the migration")
        yield answers
    finally:
        stop.set()
        thread.join(timeout=60)


def pending_migrations(stack: ProductionStack) -> list[str]:
    plan = stack.manage("showmigrations", "--plan", code_root=ROOT).stdout
    return [line.split("]", 1)[1].strip() for line in plan.splitlines() if line.startswith("[ ]")]


def test_the_previous_release_keeps_serving_a_database_migrated_by_this_one(previous_code: Path):
    require_stack_programs()
    old_journey = load_journey(previous_code)
    directory = Path(tempfile.mkdtemp(prefix="trial-upgrade-", dir=os.environ.get(STACK_DIRECTORY_ENV)))
    stack = ProductionStack(directory, worker_concurrency=1, code_root=previous_code)
    started = time.monotonic()

    def phase(name: str) -> None:  # how long each step took, for the budget
        print(f"{time.monotonic() - started:6.1f} s  {name}")

    try:
        stack.start()
        stack.load_demo()
        phase("the previous release started, demo loaded")
        target = old_journey.Target(stack.base_url, str(stack.cert), stack.passwords)
        before = old_journey.run(target, tag="before")
        phase("its journey ran")

        # The expand step: this release's migrate while the previous release serves.
        pending = pending_migrations(stack)
        print(f"\nMigrations this release applies to the previous release's database: {pending or 'none'}")
        with users_at_work(stack) as answers:
            seen = len(answers)
            stack.manage("migrate", "--noinput", code_root=ROOT)
            wait_until(lambda: len(answers) > seen, what="a page answered after the migration")
        assert [answer for answer in answers if answer[1] != 200] == [], "every page answered during the migration"
        assert pending_migrations(stack) == []
        phase("migrated while it served")

        # The previous release on the migrated database: what it wrote is there, its journey runs again.
        old_journey.verify(target, before)
        after = old_journey.run(target, tag="after")
        old_journey.verify(target, after)
        assert [answer for answer in target.answers if answer[2] >= 500] == []
        assert stack.server_errors() == []
        phase("its journey ran again on the migrated database")

        # Web, worker and beat replaced by this release's: it serves what the previous one wrote, and its journey.
        # The new static files first, while the old release serves (as building the new image does).
        stack.manage("collectstatic", "--noinput", "--verbosity", "0", code_root=ROOT)
        phase("this release's static files collected")
        stoppers = [
            threading.Thread(target=process.stop) for process in (stack.beat, stack.worker, stack.web) if process
        ]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join(timeout=120)
        assert not any(process and process.alive() for process in (stack.beat, stack.worker, stack.web))
        stack.code_root = ROOT
        stack.start_web()
        stack.start_worker()
        stack.start_beat()
        phase("web, worker and beat replaced")
        old_journey.verify(target, before)
        old_journey.verify(target, after)
        new_journey = load_journey(ROOT)
        new_target = new_journey.Target(stack.base_url, str(stack.cert), stack.passwords)
        new_journey.verify(new_target, new_journey.run(new_target, tag="new"))
        assert stack.server_errors() == []
        phase("the new release served both and its journey")

        # The database itself: each journey's family randomised once, its allocation kept.
        study_ids = [before.study_id, after.study_id]
        rows = stack.sql(
            "SELECT f.study_id, count(a.id) FROM families_family f "
            "LEFT JOIN randomization_allocation a ON a.family_id = f.id WHERE f.study_id = ANY(%s) "
            "GROUP BY f.study_id ORDER BY f.study_id",
            (study_ids,),
        )
        assert rows == sorted((study_id, 1) for study_id in study_ids)
    except BaseException:
        print(stack.logs_tail())
        raise
    finally:
        stack.stop()
