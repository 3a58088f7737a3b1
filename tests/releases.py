"""The previous release (deploy/previous-release) and its code, for the upgrade tests: tests/stack/test_upgrade.py
runs it against a database migrated by this code, tests/test_migration_safety.py checks what was added since."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PREVIOUS_RELEASE_FILE = ROOT / "deploy" / "previous-release"


class ReleaseError(RuntimeError):
    pass


def previous_release() -> str:
    """The previous release's commit: the file's one line that is not a comment."""
    lines = [line.strip() for line in PREVIOUS_RELEASE_FILE.read_text().splitlines()]
    commits = [line for line in lines if line and not line.startswith("#")]
    if len(commits) != 1:
        raise ReleaseError(f"{PREVIOUS_RELEASE_FILE} must name exactly one commit, not {commits}")
    return commits[0]


def git(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *arguments], cwd=ROOT, capture_output=True, check=False, timeout=120)


def require_history(commit: str) -> None:
    """Fail (never skip) when the clone does not hold the commit: a shallow clone cannot test an upgrade."""
    if git("cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        raise ReleaseError(
            f"the previous release {commit} (deploy/previous-release) is not in this clone's history: fetch the "
            "full history (git fetch --unshallow) or fix the commit in deploy/previous-release"
        )


def export_release(commit: str, directory: Path) -> Path:
    """The release's files (`git archive <commit> | tar -x`) in `directory`."""
    require_history(commit)
    directory.mkdir(parents=True, exist_ok=True)
    archive = git("archive", "--format=tar", commit)
    if archive.returncode != 0:
        raise ReleaseError(f"git archive {commit} failed: {archive.stderr.decode(errors='replace')}")
    subprocess.run(["tar", "-x", "-C", str(directory)], input=archive.stdout, check=True, timeout=120)
    return directory


def migrations_added_since(commit: str) -> list[Path]:
    """The migration files added since the release: committed, staged, or not yet added to git."""
    require_history(commit)
    changed = git("diff", "--name-only", "--diff-filter=A", commit, "--", "*/migrations/*.py")
    untracked = git("ls-files", "--others", "--exclude-standard", "--", "*/migrations/*.py")
    names = {*changed.stdout.decode().split(), *untracked.stdout.decode().split()}
    return sorted(ROOT / name for name in names if not name.endswith("__init__.py") and (ROOT / name).exists())
