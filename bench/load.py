"""`make bench`: the trial under load and over time, in production shape (issue 13).

A production stack of its own (tests/stack/harness.py: PostgreSQL, Redis, Gunicorn over HTTPS with
trial/gunicorn.conf.py and WEB_CONCURRENCY sync workers, a Celery worker and beat), with bench/load_settings.py
(production's settings plus the bare view's URL), the demo trial and bench/load_seed.py's data. Then locust, headless
on loopback, with bench/locustfile.py's users of mixed roles (one locust process on the same machine: it takes CPU
from the stack):

1. load: LOAD_USERS users (50) for LOAD_SECONDS (60 s), each thinking 1-3 s between tasks: per page requests,
   failures, median and p95 ms. Goals: 0 failures; p95 under 150 ms for every page (downloads and signing in, whose
   password hashing is slow by design, apart);
2. throughput: the same users and mix without thinking (saturating the web workers), the same without the report
   downloads (pages only: a PDF holds a worker for a second or more), then the bare view the same way: requests per
   second of each; goal: the pages' at least 0.4 x the bare view's (the mix's is printed beside it);
3. soak: the mix at half the users (25) for SOAK_SECONDS (600 s); the resident memory of Gunicorn's master and
   workers and of the Celery worker's processes sampled every 10 s: first, last, max, the slope over the run in MB
   per 10 minutes. "Flat": each group's total grows by less than 10% from the end of the first minute (the warm-up)
   to the end. Gunicorn replaces a worker after max_requests (~1,000) requests: such replacements are counted.

BENCH_LOAD_USERS, BENCH_LOAD_SECONDS and BENCH_SOAK_SECONDS change the sizes (BENCH_SOAK_SECONDS=0 skips the soak).
Run alone: .venv/bin/python bench/load.py
"""

import csv
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LOAD_USERS = int(os.environ.get("BENCH_LOAD_USERS", "50"))
LOAD_SECONDS = int(os.environ.get("BENCH_LOAD_SECONDS", "60"))
SOAK_SECONDS = int(os.environ.get("BENCH_SOAK_SECONDS", "600"))
SAMPLE_SECONDS = 10
WARM_UP_SECONDS = 60
FLAT_GROWTH = 0.10
PAGE_P95_MS = 150
THROUGHPUT_RATIO = 0.4
MIX = ["Researcher", "Partner", "Assessor", "PrincipalInvestigator", "Script"]
# The same users without the report downloads: the throughput goal is for pages.
PAGES = ["Researcher", "Partner", "Assessor", "PrincipalInvestigatorPages", "Script"]
API_TOKENS = 4
PARTNER_SESSIONS = 6
# Rows apart from the page goal: downloads (the exception) and signing in (PBKDF2 on purpose; only when a
# user has no session of bench/load.py's).
APART = ("download:", "sign in")


def web_workers() -> int:
    """trial/gunicorn.conf.py's worker count, as production sets it."""
    return int(os.environ.get("WEB_CONCURRENCY", "3"))


