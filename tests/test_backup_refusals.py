"""restore_backup and verify_backup refuse before they write: a backup made under a key ENCRYPTION_KEYS lacks (it
would restore unreadable), and a target database that is not empty."""

import json

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from trial.backups import current_fingerprints, key_fingerprint

pytestmark = pytest.mark.postgres


def a_manifest(folder, fingerprints):
    (folder / "trial-20261130T000000Z.dump").write_bytes(b"PGDMP")
    manifest = folder / "trial-20261130T000000Z.json"
    manifest.write_text(
        json.dumps({"dump": "trial-20261130T000000Z.dump", "encryption_key_fingerprints": fingerprints})
    )
    return manifest


def test_a_fingerprint_is_a_short_sha256_of_the_key():
    assert key_fingerprint("abc") == "ba7816bf8f01cfea"
    assert current_fingerprints() == [key_fingerprint(key) for key in settings.ENCRYPTION_KEYS]


@pytest.mark.parametrize("command", ["verify_backup", "restore_backup"])
def test_it_refuses_a_backup_made_under_a_key_it_does_not_hold(postgres, tmp_path, command):
    manifest = a_manifest(tmp_path, ["0123456789abcdef", *current_fingerprints()])
    options = {"database_url": "postgresql://postgres@127.0.0.1:1/none"} if command == "restore_backup" else {}

    with pytest.raises(CommandError, match=r"0123456789abcdef.*would be unreadable"):
        call_command(command, str(manifest), **options)


def test_it_restores_into_an_empty_database_only(postgres, tmp_path):
    manifest = a_manifest(tmp_path, current_fingerprints())
    test_database = settings.DATABASES["default"]
    url = (
        f"postgresql://{test_database['USER']}@{test_database['HOST']}:{test_database['PORT']}/{test_database['NAME']}"
    )

    with pytest.raises(CommandError, match=r"has [1-9][0-9]* tables\. Restore into a fresh, empty database"):
        call_command("restore_backup", str(manifest), database_url=url)
