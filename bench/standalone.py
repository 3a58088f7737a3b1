"""One benchmark of `make bench` on its own (`python bench/<name>.py`): a fresh database for it."""

import os


def fresh_database(what: str) -> None:
    """Recreate the benchmark database (BENCH_DATABASE_URL, else run.py's), migrate it and set Django up; `what`
    names the benchmark in the refusal when the database is not PostgreSQL."""
    from bench import run  # sets the settings module and the test environment (a fixed encryption key)

    url = run._database_url()
    if not url.startswith("postgresql"):
        raise SystemExit(f"{what} needs PostgreSQL.")
    run._recreate_database(url)
    os.environ["DATABASE_URL"] = url
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
