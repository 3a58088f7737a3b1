"""Fixtures every app's tests share: the sites, and users alice, bob, carol, ... in each role."""

import importlib
import os
import subprocess
import sys

import pytest
from django.db import connection
from hypothesis import settings as hypothesis_settings

from trial.models import TrialSettings
from trial.roles import Role
from trial.tests.factories import PASSWORD, SiteFactory, UserFactory

IN_CI = os.environ.get("CI", "").lower() == "true"


def require(condition: bool, reason: str) -> None:
    """Skip when a service this test needs is missing; in CI, fail instead: nothing may be skipped there."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI must run this test, but: {reason}")
    pytest.skip(reason)


def pytest_addoption(parser):
    parser.addoption(
        "--busy-cpus",
        action="store_true",
        help="keep every CPU busy with spinning processes while the tests run (make test runs the race tests so)",
    )


def pytest_collection_modifyitems(config, items):
    # A race test makes threads with connections of their own race on PostgreSQL: it needs the postgres fixture and
    # committed data (transactional_db). Marked here, so that a new race test is never left out of the busy run.
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "postgres" in fixtures and "transactional_db" in fixtures:
            item.add_marker(pytest.mark.race)


# The spinning processes of --busy-cpus, for tests/test_busy_cpus.py to see.
BUSY_CPU_PROCESSES: list[subprocess.Popen] = []


@pytest.fixture(scope="session", autouse=True)
def _busy_cpus(request):
    """With --busy-cpus, one process per CPU spins for the whole run: the race tests must hold however the
    scheduler interleaves their threads on a machine with no idle core (as CI's 2 cores are when busy)."""
    if not request.config.getoption("--busy-cpus"):
        yield
        return
    for _cpu in range(len(os.sched_getaffinity(0))):
        BUSY_CPU_PROCESSES.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
    try:
        yield
    finally:
        for process in BUSY_CPU_PROCESSES:
            process.kill()
        for process in BUSY_CPU_PROCESSES:
            process.wait()
        BUSY_CPU_PROCESSES.clear()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The rows the migrations seed (the sites, the settings and their starting values), also in a test database
    kept with --reuse-db after a transactional test emptied it: `make mutation` runs hundreds of sessions on one
    database, and a race test in one would otherwise leave the next without its sites."""
    from django.apps import apps

    seeded = importlib.import_module("trial.migrations.0002_seed_sites_and_settings")
    starting_values = importlib.import_module("trial.migrations.0006_trial_settings_starting_values")
    with django_db_blocker.unblock():
        seeded.seed(apps, None)
        starting_values.record_starting_values(apps, None)


@pytest.fixture
def postgres(db):
    require(connection.vendor == "postgresql", "needs PostgreSQL (set DATABASE_URL)")


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture
def oei(db):
    return SiteFactory(code="OEI")


@pytest.fixture
def lar(db):
    return SiteFactory(code="LAR")


@pytest.fixture
def trial_settings(db):
    return TrialSettings.current()


@pytest.fixture
def alice(oei):
    """A researcher at Øvre Eiker."""
    return UserFactory(username="alice", roles=[Role.RESEARCHER], sites=[oei])


@pytest.fixture
def bob(lar):
    """A researcher at Larvik (another site than alice's)."""
    return UserFactory(username="bob", roles=[Role.RESEARCHER], sites=[lar])


@pytest.fixture
def carol(oei):
    """A blinded outcome assessor at Øvre Eiker."""
    return UserFactory(username="carol", roles=[Role.OUTCOME_ASSESSOR], sites=[oei])


@pytest.fixture
def frank(oei):
    """A Family Partner at Øvre Eiker."""
    return UserFactory(username="frank", roles=[Role.FAMILY_PARTNER], sites=[oei])


@pytest.fixture
def paula(db):
    """The principal investigator (all sites)."""
    return UserFactory(username="paula", roles=[Role.PRINCIPAL_INVESTIGATOR])


@pytest.fixture
def dina(db):
    """The data manager (all sites)."""
    return UserFactory(username="dina", roles=[Role.DATA_MANAGER], is_staff=True)


@pytest.fixture
def adam(db):
    """The administrator."""
    return UserFactory(username="adam", roles=[Role.ADMINISTRATOR], is_staff=True, is_superuser=True)


@pytest.fixture(autouse=True)
def _default_language():
    """LocaleMiddleware leaves the last request's language active in the thread; start every test in English."""
    from django.conf import settings
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


# Hypothesis explores new random inputs on every local run (and keeps what fails in .hypothesis/);
# in CI it replays a fixed sequence, so that a landing never depends on the luck of the draw.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if IN_CI:
    hypothesis_settings.load_profile("ci")


@pytest.fixture
def eager_celery(monkeypatch):
    """Celery runs tasks within the test (the delivery of a message after its commit), for this test only.

    Celery reads Django's settings once, when its configuration is first used, and keeps them: setting
    CELERY_TASK_ALWAYS_EAGER through pytest-django's `settings` leaked eagerness into every later test when it happened
    to be the first use (and the fault tests' real workers then never saw a message). The app's own configuration is
    changed here and restored after the test."""
    from trial.celery import app

    monkeypatch.setitem(app.conf, "task_always_eager", True)
    return app
