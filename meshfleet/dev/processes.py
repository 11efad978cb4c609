"""The stack's child processes: each in a process group of its own, marked, found and stopped.

Linux only, like the dev stack: liveness and markers are read from ``/proc``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Final

# Every child carries this variable, so a leftover of a killed run can be recognised as ours
# before it is stopped, and tests can find every process a stack started.
MARKER_ENV: Final = "MESHFLEET_DEVSTACK"


@dataclass
class Child:
    """A started child: its process (leader of its own group) and the log it writes."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes] = field(repr=False)


def spawn(name: str, argv: list[str], log_path: Path, env: Mapping[str, str]) -> Child:
    """Start ``argv`` in a session of its own, stdout and stderr into ``log_path``.

    Its own session (so its own process group): a Ctrl-C on the terminal reaches only the
    parent, which stops the children in its own order, each with every grandchild.
    """
    log_file = log_path.open("wb")
    try:
        process = subprocess.Popen(  # noqa: S603 - argv is built by the stack, never from input
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=dict(env),
            start_new_session=True,
        )
    except BaseException:
        log_file.close()
        raise
    return Child(name, process, log_path, log_file)


def log_tail(path: Path, lines: int = 15) -> str:
    """The last ``lines`` of a child's log, indented, or "" when it cannot be read."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


def alive(pid: int) -> bool:
    """Whether ``pid`` runs: a zombie (exited, not yet reaped) holds nothing and runs nothing."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] != "Z"


def group_alive(pgid: int) -> bool:
    """Whether any process of the group ``pgid`` is left."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def has_marker(pid: int, marker: str) -> bool:
    """Whether ``pid`` was started by a stack with this marker (its state directory)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return f"{MARKER_ENV}={marker}".encode() in environ.split(b"\0")


def processes_of(state_dir: Path) -> list[int]:
    """Pids of every live process started by a dev stack using ``state_dir`` (Linux only)."""
    marker = str(state_dir.resolve())
    found: list[int] = []
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if entry.name.isdigit() and has_marker(int(entry.name), marker) and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def stop_child(
    process: subprocess.Popen[bytes], grace_s: float, hurry: Callable[[], bool] | None = None
) -> None:
    """SIGTERM to the child's group, SIGKILL after ``grace_s`` (or as soon as ``hurry()``)."""
    pgid = process.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while process.poll() is None and time.monotonic() < deadline:
        if hurry is not None and hurry():
            break
        time.sleep(0.05)
    if process.poll() is None or group_alive(pgid):
        # The leader or a grandchild ignored SIGTERM (or outlived the leader): no more asking.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    process.wait()


def stop_group(pgid: int, grace_s: float) -> None:
    """The same for a group this process did not start (a leftover of a killed run)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
