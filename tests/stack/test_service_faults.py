"""Faults of the services around the app, on the production stack (tests/stack/harness.py): Redis stopped while users
work, a worker killed with SIGKILL mid-task, beat restarted, a full disk for the mail files and the downloads'
temporary files, and the PDF renderer failing. No user-facing error, no message lost, none sent twice.

The same faults are tested on test processes in tests/test_message_faults.py; here they hit what production runs.
These tests start a stack of their own (one for the module): the claim lease, the backoff and the attempts are
seconds, and the mail files and temporary files sit on a small tmpfs that a test fills up.

Mail goes to files (Django's file backend, one file per connection; a file may hold several messages when two
connections share a name): messages are counted by their study ID in the subject, each complete one ending with
the backend's line of dashes. Every wait is bounded polling (wait_until), never a sleep.
"""

import itertools
import re
import shutil
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from email import message_from_bytes
from email.header import decode_header, make_header
from pathlib import Path

import pytest
from django.urls import reverse

from conftest import require
from tests.stack.conftest import require_stack_programs, restore, running_stack, stack_directory
from tests.stack.harness import Process, ProductionStack, access_status, free_port, json_line, wait_until

SWEEP_SECONDS = 5
SETTINGS = {
    "MESSAGE_CLAIM_LEASE_SECONDS": "3",
    "MESSAGE_BACKOFF_SECONDS": "1",
    "MESSAGE_MAX_ATTEMPTS": "3",
    "MESSAGE_SWEEP_SECONDS": str(SWEEP_SECONDS),
}
# The file backend ends each message with a line of 79 dashes.
MAIL_SEPARATOR = b"\n" + b"-" * 79 + b"\n"
UNBLINDING = "randomization.unblinding"


# --- The stack of this module ----------------------------------------------------------------------------------


def mount_tmpfs(directory: Path, size: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    require(mounted.returncode == 0, f"needs to mount a tmpfs (as root) for the full disk: {mounted.stderr.strip()}")


@pytest.fixture(scope="module")
def faulty_stack() -> Iterator[ProductionStack]:
    require_stack_programs()
    directory = stack_directory("trial-faults-")
    # TRIAL_VAR_DIR on a small disk of its own: the mail files and the processes' temporary files (var/tmp).
    disk = directory / "var"
    mount_tmpfs(disk, "16m")
    try:
        with running_stack(directory, settings=SETTINGS) as stack:
            yield stack
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], check=False)


@pytest.fixture
def stack(faulty_stack: ProductionStack) -> ProductionStack:
    restore(faulty_stack)
    return faulty_stack


# --- Reading the outbox and the mail ---------------------------------------------------------------------------


NOTICE_SUBJECT = re.compile(r"^(?:Emergency unblinding of|Nødavblinding av) (\S+)$")


def mailed(stack: ProductionStack) -> Counter:
    """How many times the unblinding notice of each study ID was mailed (complete messages in the mail files)."""
    counts: Counter = Counter()
    for path in stack.mail.iterdir():
        if not path.is_file():
            continue
        for chunk in path.read_bytes().split(MAIL_SEPARATOR)[:-1]:
            subject = str(make_header(decode_header(message_from_bytes(chunk.lstrip(b"\n"))["Subject"])))
            notice = NOTICE_SUBJECT.match(subject)
            if notice:
                counts[notice.group(1)] += 1
    return counts


def outbox(stack: ProductionStack, prefix: str) -> dict[str, tuple]:
    """The outbox rows whose study ID starts with `prefix`: study ID -> (status, attempts, claims abandoned, error)."""
    rows = stack.sql(
        "SELECT context->>'study_id', status, attempts, abandoned_claims, last_error FROM notifications_message "
        "WHERE context->>'study_id' LIKE %s",
        (prefix + "%",),
    )
    return {row[0]: tuple(row[1:]) for row in rows}


def queue_messages(stack: ProductionStack, prefix: str, count: int) -> list[str]:
    """`count` unblinding notices to the data manager, written straight into the outbox (no task queued: only the
    sweep finds them). Study IDs are prefix-0001, prefix-0002, ..."""
    assert stack.postgres is not None
    stack.postgres.execute(
        "trial",
        "INSERT INTO notifications_message (kind, about, recipient_id, due_on, context, by_email, status, attempts, "
        "abandoned_claims, last_error, cancel_reason, created_at) "
        "SELECT %s, %s || n, (SELECT id FROM auth_user WHERE username = 'datamanager'), CURRENT_DATE, "
        "json_build_object('study_id', %s || lpad(n::text, 4, '0'), 'user', 'Astrid', 'by', 'Per'), "
        "true, 'pending', 0, 0, '', '', now() FROM generate_series(1, %s) AS n",
        (UNBLINDING, f"fault:{prefix}:", prefix + "-", count),
    )
    return [f"{prefix}-{number:04}" for number in range(1, count + 1)]


