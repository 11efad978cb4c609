"""Earlier meshfleet releases, installed from this repository's own git history for upgrade tests.

A release is a commit of main (CHANGELOG.md names it). Its worker is built as an operator would
build it: the release's source tree, ``pip install`` into a virtualenv of its own. The install is
kept under ``.meshfleet/releases/`` so later test runs reuse it.
"""

from __future__ import annotations

import fcntl
import io
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.paths import REPO

RELEASES: dict[str, str] = {
    "0.1.0": "ec36086381d59ac6bd5ce74e7f89a908b3321b86",
    "0.2.0": "3b54201ee113e2a2a73ed0cdb8340cd9abfeb74e",
}
"""Every release so far: version -> the commit of main it was cut from."""

SUPPORTED = ("0.1.0", "0.2.0")
"""Releases whose running rollouts main must still finish (docs/upgrading.md: support policy)."""

PREVIOUS = SUPPORTED[-1]
"""The release a rolling restart upgrades from."""

IN_DEVELOPMENT = "0.3.0.dev0"
"""The version main is building (``meshfleet.__version__``). Its set holds histories main's own
workflows recorded of paths no release has yet, so a later change to main cannot break a rollout
that takes them; when the version is released its set is recorded again, whole, as the release's."""

GATED = (*SUPPORTED, IN_DEVELOPMENT)
"""Every set the replay gate replays."""

FIRST_RELEASE = "0.1.0"
"""The one release without progressive delivery and rollback."""


def plays_development(release: str) -> bool:
    """Whether the set of ``release`` holds the development scenarios too (every release after
    the first: played by its own worker, so the set of the version in development can move on
    to paths newer still)."""
    return release not in (FIRST_RELEASE, IN_DEVELOPMENT)


@dataclass(frozen=True)
class ReleaseInstall:
    """One release's source tree and the virtualenv its worker runs in."""

    version: str
    source: Path
    python: Path

    def worker_argv(self) -> list[str]:
        """The release's own ``python worker.py`` (run it with ``cwd=source``)."""
        return [str(self.python), str(self.source / "worker.py")]


# Variables that would let this checkout's modules (or another interpreter's) into a release.
_FOREIGN_PYTHON = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV")


def release_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` for a release's process: nothing on the module path but the release itself."""
    return {k: v for k, v in env.items() if k not in _FOREIGN_PYTHON}


def _export(commit: str, dest: Path) -> None:
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", commit],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")


def working_tree() -> ReleaseInstall:
    """This checkout as the release in development: its own ``worker.py`` and interpreter."""
    return ReleaseInstall(IN_DEVELOPMENT, REPO, Path(sys.executable))


def install_release(version: str, root: Path | None = None) -> ReleaseInstall:
    """The release's worker, installed once per checkout (a file lock guards parallel callers).

    Raises:
        KeyError: ``version`` is not a release.
        subprocess.CalledProcessError: the commit is not in this clone's history (CI clones the
            whole history) or the install failed.
    """
    commit = RELEASES[version]
    base = (root or REPO / ".meshfleet" / "releases") / version
    base.mkdir(parents=True, exist_ok=True)
    install = ReleaseInstall(version, base / "src", base / "venv" / "bin" / "python")
    stamp = base / "installed"
    with (base / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists() and stamp.read_text() == commit:
            return install
        for old in (install.source, base / "venv"):
            shutil.rmtree(old, ignore_errors=True)
        _export(commit, install.source)
        subprocess.run([sys.executable, "-m", "venv", str(base / "venv")], check=True)
        pip = [str(install.python), "-m", "pip", "install", "--quiet"]
        locked = install.source / "requirements.lock"
        if locked.exists():
            # As the release's image was built: its locked dependencies, then the release.
            subprocess.run([*pip, "--require-hashes", "-r", str(locked)], check=True, cwd=base)
            pip.append("--no-deps")
        # 0.1.0 predates the lock: its declared ranges resolve as an install of it would today.
        subprocess.run([*pip, str(install.source)], check=True, cwd=base)
        stamp.write_text(commit)
    return install
