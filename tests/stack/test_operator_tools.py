"""An operator's tools on the production stack: the encryption key rotated while the app serves, and a backup
restored into a fresh database where every allocation list verifies (a "Done when" of issue 13)."""

import hashlib
import html
import json
import re
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, MultiFernet

from tests.stack.harness import ProductionStack, postgres_bin

# The cluster's own pg_dump and pg_restore (the major version of the server).
PG_BIN = {"PG_BIN": str(postgres_bin())}


def a_family_page_with_its_name(stack: ProductionStack) -> tuple[str, str]:
    """A family of the researcher's site: the address of its page, and its parent's name (decrypted here, with
    the stack's keys, from what the database holds)."""
    session = stack.login("researcher")
    listing = session.get(stack.url("/families/"), timeout=30)
    assert listing.status_code == 200
    study_id = re.search(r'class="study-id" href="/families/([^/"]+)/"', listing.text)
    assert study_id is not None, "the researcher sees no family"
    [(ciphertext,)] = stack.sql(
        "SELECT i.contact_name FROM families_familyidentity i JOIN families_family f ON f.id = i.family_id "
        "WHERE f.study_id = %s",
        (study_id.group(1),),
    )
    keys = MultiFernet([Fernet(key.encode()) for key in stack.encryption_keys])
    return f"/families/{study_id.group(1)}/", keys.decrypt(ciphertext.encode()).decode()


def shows(stack: ProductionStack, page: str, name: str) -> bool:
    answer = stack.login("researcher").get(stack.url(page), timeout=30)
    assert answer.status_code == 200, answer.status_code
    return html.escape(name) in answer.text


def test_the_key_is_rotated_while_the_stack_serves_and_the_new_key_alone_then_reads_every_identifier(
    stack: ProductionStack,
):
    page, name = a_family_page_with_its_name(stack)
    assert shows(stack, page, name)
    old_keys = list(stack.encryption_keys)
    new_key = Fernet.generate_key().decode()
    try:
        stack.encryption_keys = [new_key, *old_keys]
        stack.restart_app()

        rotation = stack.manage("rotate_encryption_key", "--batch-size", "100")

        assert "may now be dropped" in rotation.stdout
        assert re.search(
            r"^families\.FamilyIdentity: (\d+)/\1 rows, [1-9]\d* values re-encrypted", rotation.stdout, re.M
        )
        stack.encryption_keys = [new_key]
        # The web alone, to keep the test short: the page is what must read under the new key alone (the worker
        # and beat keep both keys until the next restart, which read everything too).
        assert stack.web is not None
        stack.web.stop()
        stack.start_web()
        assert shows(stack, page, name)
    except BaseException:
        # The session goes on with this stack: leave it with keys that read everything, whatever failed.
        stack.encryption_keys = [new_key, *old_keys]
        stack.restart_app()
        raise


def test_a_backup_restores_into_a_fresh_database_where_every_allocation_list_verifies(
    stack: ProductionStack,
):
    folder = stack.directory / "backups"
    made = stack.manage("backup", "--output", str(folder), env=PG_BIN)
    [manifest_file] = [Path(name) for name in re.findall(r" and (\S+\.json)\.$", made.stdout, re.M)]
    assert manifest_file.parent == folder
    manifest = json.loads(manifest_file.read_text())
    [(lists,)] = stack.sql("SELECT count(*) FROM randomization_allocationlist")
    assert lists > 0 and len(manifest["allocation_lists"]) == lists
    assert manifest["row_counts"]["families.Family"] == stack.sql("SELECT count(*) FROM families_family")[0][0]
    assert manifest["encryption_key_fingerprints"] == [
        hashlib.sha256(key.encode()).hexdigest()[:16] for key in stack.encryption_keys
    ]
    database = f"restore_drill_{secrets.token_hex(4)}"
    assert stack.postgres is not None
    stack.postgres.execute("postgres", f"CREATE DATABASE {database}")
    url = stack.postgres.url(database)
    try:
        restored = stack.manage("restore_backup", str(manifest_file), "--database-url", url, env=PG_BIN, check=False)

        assert restored.returncode == 0, restored.stdout + restored.stderr
        assert "The backup is restored and verified." in restored.stdout
        for code in manifest["allocation_lists"]:
            assert f"{code}: passed" in restored.stdout
        verified = stack.postgres.query(
            "SELECT count(*) FROM randomization_verification WHERE passed AND verified_by_id IS NULL", database=database
        )[0][0]
        assert verified >= lists  # the verification ran there, in the restored copy
    finally:
        stack.postgres.execute("postgres", f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