def all_sent(stack: ProductionStack, prefix: str, count: int):
    def check() -> bool:
        rows = outbox(stack, prefix)
        return len(rows) == count and all(row[0] == "sent" for row in rows.values())

    return check


# --- Users at work -----------------------------------------------------------------------------------------------


def csrf_token(page: str) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert found, page[:2000]
    return found.group(1)


def post_form(stack: ProductionStack, session, page_path: str, action_path: str, data: dict):
    page = session.get(stack.url(page_path), timeout=30)
    assert page.status_code == 200, page.text[:2000]
    return session.post(
        stack.url(action_path),
        data={"csrfmiddlewaretoken": csrf_token(page.text), **data},
        headers={"Referer": stack.url(page_path)},
        timeout=30,
    )


def unblindable_families(stack: ProductionStack, count: int) -> list[str]:
    """Randomised families whose arm was never revealed to the demo's outcome assessor."""
    rows = stack.sql(
        "SELECT f.study_id FROM families_family f JOIN randomization_allocation a ON a.family_id = f.id "
        "JOIN trial_site s ON s.id = f.site_id WHERE s.code IN ('OEI', 'LAR') "
        "AND NOT EXISTS (SELECT 1 FROM randomization_unblinding u WHERE u.family_id = f.id) ORDER BY f.study_id"
    )
    require(len(rows) >= count, f"needs {count} randomised families in the demo, found {len(rows)}")
    return [row[0] for row in rows[:count]]


def unblind(stack: ProductionStack, session, study_id: str):
    """The principal investigator reveals the family's arm to the assessor: the data managers are told by mail."""
    (assessor,) = stack.sql("SELECT id FROM auth_user WHERE username = 'assessor'")
    path = reverse("randomization:unblind", args=[study_id])
    return post_form(
        stack, session, path, path, {"user": assessor[0], "reason": "Serious adverse event", "confirmed": "yes"}
    )


def server_failures(stack: ProductionStack) -> list[str]:
    """Gunicorn's access log lines with a 500 (a 503 is what a refused download or /healthz may answer)."""
    return [line for line in stack.server_errors() if access_status(line) == 500]


# --- 1. Redis ------------------------------------------------------------------------------------------------------


def test_redis_stopped_while_users_work_fails_no_request_and_every_message_goes_once(stack: ProductionStack):
    assert stack.redis is not None and stack.web is not None
    families = unblindable_families(stack, 3)
    pi = stack.login("pi")
    datamanager = stack.login("datamanager")
    web_log = len(stack.web.output())

    stack.redis.stop()
    try:
        for study_id in families:
            answer = unblind(stack, pi, study_id)
            assert answer.status_code == 200, answer.text[:2000]
            assert answer.url.endswith(reverse("families:detail", args=[study_id]))
            assert datamanager.get(stack.url(reverse("notifications:inbox")), timeout=30).status_code == 200
        # The fault landed: the web could not queue the delivery, and nothing was sent meanwhile.
        assert "Could not queue message delivery" in stack.web.output()[web_log:]
        assert set(families) <= {key for key, row in outbox(stack, "").items() if row[0] == "pending"}
        assert not set(families) & set(mailed(stack))
    finally:
        stack.redis.start()

    wait_until(
        lambda: all(outbox(stack, study_id).get(study_id, ("",))[0] == "sent" for study_id in families),
        what=f"the unblinding notices to be sent\n{stack.logs_tail()}",
    )
    counts = mailed(stack)
    assert [counts[study_id] for study_id in families] == [1, 1, 1]
    assert server_failures(stack) == []


# --- 2. A worker killed mid-task -----------------------------------------------------------------------------------


def test_a_worker_killed_mid_sweep_loses_no_message_and_sends_none_twice(stack: ProductionStack):
    assert stack.worker is not None
    count = 1500
    study_ids = queue_messages(stack, "KILL", count)

    def sweep_under_way() -> bool:
        statuses = Counter(row[0] for row in outbox(stack, "KILL").values())
        return 0 < statuses["sent"] < count - 100

    wait_until(sweep_under_way, what=f"the sweep to be under way\n{stack.logs_tail()}")
    stack.worker.stop(signal.SIGKILL)
    # It was killed mid-sweep: messages sent and messages still waiting, and nothing moves without a worker.
    at_kill = Counter(row[0] for row in outbox(stack, "KILL").values())
    assert at_kill["sent"] > 0 and at_kill["pending"] + at_kill["sending"] > 0, at_kill
    assert "notifications.tasks.deliver_due" in stack.worker.output()

    stack.start_worker()

    wait_until(all_sent(stack, "KILL", count), what=f"every message to be sent\n{stack.logs_tail()}")
    rows = outbox(stack, "KILL")
    counts = mailed(stack)
    lost = [study_id for study_id in study_ids if counts[study_id] == 0]
    assert lost == []
    # A message whose send the kill interrupted is taken again after the lease, once: it may have left before the
    # kill (the file written, the row not yet marked), so it alone may be there twice; every other exactly once.
    twice = {study_id for study_id in study_ids if counts[study_id] > 1}
    assert all(counts[study_id] == 2 and rows[study_id][2] == 1 for study_id in twice), twice
    assert len(twice) <= 2  # at most one send in flight per worker process
    assert sum(1 for row in rows.values() if row[2] == 1) <= 2
    assert server_failures(stack) == []