def run_locust(stack, data_file: Path, users_: list[str], users: int, seconds: int, wait: str, out: Path) -> list[dict]:
    """locust headless with `users_` classes: the rows of its stats CSV (the last one is "Aggregated")."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("REQUESTS_", "CURL_"))}
    environment.update(BENCH_LOAD_DATA=str(data_file), BENCH_LOAD_CERT=str(stack.cert), BENCH_LOAD_WAIT=wait)
    command = [str(Path(sys.executable).parent / "locust"), "-f", str(ROOT / "bench" / "locustfile.py"), *users_]
    command += ["--headless", "--host", stack.base_url, "-u", str(users), "-r", str(max(1, users // 5))]
    command += ["--run-time", f"{seconds}s", "--csv", str(out), "--only-summary", "--loglevel", "WARNING"]
    command += ["--stop-timeout", "30"]
    result = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)  # noqa: S603
    stats = Path(f"{out}_stats.csv")
    if not stats.exists():
        raise SystemExit(
            f"locust wrote no statistics ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    with open(stats) as file:
        rows = list(csv.DictReader(file))
    failures = Path(f"{out}_failures.csv")
    rows_failed = []
    if failures.exists():
        with open(failures) as file:
            rows_failed = list(csv.DictReader(file))
    for row in rows:
        row["errors"] = [f"{f['Error']} (x{f['Occurrences']})" for f in rows_failed if f["Name"] == row["Name"]]
    return rows


def refresh_ready(stack, data: dict, data_file: Path) -> None:
    """Leave in the data file only the ready families still consented: each locust run starts its pool afresh, and a
    family randomised by an earlier run would answer as already randomised (the API's 200, the page's receipt)."""
    rows = stack.sql(
        "SELECT study_id FROM families_family WHERE status = 'consented' AND study_id = ANY(%s)", (data["ready"],)
    )
    still = {study_id for (study_id,) in rows}
    data["ready"] = [study_id for study_id in data["ready"] if study_id in still]
    data_file.write_text(json.dumps(data))


def number(row: dict, column: str) -> float:
    value = row.get(column, "") or "0"
    return 0.0 if value == "N/A" else float(value)


def print_pages(rows: list[dict]) -> list[str]:
    """The per-page table; returns the names of pages over the p95 goal."""
    header = ("page", "requests", "failures", "median ms", "p95 ms", "req/s")
    print(f"| {header[0]:<36} | {header[1]:>8} | {header[2]:>8} | {header[3]:>9} | {header[4]:>7} | {header[5]:>6} |")
    print(f"|{'-' * 38}|{'-' * 10}|{'-' * 10}|{'-' * 11}|{'-' * 9}|{'-' * 8}|")
    slow = []
    for row in sorted(rows, key=lambda r: (r["Name"] == "Aggregated", r["Name"])):
        name = "all requests" if row["Name"] == "Aggregated" else row["Name"]
        p95 = number(row, "95%")
        apart = name.startswith(APART)
        if not apart and name != "all requests" and p95 >= PAGE_P95_MS:
            slow.append(name)
        mark = " (apart)" if apart else ""
        print(
            f"| {(name + mark)[:36]:<36} | {row['Request Count']:>8} | {row['Failure Count']:>8} "
            f"| {number(row, '50%'):>9.0f} | {p95:>7.0f} | {number(row, 'Requests/s'):>6.1f} |"
        )
    for row in rows:
        for error in row["errors"][:3]:
            print(f"  failure, {row['Name']}: {error[:160]}")
    return slow


class MemorySampler(threading.Thread):
    """The resident memory (MB) of the stack's web and worker processes every SAMPLE_SECONDS, by pid."""

    def __init__(self, stack) -> None:
        super().__init__(daemon=True)
        self.stack = stack
        self.samples: list[tuple[float, dict[tuple[str, int], float]]] = []
        self.done = threading.Event()

    @staticmethod
    def rss(pid: int) -> float | None:
        try:
            import psutil  # type: ignore[import-untyped]

            return psutil.Process(pid).memory_info().rss / 2**20
        except ImportError:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                return None
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
            return None
        except Exception:  # the process ended between listing and reading
            return None

    def processes(self) -> dict[tuple[str, int], str]:
        # The entrypoint execs Gunicorn and Celery, so the Popen's pid is each master; their children the workers.
        found = {
            ("gunicorn master", self.stack.web.pid): "web",
            ("celery worker main", self.stack.worker.pid): "celery",
        }
        found.update({("gunicorn worker", pid): "web" for pid in self.stack.web.children()})
        found.update({("celery pool process", pid): "celery" for pid in self.stack.worker.children()})
        return found

    def run(self) -> None:
        started = time.monotonic()
        while not self.done.is_set():
            sample = {}
            for key in self.processes():
                value = self.rss(key[1])
                if value is not None:
                    sample[key] = value
            self.samples.append((time.monotonic() - started, sample))
            self.done.wait(SAMPLE_SECONDS)


def slope_per_10_minutes(points: list[tuple[float, float]]) -> float:
    """The least-squares slope of (seconds, MB) in MB per 600 s."""
    if len(points) < 2:
        return 0.0
    mean_t = sum(t for t, _ in points) / len(points)
    mean_v = sum(v for _, v in points) / len(points)
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    return 0.0 if spread == 0 else 600 * sum((t - mean_t) * (v - mean_v) for t, v in points) / spread


