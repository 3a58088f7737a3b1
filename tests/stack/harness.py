"""The trial as it runs in production, started on this machine without Docker: a PostgreSQL cluster and a
redis-server of its own, Gunicorn with production settings (TRIAL_ENV=production, DEBUG off, a secret key and an
encryption key generated for the run, WhiteNoise serving the collected static files, HTTPS with a certificate made
for the run), a Celery worker and beat. Every process starts through the image's entrypoint (docker/entrypoint.sh),
so `manage.py check --deploy` runs before Gunicorn as in the container.

The stack owns its PostgreSQL and Redis, so tests may stop, restart or kill them without touching the test
database or the machine's services. The tests (tests/stack/) and the load benchmark (bench/load.py) use it.

    with ProductionStack(workdir) as stack:
        stack.load_demo()
        session = stack.login("researcher")
        session.get(stack.url("/families/"))
"""

from __future__ import annotations

import datetime
import glob
import ipaddress
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psycopg2
import requests
from cryptography import x509
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
# Every wait is bounded: long enough for a busy 2-core machine, short enough that a broken stack fails in minutes.
DEADLINE_SECONDS = 90
# Variables of the outer environment that must not leak into the stack (pytest's, the test database's, ...).
LEAKING_PREFIXES = ("PYTEST", "DJANGO_", "EMAIL_", "MESSAGE_", "CELERY_", "TRIAL_", "DATABASE_", "REDIS_")
LEAKING_NAMES = {"SECRET_KEY", "ENCRYPTION_KEYS", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "LOG_LEVEL", "LOG_FORMAT"}
LEAKING_NAMES |= {"METRICS_TOKEN", "PROMETHEUS_MULTIPROC_DIR"}


class StackError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(condition: Callable[[], object], *, timeout: float = DEADLINE_SECONDS, what: str = "the condition"):
    """Poll `condition` until it returns something true, and return it; StackError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise StackError(f"waited {timeout} s for {what}")
        time.sleep(0.2)


def postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise StackError("PostgreSQL's server programs are not installed (apt-get install postgresql)")
    return Path(found[-1]).parent


class PostgresCluster:
    """A PostgreSQL cluster in `directory`, on a port of its own, trusting local connections. PostgreSQL refuses to
    run as root, so as root its programs run as the `postgres` user."""

    def __init__(self) -> None:
        # Its own folder under /tmp: pytest's temporary folders are closed to every user but root.
        directory = Path(tempfile.mkdtemp(prefix="trial-postgres-"))
        self.directory = directory
        self.data = directory / "pgdata"
        self.log = directory / "postgres.log"
        self.port = free_port()
        self.bin = postgres_bin()
        if os.geteuid() == 0:
            shutil.chown(directory, "postgres", "postgres")
        self._as_postgres(
            [
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ]
        )
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{directory}'\n"
                # A test cluster: durability is not what is tested (a restart is a clean shutdown).
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 200\n"
            )
        self.start()
        self.execute("postgres", "CREATE DATABASE trial")

    def _as_postgres(self, command: list[str]) -> None:
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise StackError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")

    def url(self, database: str = "trial", application_name: str = "") -> str:
        query = f"?application_name={application_name}" if application_name else ""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}{query}"

    def start(self) -> None:
        self._as_postgres(
            [str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start"]
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: "fast" disconnects everyone and shuts down cleanly, "immediate" is a crash."""
        self._as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop"])

    def restart(self) -> None:
        self.stop()
        self.start()

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def connect(self, database: str = "trial"):
        return psycopg2.connect(self.url(database, "trial-stack-test"), connect_timeout=5)

    def execute(self, database: str, sql: str, params: tuple = ()) -> None:
        connection = self.connect(database)
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
        finally:
            connection.close()

    def query(self, sql: str, params: tuple = (), database: str = "trial") -> list[tuple]:
        connection = self.connect(database)
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall()
        finally:
            connection.close()

    def terminate(self, application_name_prefix: str) -> int:
        """pg_terminate_backend on every connection whose application name starts with the prefix ("trial-web",
        "trial-worker"): what an administrator, a failover or an idle-session timeout does to the app's sessions."""
        rows = self.query(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name LIKE %s",
            (application_name_prefix + "%",),
            database="postgres",
        )
        return int(rows[0][0])

    def destroy(self) -> None:
        if self.running():
            with suppress(StackError):
                self.stop("immediate")
        shutil.rmtree(self.directory, ignore_errors=True)