# --- 3. Beat restarted ---------------------------------------------------------------------------------------------

SENT_LINE = re.compile(r"^\[?(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d[,.]\d+).*Sending due task deliver-messages", re.M)


def sweep_times(output: str) -> list[datetime]:
    """When beat sent the message sweep, from its log: JSON lines (production's) or plain ones."""
    times = []
    for line in output.splitlines():
        record = json_line(line)
        if record is not None:
            if "Sending due task deliver-messages" in str(record.get("message", "")):
                times.append(datetime.fromisoformat(str(record["timestamp"]).replace("Z", "+00:00")))
        elif match := SENT_LINE.search(line):
            times.append(datetime.fromisoformat(match.group(1).replace(",", ".")))
    return times


def test_beat_restarted_goes_on_and_sends_no_job_twice_for_one_due_time(stack: ProductionStack):
    beat = stack.beat
    assert beat is not None
    sent_before = len(sweep_times(beat.output()))
    assert sent_before > 0, beat.output()[-3000:]
    # Restart just after a send: a beat that forgot when it last sent would send again at once.
    wait_until(lambda: len(sweep_times(beat.output())) > sent_before, what="beat to send the sweep")
    beat.restart()
    restarted = len(sweep_times(beat.output()))
    study_ids = queue_messages(stack, "BEAT", 3)

    # The jobs go on: the sweep is sent again and delivers what was written meanwhile (no task was queued for it).
    wait_until(all_sent(stack, "BEAT", 3), what=f"the sweep after beat's restart\n{stack.logs_tail()}")
    wait_until(lambda: len(sweep_times(beat.output())) > restarted, what="beat to send the sweep again")
    assert beat.output().count("beat: Starting") >= 2
    times = sweep_times(beat.output())
    gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(times)]
    # Never two sends within one interval (a slow machine makes gaps longer, never shorter).
    assert min(gaps) >= SWEEP_SECONDS * 0.8, gaps
    counts = mailed(stack)
    assert [counts[study_id] for study_id in study_ids] == [1, 1, 1]


# --- 4. A full disk ------------------------------------------------------------------------------------------------


