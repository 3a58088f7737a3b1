"""trial/gunicorn.conf.py as Gunicorn itself reads it (`gunicorn --print-config`): the settings production relies on."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def printed_config(metrics_directory: Path) -> dict[str, str]:
    gunicorn = Path(sys.executable).parent / "gunicorn"
    result = subprocess.run(
        [str(gunicorn), "--config", "trial/gunicorn.conf.py", "--print-config", "trial.wsgi"],
        cwd=ROOT,
        # A metrics folder of the test's: the config file would otherwise make one in /dev/shm that nothing removes.
        env={**os.environ, "WEB_CONCURRENCY": "3", "PROMETHEUS_MULTIPROC_DIR": str(metrics_directory)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return {
        name.strip(): value.strip()
        for name, _equals, value in (line.partition("=") for line in result.stdout.splitlines())
        if _equals
    }


def test_gunicorn_reads_production_settings_from_the_config_file(tmp_path):
    config = printed_config(tmp_path)
    # No control socket: its default path is one per user ($HOME/.gunicorn), shared by every Gunicorn of that user.
    assert config["control_socket_disable"] == "True"
    assert config["workers"] == "3"
    assert config["worker_tmp_dir"] == "/dev/shm"  # noqa: S108 (the setting under test)
    assert config["max_requests"] == "1000"
    assert config["logger_class"] == "trial.gunicorn_logging.TrialLogger"