class RedisProcess:
    """A redis-server of the stack's own, keeping nothing on disk unless `appendonly` (production's compose file
    keeps an append-only file, so queued tasks survive a restart)."""

    def __init__(self, directory: Path, *, appendonly: bool = True) -> None:
        self.directory = directory
        self.port = free_port()
        self.appendonly = appendonly
        self.process: subprocess.Popen | None = None
        directory.mkdir(parents=True, exist_ok=True)
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        arguments = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--dir", str(self.directory)]
        arguments += ["--appendonly", "yes" if self.appendonly else "no"]
        self.process = subprocess.Popen(
            ["redis-server", *arguments], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        wait_until(self.answers, timeout=30, what="redis-server to answer")

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as client:
                client.sendall(b"PING\r\n")
                return client.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """SIGKILL: Redis gone at once, as in a crash (with appendonly, what was written survives)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(timeout=30)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def freeze(self) -> None:
        """Redis hangs: connections are accepted by the kernel, nothing answers (a stuck host, a full disk)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


class Process:
    """One of the app's processes (web, worker, beat), started through docker/entrypoint.sh in a session of its own,
    its output in a log file."""

    def __init__(
        self, name: str, command: list[str], env: dict[str, str], log: Path, ready: str, root: Path = ROOT
    ) -> None:
        self.name, self.command, self.env, self.log, self.ready, self.root = name, command, env, log, ready, root
        self.process: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        offset = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as output:
            self.process = subprocess.Popen(
                ["sh", str(self.root / "docker" / "entrypoint.sh"), *self.command],
                cwd=self.root,
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def started() -> bool:
            if self.process is None or self.process.poll() is not None:
                raise StackError(f"{self.name} stopped:\n{self.output()[-4000:]}")
            return self.ready in self.output()[offset:]

        wait_until(started, what=f"{self.name} to start")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def children(self) -> list[int]:
        """The pids of the process's children (Gunicorn's or Celery's worker processes)."""
        result = subprocess.run(["pgrep", "-P", str(self.pid)], capture_output=True, text=True, check=False)
        return [int(pid) for pid in result.stdout.split()]

    def send(self, sig: int) -> None:
        if self.alive():
            os.killpg(self.pid, sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> None:
        """Stop the process and everything in its session: SIGTERM is a warm shutdown, SIGKILL a crash."""
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.pid, sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
        with suppress(ProcessLookupError):  # what the process left behind in its session (a worker's child)
            os.killpg(self.pid, signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, made for this run."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "tls.crt", directory / "tls.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    key_file.chmod(0o600)
    return cert_file, key_file


class ProductionStack:
    """PostgreSQL, Redis, Gunicorn (HTTPS), a Celery worker and beat, with production settings.

    `settings` adds or overrides environment variables of every process (e.g. MESSAGE_SWEEP_SECONDS). `code_root`
    runs the code of another folder (a previous release, for tests/stack/test_upgrade.py) with the same virtualenv.
    Use it as a context manager, or call start() and stop().
    """

    def __init__(
        self,
        directory: Path,
        *,
        web_workers: int = 2,
        worker_concurrency: int = 2,
        settings: dict[str, str] | None = None,
        code_root: Path = ROOT,
    ) -> None:
        self.directory = directory
        self.code_root = code_root
        self.web_workers = web_workers
        self.worker_concurrency = worker_concurrency
        self.extra_settings = dict(settings or {})
        self.secret_key = secrets.token_urlsafe(64)
        self.encryption_keys = [Fernet.generate_key().decode()]
        self.metrics_token = secrets.token_urlsafe(32)
        self.port = free_port()
        self.var = directory / "var"
        self.mail = self.var / "mail"
        self.logs = directory / "logs"
        self.postgres: PostgresCluster | None = None
        self.redis: RedisProcess | None = None
        self.web: Process | None = None
        self.worker: Process | None = None
        self.beat: Process | None = None
        self.passwords: dict[str, str] = {}

    # --- starting and stopping -------------------------------------------------------------------------------

    def __enter__(self) -> ProductionStack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> None:
        for path in (self.var, self.mail, self.logs):
            path.mkdir(parents=True, exist_ok=True)
        self.var.chmod(0o700)
        self.cert, self.key = make_certificate(self.directory)
        self.postgres = PostgresCluster()
        self.redis = RedisProcess(self.directory / "redis")
        self.migrate()
        self.manage("collectstatic", "--noinput", "--verbosity", "0")
        self.start_web()
        self.start_worker()
        self.start_beat()

    def stop(self) -> None:
        for process in (self.beat, self.worker, self.web):
            if process is not None:
                process.stop()
        if self.redis is not None:
            self.redis.stop()
        if self.postgres is not None:
            self.postgres.destroy()

    def env(self, application_name: str = "trial-manage") -> dict[str, str]:
        """The environment of every process, as an operator's .env gives it."""
        assert self.postgres is not None and self.redis is not None
        environment = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(LEAKING_PREFIXES) and key not in LEAKING_NAMES
        }
        environment.update(
            PATH=f"{VENV_BIN}{os.pathsep}{environment.get('PATH', '/usr/bin:/bin')}",
            TRIAL_ENV="production",
            DJANGO_SETTINGS_MODULE="trial.settings",
            DJANGO_DEBUG="false",
            SECRET_KEY=self.secret_key,
            ENCRYPTION_KEYS=",".join(self.encryption_keys),
            ALLOWED_HOSTS="127.0.0.1,localhost",
            CSRF_TRUSTED_ORIGINS=f"https://127.0.0.1:{self.port},https://localhost:{self.port}",
            DATABASE_URL=self.postgres.url("trial", application_name),
            DATABASE_CONN_MAX_AGE="60",
            REDIS_URL=self.redis.url,
            TRIAL_VAR_DIR=str(self.var),
            SECURE_SSL_REDIRECT="true",
            SECURE_HSTS_SECONDS="3600",
            TRUST_X_FORWARDED_PROTO="false",
            TRUSTED_PROXY_COUNT="0",
            LOG_LEVEL="INFO",
            EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
            EMAIL_FILE_PATH=str(self.mail),
            DEFAULT_FROM_EMAIL="familypartner@example.org",
            MESSAGE_SWEEP_SECONDS="5",
            METRICS_TOKEN=self.metrics_token,
        )
        environment.update(self.extra_settings)
        return environment

    def manage(
        self,
        *arguments: str,
        check: bool = True,
        timeout: float = 600,
        env: dict[str, str] | None = None,
        code_root: Path | None = None,
    ) -> subprocess.CompletedProcess:
        """`python manage.py ...` through the entrypoint, with the stack's settings (and `env`'s, for this run), and
        the stack's code, unless `code_root` names another release's."""
        root = code_root or self.code_root
        result = subprocess.run(
            ["sh", str(root / "docker" / "entrypoint.sh"), "python", "manage.py", *arguments],
            cwd=root,
            env={**self.env(), **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise StackError(f"manage.py {' '.join(arguments)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def migrate(self) -> None:
        self.manage("migrate", "--noinput", "--verbosity", "0")

    def start_web(self) -> None:
        command = ["gunicorn", "--config", "trial/gunicorn.conf.py", "--bind", f"127.0.0.1:{self.port}"]
        command += ["--workers", str(self.web_workers), "--worker-tmp-dir", str(self.directory)]
        command += ["--certfile", str(self.cert), "--keyfile", str(self.key), "trial.wsgi"]
        self.web = Process(
            "web", command, self.env("trial-web"), self.logs / "web.log", "Booting worker", self.code_root
        )
        wait_until(self.healthz_answers, what="Gunicorn to answer /healthz")

    def start_worker(self) -> None:
        command = ["celery", "-A", "trial", "worker", "--loglevel=INFO", f"--concurrency={self.worker_concurrency}"]
        command += ["-n", f"worker-{self.port}@%h"]
        self.worker = Process(
            "worker", command, self.env("trial-worker"), self.logs / "worker.log", " ready.", self.code_root
        )

    def start_beat(self) -> None:
        command = ["celery", "-A", "trial", "beat", "--loglevel=INFO", "--pidfile=", "--max-interval=5"]
        command += ["--schedule", str(self.directory / "celerybeat-schedule")]
        self.beat = Process(
            "beat", command, self.env("trial-beat"), self.logs / "beat.log", "beat: Starting", self.code_root
        )

    def restart_app(self) -> None:
        """Stop beat, worker and web, and start them again with the stack's settings as they are now (after a change
        of `encryption_keys`, say), as an operator restarts every container after changing the .env."""
        for process in (self.beat, self.worker, self.web):
            if process is not None:
                process.stop()
        self.start_web()
        self.start_worker()
        self.start_beat()

    def load_demo(self) -> dict[str, str]:
        """Load the demo trial (one user per role) and remember its users' passwords."""
        output = self.manage("load_demo").stdout
        for line in output.splitlines():
            match = re.match(r"^\s+(\S+)\s+(\S+)\s+\S", line)
            if match and not line.strip().startswith("Demo"):
                self.passwords[match.group(1)] = match.group(2)
        if "researcher" not in self.passwords:
            raise StackError(f"load_demo printed no passwords:\n{output}")
        return self.passwords

    # --- talking to it -----------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def client(self) -> requests.Session:
        """An HTTPS client that trusts the run's certificate."""
        session = requests.Session()
        # The environment's CA bundle (REQUESTS_CA_BUNDLE) would replace `verify`, and a proxy has no business here.
        session.trust_env = False
        session.verify = str(self.cert)
        return session

    def healthz(self) -> requests.Response:
        return self.client().get(self.url("/healthz"), timeout=30)

    def healthz_answers(self) -> bool:
        try:
            return self.healthz().status_code == 200
        except requests.RequestException:
            return False

    def login(self, username: str, password: str | None = None) -> requests.Session:
        """A signed-in session of a demo user (the login form, as a browser posts it)."""
        session = self.client()
        page = session.get(self.url("/accounts/login/"), timeout=30)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        if token is None:
            raise StackError(f"no CSRF token on the login page ({page.status_code})")
        answer = session.post(
            self.url("/accounts/login/"),
            data={
                "csrfmiddlewaretoken": token.group(1),
                "username": username,
                "password": password or self.passwords[username],
            },
            headers={"Referer": self.url("/accounts/login/")},
            timeout=30,
        )
        if "sessionid" not in session.cookies:
            raise StackError(f"{username} could not sign in ({answer.status_code})")
        return session

    def sql(self, query: str, params: tuple = ()) -> list[tuple]:
        assert self.postgres is not None
        return self.postgres.query(query, params)

    def logs_tail(self, characters: int = 3000) -> str:
        parts = []
        for process in (self.web, self.worker, self.beat):
            if process is not None:
                parts.append(f"--- {process.name} ({process.log})\n{process.output()[-characters:]}")
        return "\n".join(parts)

    def server_errors(self, since: int = 0) -> list[str]:
        """Lines of Gunicorn's access log with a 5xx status: JSON lines (LOG_FORMAT=json, production's) or plain;
        `since` is an offset in the web log (`len(stack.web.output())` taken earlier), to read only what came after."""
        assert self.web is not None
        return [line for line in self.web.output()[since:].splitlines() if access_status(line) // 100 == 5]

    def web_log_records(self, since: int = 0) -> list[dict]:
        """The web log's JSON lines, parsed (other lines, such as a traceback's, are left out); `since` as above."""
        assert self.web is not None
        return [record for line in self.web.output()[since:].splitlines() if (record := json_line(line)) is not None]


def json_line(line: str) -> dict | None:
    if not line.startswith("{"):
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def access_status(line: str) -> int:
    """The status of an access log line (JSON or plain), 0 when the line is not one."""
    record = json_line(line)
    if record is not None:
        status = record.get("status") if record.get("logger") == "gunicorn.access" else None
        return status if isinstance(status, int) else 0
    match = re.search(r'" (\d{3}) ', line)
    return int(match.group(1)) if match else 0


@contextmanager
def production_stack(directory: Path, **options) -> Iterator[ProductionStack]:
    with ProductionStack(directory, **options) as stack:
        yield stack