def fill(disk: Path) -> Path:
    """Write a file until the disk is full (ENOSPC)."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as output:
        # Large blocks first, then pages: nothing is left for even a small file.
        for size in (1 << 20, 4096, 512):
            block = b"\0" * size
            try:
                while output.write(block) == size:
                    pass
            except OSError:
                pass
    return filler


def dataset_download(stack: ProductionStack, session, file_format: str):
    query = {"dataset": "families", "file_format": file_format, "values": "codes"}
    return session.get(stack.url(reverse("reports:datasets")), params=query, timeout=60)


def test_a_full_disk_fails_no_request_loses_no_message_and_fails_only_the_download(stack: ProductionStack):
    disk = stack.var
    (study_id,) = unblindable_families(stack, 1)
    pi = stack.login("pi")
    datamanager = stack.login("datamanager")
    key = stack.manage("create_api_token", "datamanager", "--name", "full disk", "--scope", "export").stdout.strip()
    script = stack.client()
    script.headers.update({"Authorization": f"Bearer {key}", "Accept-Language": "en"})
    api_dataset = stack.url("/api/v1/datasets/families/")

    filler = fill(disk)
    try:
        assert shutil.disk_usage(disk).free < 4096
        answer = unblind(stack, pi, study_id)
        assert answer.status_code == 200, answer.text[:2000]

        # Tried again after the backoff, then failed, with the reason, on the data managers' send log.
        wait_until(
            lambda: outbox(stack, study_id).get(study_id, ("",))[0] == "failed",
            what=f"the message to fail\n{stack.logs_tail()}",
        )
        _status, attempts, _abandoned, error = outbox(stack, study_id)[study_id]
        assert attempts == 3
        assert "No space left on device" in error
        log = datamanager.get(stack.url(reverse("notifications:log")), timeout=30)
        assert log.status_code == 200
        assert study_id in log.text and "No space left on device" in log.text

        # The downloads made through temporary files fail with a page that says so; the rest goes on.
        for file_format in ("xlsx", "dta"):
            refused = dataset_download(stack, datamanager, file_format)
            assert refused.status_code == 503
            assert "The file could not be made" in refused.text
        report_excel = pi.get(stack.url(reverse("reports:report_xlsx")), timeout=60)
        assert report_excel.status_code == 503
        assert "The file could not be made" in report_excel.text
        assert dataset_download(stack, datamanager, "csv").status_code == 200
        # The API's too: a problem that says so, never a 500.
        problem = script.get(api_dataset, params={"file_format": "xlsx"}, timeout=60)
        assert problem.status_code == 503, problem.text[:2000]
        assert problem.headers["Content-Type"] == "application/problem+json"
        assert problem.json()["type"] == "urn:family-partner:problem:file-not-written"
        assert "disk may be full" in problem.json()["detail"]
        assert script.get(api_dataset, timeout=60).status_code == 200
        assert pi.get(stack.url(reverse("reports:report")), timeout=60).status_code == 200
        assert stack.healthz().status_code == 200
    finally:
        filler.unlink()

    # Space freed: the data manager sends it again from the send log, and it goes out once.
    (message_id,) = stack.sql(
        "SELECT id FROM notifications_message WHERE context->>'study_id' = %s AND status = 'failed'", (study_id,)
    )
    log_path = reverse("notifications:log")
    retried = post_form(stack, datamanager, log_path, reverse("notifications:retry", args=[message_id[0]]), {})
    assert retried.status_code == 200, retried.text[:2000]
    wait_until(
        lambda: outbox(stack, study_id)[study_id][0] == "sent", what=f"the message to be sent\n{stack.logs_tail()}"
    )
    assert mailed(stack)[study_id] == 1
    assert dataset_download(stack, datamanager, "xlsx").status_code == 200
    assert server_failures(stack) == []


# --- 5. The PDF renderer failing -----------------------------------------------------------------------------------

# Loaded by Python at start-up from PYTHONPATH: WeasyPrint fails as when its system libraries are missing. The
# production code is the same; only this Gunicorn's Python is broken.
BROKEN_WEASYPRINT = """
import weasyprint


def _fail(*args, **kwargs):
    raise OSError("cannot load library 'libpango-1.0-0' (injected by the fault test)")


weasyprint.HTML.write_pdf = _fail
"""


def test_a_failing_pdf_renderer_answers_a_clear_translated_page_and_the_rest_works(
    stack: ProductionStack, tmp_path: Path
):
    (tmp_path / "sitecustomize.py").write_text(BROKEN_WEASYPRINT)
    port = free_port()
    environment = {**stack.env("trial-web-broken-pdf"), "PYTHONPATH": str(tmp_path)}
    command = ["gunicorn", "--config", "trial/gunicorn.conf.py", "--bind", f"127.0.0.1:{port}", "--workers", "1"]
    command += ["--worker-tmp-dir", str(stack.directory), "--certfile", str(stack.cert), "--keyfile", str(stack.key)]
    broken = Process("web-broken-pdf", [*command, "trial.wsgi"], environment, tmp_path / "web.log", "Booting worker")
    try:
        base = f"https://127.0.0.1:{port}"
        pi = stack.login("pi")  # the session cookie is the host's: it holds on the second Gunicorn too
        wait_until(lambda: pi.get(base + "/healthz", timeout=30).status_code == 200, what="the second Gunicorn")

        failed = pi.get(base + reverse("reports:report_pdf"), timeout=60)
        assert failed.status_code == 503
        assert "The PDF could not be made" in failed.text
        assert "libpango" not in failed.text
        assert reverse("reports:report_xlsx") in failed.text
        norsk = pi.get(base + reverse("reports:report_pdf"), headers={"Accept-Language": "nb"}, timeout=60)
        assert norsk.status_code == 503
        assert "PDF-en kunne ikke lages" in norsk.text
        # The fault landed where it was put: the broken Gunicorn logged it, the stack's own makes the PDF.
        wait_until(lambda: "injected by the fault test" in broken.output(), what="the failure in the log")
        made = pi.get(stack.url(reverse("reports:report_pdf")), timeout=120)
        assert made.status_code == 200 and made.content.startswith(b"%PDF")

        # The other downloads and pages of the broken Gunicorn work.
        excel = pi.get(base + reverse("reports:report_xlsx"), timeout=60)
        assert excel.status_code == 200 and excel.content.startswith(b"PK")
        assert pi.get(base + reverse("reports:report"), timeout=60).status_code == 200
        assert pi.get(base + reverse("families:list"), timeout=60).status_code == 200
        assert not [line for line in broken.output().splitlines() if '" 500 ' in line]
    finally:
        broken.stop()
