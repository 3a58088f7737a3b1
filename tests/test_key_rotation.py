"""`manage.py rotate_encryption_key` on PostgreSQL: every encrypted value moves under the new key, a user's edit made
during the rotation is never overwritten, an interrupted rotation continues, and the old key is only declared
droppable when the new key alone reads everything."""

import re
import threading
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction

from families.models import FamilyIdentity
from families.tests.factories import register_family
from randomization.models import AllocationEntry, ListSegment
from randomization.tests.factories import allocation_list_for
from trial.management.commands import rotate_encryption_key
from trial.management.commands.rotate_encryption_key import encrypted_tables

pytestmark = pytest.mark.postgres

NEW_KEY = Fernet.generate_key().decode()


def rotate(**options) -> str:
    output = StringIO()
    call_command("rotate_encryption_key", stdout=output, **options)
    return output.getvalue()


def raw_ciphertexts() -> list[tuple[str, object, str, str]]:
    """Every stored ciphertext of every encrypted column, as the database holds it."""
    found = []
    with connection.cursor() as cursor:
        for table in encrypted_tables():
            name, pk, columns = table.quoted
            cursor.execute(f"SELECT {pk}, {', '.join(columns)} FROM {name}")  # noqa: S608
            for row in cursor.fetchall():
                for column, value in zip(table.columns, row[1:], strict=True):
                    if value:
                        found.append((table.label, row[0], column, value))
    return found


def history_rows() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM families_historicalfamilyidentity")
        return cursor.fetchone()[0]


@pytest.fixture
def trial_data(postgres, oei, alice, dina):
    families = [register_family(site=oei, by=alice) for _ in range(3)]
    allocation_list_for(oei, by=dina)
    return families


@pytest.fixture
def new_key_first(settings):
    old_keys = list(django_settings.ENCRYPTION_KEYS)
    settings.ENCRYPTION_KEYS = [NEW_KEY, *old_keys]
    return old_keys


def test_it_finds_every_encrypted_column_with_its_history_copies(db):
    labels = {table.label for table in encrypted_tables()}

    assert {
        "families.FamilyIdentity",
        "families.HistoricalFamilyIdentity",
        "visits.Contact",
        "visits.HistoricalContact",
        "randomization.ListSegment",
        "randomization.AllocationEntry",
    } <= labels


def test_it_re_encrypts_everything_so_that_the_new_key_alone_reads_it(trial_data, new_key_first, settings):
    before = raw_ciphertexts()
    history_before = history_rows()
    new = Fernet(NEW_KEY.encode())
    assert before and not any(_under(new, value) for *_where, value in before)

    output = rotate(batch_size=2)

    assert "families.FamilyIdentity: 2/3 rows" in output
    assert "families.FamilyIdentity: 3/3 rows" in output
    assert "the older keys may now be dropped" in output.lower()
    after = raw_ciphertexts()
    assert [where for *where, _value in after] == [where for *where, _value in before]
    assert all(_under(new, value) for *_where, value in after)
    assert history_rows() == history_before
    settings.ENCRYPTION_KEYS = [NEW_KEY]  # the old key dropped: everything still reads
    assert {identity.phone for identity in FamilyIdentity.objects.all()} == {"91234567"}
    assert {identity.contact_name for identity in FamilyIdentity.history.all()} == {"Kari Nordmann"}
    assert set(AllocationEntry.objects.values_list("sealed_arm", flat=True)) == {"control", "intervention"}
    assert all(segment.seed for segment in ListSegment.objects.all())
    rotate(verify_only=True)


