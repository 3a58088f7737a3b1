"""Migrations added since the previous release (deploy/previous-release) must be safe to run while the previous
release still serves: `migrate` is the expand step of an upgrade, run before web, worker and beat are replaced
(docs/deployment.md, "Upgrades"). So a new migration may add, never take away or rename what the old code uses,
and a column it adds or tightens must not make the old code's INSERTs fail.

Each new migration is loaded with Django's migration loader (from the files, no database) and its operations are
checked against the project's state just before it. A migration that must break the rule (the contract step of an
earlier expand, once no running release uses the column) is listed in ALLOWED with the reason.
"""

from __future__ import annotations

import pytest
from django.db import connection, models
from django.db.migrations import Migration, operations
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.operations.base import Operation
from django.db.migrations.state import ProjectState

from tests.releases import ROOT, migrations_added_since, previous_release

# (app label, migration name) -> why it is safe anyway (e.g. "contract step: 0012 stopped reading the column in
# release X, which is the previous release now"). Remove an entry once deploy/previous-release has moved past it.
ALLOWED: dict[tuple[str, str], str] = {}

# Operations that take away or rename what the old code reads and writes.
REMOVING = (
    operations.RemoveField,
    operations.RenameField,
    operations.DeleteModel,
    operations.RenameModel,
    operations.AlterModelTable,
)


def unsafe_operations(migration: Migration, state: ProjectState) -> list[str]:
    """Why each of the migration's operations would break the previous release, given the state before it."""
    problems: list[str] = []
    for operation in migration.operations:
        problems += unsafe(operation, migration.app_label, state)
        operation.state_forwards(migration.app_label, state)
    return problems


def unsafe(operation: Operation, app_label: str, state: ProjectState) -> list[str]:
    if isinstance(operation, operations.SeparateDatabaseAndState):
        problems: list[str] = []
        database_state = state.clone()
        for inner in operation.database_operations:
            problems += unsafe(inner, app_label, database_state)
            inner.state_forwards(app_label, database_state)
        return problems
    if isinstance(operation, REMOVING):
        return [f"{operation.describe()}: the previous release still uses it (remove or rename in a later release)"]
    if isinstance(operation, operations.AddField):
        field = operation.field
        if not field.many_to_many and not field.null and not has_db_default(field):
            return [
                f"{operation.describe()}: NOT NULL without a db_default, so the previous release's INSERTs fail "
                "(give it db_default=..., or null=True now and NOT NULL in a later release)"
            ]
    if isinstance(operation, operations.AlterField):
        model = state.models[app_label, operation.model_name_lower]
        old = model.fields.get(operation.name)
        new = operation.field
        if old is not None:
            if old.null and not new.null and not has_db_default(new):
                return [
                    f"{operation.describe()}: NULL to NOT NULL without a db_default, so the previous release's "
                    "INSERTs without it fail"
                ]
            if column_type(old) != column_type(new):
                return [
                    f"{operation.describe()}: the column's type changes ({column_type(old)} to {column_type(new)}) "
                    "under the previous release (add a new column instead)"
                ]
            if old.db_column != new.db_column:
                return [f"{operation.describe()}: the column is renamed under the previous release"]
    return []


def has_db_default(field: models.Field) -> bool:
    return field.db_default is not models.NOT_PROVIDED


def column_type(field: models.Field) -> str | None:
    # PostgreSQL's column type of the field, from the backend's table of types: no connection is opened.
    return field.db_type(connection)


def new_migrations() -> list[tuple[str, str]]:
    """(app label, name) of each migration file added since the previous release."""
    found = []
    for path in migrations_added_since(previous_release()):
        relative = path.relative_to(ROOT)
        found.append((relative.parts[-3], path.stem))
    return found


def test_every_migration_added_since_the_previous_release_is_safe_while_it_serves():
    loader = MigrationLoader(None, ignore_no_migrations=True)
    problems = []
    for key in new_migrations():
        assert key in loader.disk_migrations, f"{key} is not a migration Django loads"
        if key in ALLOWED:
            continue
        state = loader.project_state(key, at_end=False)
        problems += [
            f"{key[0]}.{key[1]}: {problem}" for problem in unsafe_operations(loader.get_migration(*key), state)
        ]
    assert problems == [], "unsafe while the previous release serves:\n" + "\n".join(problems)


def test_each_allowed_migration_is_new_and_says_why():
    added = set(new_migrations())
    for key, reason in ALLOWED.items():
        assert reason.strip(), f"{key} needs a reason"
        assert key in added, f"{key} is not new since the previous release any more: remove it from ALLOWED"


# --- the check itself, on migrations made for the test ------------------------------------------------------------


def migration_of(*operations_: Operation) -> Migration:
    made = type("Migration", (Migration,), {"operations": list(operations_)})
    return made("0099_made_for_the_test", "families")


@pytest.fixture(scope="module")
def current_state() -> ProjectState:
    loader = MigrationLoader(None, ignore_no_migrations=True)
    return loader.project_state()


@pytest.mark.parametrize(
    "operation",
    [
        operations.RemoveField("family", "referral_source"),
        operations.RenameField("family", "referral_source", "source"),
        operations.DeleteModel("Family"),
        operations.RenameModel("Family", "Household"),
        operations.AlterModelTable("family", "households"),
        operations.AddField("family", "priority", models.IntegerField(default=0)),
        operations.AlterField("family", "referral_source", models.TextField()),
    ],
    ids=["remove", "rename-field", "delete", "rename-model", "table", "not-null-no-db-default", "type"],
)
def test_it_refuses_what_breaks_the_previous_release(operation: Operation, current_state: ProjectState):
    problems = unsafe_operations(migration_of(operation), current_state.clone())

    assert len(problems) == 1, problems


def test_it_refuses_a_removal_hidden_in_separate_database_and_state(current_state: ProjectState):
    hidden = operations.SeparateDatabaseAndState(
        database_operations=[operations.RemoveField("family", "referral_source")]
    )

    assert len(unsafe_operations(migration_of(hidden), current_state.clone())) == 1


@pytest.mark.parametrize(
    "operation",
    [
        operations.AddField("family", "priority", models.IntegerField(null=True)),
        operations.AddField("family", "priority", models.IntegerField(default=0, db_default=0)),
        operations.CreateModel("Note", [("id", models.BigAutoField(primary_key=True))]),
        operations.AddIndex("family", models.Index(fields=["referral_date"], name="family_referral_date_idx")),
    ],
    ids=["nullable", "db-default", "new-model", "index"],
)
def test_it_allows_what_only_adds(operation: Operation, current_state: ProjectState):
    assert unsafe_operations(migration_of(operation), current_state.clone()) == []