def print_memory(samples: list[tuple[float, dict]]) -> list[str]:
    """The soak's memory table (per process, and each group's total); returns the groups that are not flat."""
    keys = sorted({key for _, sample in samples for key in sample}, key=lambda k: (k[0], k[1]))
    header = ("process", "pid", "samples", "first MB", "last MB", "max MB", "MB/10 min")
    print(
        f"| {header[0]:<22} | {header[1]:>7} | {header[2]:>7} | {header[3]:>8} | {header[4]:>7} | {header[5]:>6} "
        f"| {header[6]:>9} |"
    )
    print(f"|{'-' * 24}|{'-' * 9}|{'-' * 9}|{'-' * 10}|{'-' * 9}|{'-' * 8}|{'-' * 11}|")
    for key in keys:
        points = [(t, sample[key]) for t, sample in samples if key in sample]
        values = [v for _, v in points]
        print(
            f"| {key[0]:<22} | {key[1]:>7} | {len(points):>7} | {values[0]:>8.1f} | {values[-1]:>7.1f} "
            f"| {max(values):>6.1f} | {slope_per_10_minutes(points):>+9.1f} |"
        )
    not_flat = []
    for group, prefix in (("Gunicorn, master + workers", "gunicorn"), ("Celery, worker + pool", "celery")):
        totals = [(t, sum(v for k, v in sample.items() if k[0].startswith(prefix))) for t, sample in samples]
        warm = [v for t, v in totals if t >= WARM_UP_SECONDS] or [v for _, v in totals]
        growth = (warm[-1] - warm[0]) / warm[0] if warm and warm[0] else 0.0
        pids = {k[1] for _, sample in samples for k in sample if k[0].startswith(prefix)}
        flat = growth < FLAT_GROWTH
        if not flat:
            not_flat.append(group)
        print(
            f"{group}: total first {totals[0][1]:.0f} MB, after warm-up {warm[0]:.0f} MB, last {totals[-1][1]:.0f} MB, "
            f"max {max(v for _, v in totals):.0f} MB, slope {slope_per_10_minutes(totals):+.1f} MB/10 min, "
            f"growth after warm-up {growth:+.1%}, {len(pids)} processes seen -> {'PASS' if flat else 'MISS'} (flat)"
        )
    return not_flat


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> None:
    from tests.stack.harness import ProductionStack

    password = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory(prefix="trial-load-") as directory:
        work = Path(directory)
        started = time.perf_counter()
        settings = {"DJANGO_SETTINGS_MODULE": "bench.load_settings", "WEB_CONCURRENCY": str(web_workers())}
        with ProductionStack(work, web_workers=web_workers(), settings=settings) as stack:
            stack.load_demo()
            data_file = work / "load.json"
            stack.manage(
                "shell", "-c", f"from bench.load_seed import seed; seed({str(data_file)!r}, {password!r})", timeout=1800
            )
            data = json.loads(data_file.read_text())
            print(f"stack started and data written in {time.perf_counter() - started:.0f} s (seed: {data['timings']})")
            data["password"] = password
            data["tokens"] = [
                stack.manage(
                    "create_api_token", data["researcher"], "--name", f"load {i}", "--scope", "randomise"
                ).stdout.strip()
                for i in range(API_TOKENS)
            ]
            # Signed in before the clock, one session per user name, shared by the locust users of that name: 50
            # sign-ins (PBKDF2, slow on purpose) would otherwise fill the first half of a 60 s run.
            data["partners"] = data["partners"][:PARTNER_SESSIONS]
            data["sessions"] = {
                username: dict(stack.login(username, password).cookies)
                for username in (data["researcher"], data["pi"], data["assessor"], *data["partners"])
            }
            data_file.write_text(json.dumps(data))
            print()
            print(
                f"load: a production stack (Gunicorn {web_workers()} sync workers over HTTPS, Celery, PostgreSQL, "
                f"Redis) on {os.cpu_count()} CPUs shared with locust and whatever else runs; "
                f"{data['families']} families, "
                f"{len(data['partners'])} partners with caseloads, {len(data['ready'])} families ready to randomise; "
                f"stack and data ready in {time.perf_counter() - started:.0f} s"
            )
            print(f"{LOAD_USERS} users of mixed roles for {LOAD_SECONDS} s, thinking 1-3 s between tasks")
            print()
            refresh_ready(stack, data, data_file)
            mix = run_locust(stack, data_file, MIX, LOAD_USERS, LOAD_SECONDS, "1-3", work / "mix")
            slow = print_pages(mix)
            # Throughput: the same users without thinking; the rest of the ready families go to the mix first.
            refresh_ready(stack, data, data_file)
            print(f"\n{len(data['ready'])} families still ready to randomise")
            saturated = run_locust(stack, data_file, MIX, LOAD_USERS, LOAD_SECONDS, "0", work / "saturated")
            refresh_ready(stack, data, data_file)
            pages = run_locust(stack, data_file, PAGES, LOAD_USERS, LOAD_SECONDS, "0", work / "pages")
            bare = run_locust(stack, data_file, ["Bare"], LOAD_USERS, LOAD_SECONDS, "0", work / "bare")
            total = next(row for row in mix if row["Name"] == "Aggregated")
            saturated_total = next(row for row in saturated if row["Name"] == "Aggregated")
            pages_total = next(row for row in pages if row["Name"] == "Aggregated")
            bare_total = next(row for row in bare if row["Name"] == "Aggregated")
            bare_rate = max(number(bare_total, "Requests/s"), 0.001)
            ratio = number(pages_total, "Requests/s") / bare_rate
            totals = {"the mix": saturated_total, "pages (no downloads)": pages_total, "bare view": bare_total}
            failures = sum(int(number(row, "Failure Count")) for row in (total, *totals.values()))
            print()
            print(f"without thinking, {LOAD_USERS} users for {LOAD_SECONDS} s each:")
            for label, row in totals.items():
                print(
                    f"  {label}: {number(row, 'Requests/s'):.1f} req/s (median {number(row, '50%'):.0f} ms, "
                    f"p95 {number(row, '95%'):.0f} ms, {row['Failure Count']} failures)"
                )
            for row in saturated + pages + bare:
                for error in row["errors"][:3]:
                    print(f"  failure, {row['Name']}: {error[:160]}")
            print()
            print(
                f"{verdict(ratio >= THROUGHPUT_RATIO)}  throughput: pages / bare = {ratio:.2f} "
                f"(goal >= {THROUGHPUT_RATIO}; the mix with downloads / bare = "
                f"{number(saturated_total, 'Requests/s') / bare_rate:.2f})"
            )
            print(f"{verdict(failures == 0)}  failures: {failures} in the four runs (goal 0)")
            print(
                f"{verdict(not slow)}  p95 under {PAGE_P95_MS} ms for every page, downloads and signing in apart"
                + (f" (over: {', '.join(slow)})" if slow else "")
            )
            errors = stack.server_errors()
            print(f"Gunicorn's access log: {len(errors)} responses with a 5xx status")
            if SOAK_SECONDS > 0:
                soak_users = max(1, LOAD_USERS // 2)
                print()
                print(f"soak: {soak_users} users of the same mix for {SOAK_SECONDS} s; memory every {SAMPLE_SECONDS} s")
                print(
                    f"flat: each group's total resident memory grows by less than {FLAT_GROWTH:.0%} from the end of "
                    f"the first {WARM_UP_SECONDS} s to the end"
                )
                print()
                refresh_ready(stack, data, data_file)
                print(f"{len(data['ready'])} families still ready to randomise")
                sampler = MemorySampler(stack)
                sampler.start()
                soak = run_locust(stack, data_file, MIX, soak_users, SOAK_SECONDS, "1-3", work / "soak")
                sampler.done.set()
                sampler.join()
                print_pages(soak)
                print()
                print_memory(sampler.samples)
                soak_total = next(row for row in soak if row["Name"] == "Aggregated")
                print(
                    f"{verdict(number(soak_total, 'Failure Count') == 0)}  soak failures: {soak_total['Failure Count']}"
                )
            print()


if __name__ == "__main__":
    main()