def test_it_continues_where_an_interrupted_rotation_stopped(trial_data, new_key_first, monkeypatch):
    original = rotate_encryption_key.Command.rotate_batch
    calls = []

    def interrupted_on_the_second_batch(self, *args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(rotate_encryption_key.Command, "rotate_batch", interrupted_on_the_second_batch)
    with pytest.raises(KeyboardInterrupt):
        rotate(batch_size=1)
    with pytest.raises(CommandError, match="values still need an older key"):
        rotate(verify_only=True)
    monkeypatch.setattr(rotate_encryption_key.Command, "rotate_batch", original)

    output = rotate(batch_size=1)

    # The first batch was done before the interruption: now it is skipped, and the rest is re-encrypted.
    first_table = encrypted_tables()[0].label
    assert re.search(rf"^{first_table}: 1/\d+ rows, 0 values re-encrypted, [1-9]\d* already", output, re.M)
    assert re.search(rf"^{first_table}: 2/\d+ rows, [1-9]\d* values re-encrypted", output, re.M)
    assert "the older keys may now be dropped" in output.lower()


def test_it_refuses_to_declare_old_keys_droppable_while_a_value_is_under_an_unknown_key(trial_data, new_key_first):
    identity = FamilyIdentity.objects.get(family=trial_data[0])
    lost_key = Fernet(Fernet.generate_key())
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE families_familyidentity SET phone = %s WHERE id = %s",
            [lost_key.encrypt(b"40000000").decode(), identity.pk],
        )

    with pytest.raises(CommandError, match="1 values decrypt with no key of ENCRYPTION_KEYS") as refused:
        rotate()

    assert "Do not drop the older keys" in str(refused.value)


def test_it_keeps_an_edit_a_user_saves_while_the_rotation_holds_the_old_ciphertext(
    transactional_db, trial_data, new_key_first, monkeypatch
):
    identity = trial_data[0].identity
    original = rotate_encryption_key.Command.rotate_batch
    edited = threading.Event()

    def a_user_edits_between_the_read_and_the_write(self, table, rows, *args):
        if table.label == "families.FamilyIdentity" and not edited.is_set():
            # Another connection (a web worker, already under the new key) saves a new phone number after the
            # rotation has read the batch and before it writes it back.
            thread = threading.Thread(target=_save_phone, args=(identity.pk, "98765432"))
            thread.start()
            thread.join(timeout=30)
            edited.set()
        return original(self, table, rows, *args)

    monkeypatch.setattr(rotate_encryption_key.Command, "rotate_batch", a_user_edits_between_the_read_and_the_write)

    output = rotate(batch_size=10)

    assert edited.is_set()
    assert "changed by a user meanwhile" in output
    assert FamilyIdentity.objects.get(pk=identity.pk).phone == "98765432"
    assert FamilyIdentity.objects.get(family=trial_data[1]).phone == "91234567"


def test_it_is_for_postgresql_and_says_so(db, monkeypatch):
    monkeypatch.setattr(connection, "vendor", "sqlite")

    with pytest.raises(CommandError, match="rotate_encryption_key is for PostgreSQL"):
        rotate()


def _save_phone(pk: int, phone: str) -> None:
    try:
        identity = FamilyIdentity.objects.get(pk=pk)
        identity.phone = phone
        identity.save()
    finally:
        connection.close()


def _under(key: Fernet, value: str) -> bool:
    return rotate_encryption_key.is_under(key, value)


def test_the_immutable_tables_still_refuse_every_change_but_a_rotation_of_their_ciphertext(trial_data):
    entry = AllocationEntry.objects.order_by("pk").first()
    assert entry is not None
    new_ciphertext = Fernet(Fernet.generate_key()).encrypt(b"control").decode()

    def update(sql: str, params: list, *, rotating: bool) -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            if rotating:
                cursor.execute("SET LOCAL trial.encryption_key_rotation = 'on'")
            cursor.execute(sql, params)

    with pytest.raises(IntegrityError, match="cannot be changed"):
        update(
            "UPDATE randomization_allocationentry SET sealed_arm = %s WHERE id = %s",
            [new_ciphertext, entry.pk],
            rotating=False,
        )
    with pytest.raises(IntegrityError, match="cannot be changed"):
        update(
            "UPDATE randomization_allocationentry SET sealed_arm = %s, position = position + 100 WHERE id = %s",
            [new_ciphertext, entry.pk],
            rotating=True,
        )
    with pytest.raises(IntegrityError, match="cannot be changed"):
        update("DELETE FROM randomization_allocationentry WHERE id = %s", [entry.pk], rotating=True)
    update(
        "UPDATE randomization_allocationentry SET sealed_arm = %s WHERE id = %s",
        [new_ciphertext, entry.pk],
        rotating=True,
    )
