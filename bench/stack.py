"""The bench stack: meshfleet's dev stack (WAL dev server, simulator, worker) on free ports."""

from __future__ import annotations

import asyncio
import shutil
import socket
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from meshfleet.dev.config import HOST, StackConfig
from meshfleet.dev.stack import DevStack

TASK_QUEUE = "meshfleet-bench"


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class BenchStack:
    """A running stack: where to reach it and the pids whose CPU and memory are measured."""

    stack: DevStack
    state_dir: Path

    @property
    def env(self) -> dict[str, str]:
        """Environment of a process that talks to this stack (clean of real credentials)."""
        return self.stack.child_env()

    @property
    def simulator_url(self) -> str:
        """The simulator's base URL."""
        return self.stack.config.simulator_url

    @property
    def token(self) -> str:
        """The static token the simulator accepts."""
        return self.stack.token

    def _pid(self, name: str) -> int:
        # pids() and log_paths() both list the children in the order they were started.
        return dict(zip(self.stack.log_paths(), self.stack.pids(), strict=True))[name]

    @property
    def temporal_pid(self) -> int:
        """The dev server."""
        return self._pid("temporal")

    @property
    def simulator_pid(self) -> int:
        """The simulator."""
        return self._pid("simulator")

    @property
    def worker_pid(self) -> int:
        """The meshfleet worker (``python worker.py``)."""
        return self._pid("worker")

    @property
    def worker_log(self) -> Path:
        """The meshfleet worker's stdout and stderr."""
        return self.stack.log_paths()["worker"]

    @property
    def server_log(self) -> Path:
        """The dev server's stdout and stderr (``--log-level warn``)."""
        return self.stack.log_paths()["temporal"]


@asynccontextmanager
async def bench_stack(create_s: float, *, keep: bool = False) -> AsyncIterator[BenchStack]:
    """Start a fresh stack in a temporary directory; stop it and delete the directory after.

    Args:
        create_s: Seconds a simulated mesh stays ``Creating``.
        keep: Keep the directory (database and logs) and name it on stderr.
    """
    state_dir = Path(tempfile.mkdtemp(prefix="meshfleet-bench-"))
    config = StackConfig(
        state_dir=state_dir,
        temporal_port=free_port(),
        ui_port=free_port(),
        simulator_port=free_port(),
        fresh_db=True,
        create_seconds=create_s,
        task_queue=TASK_QUEUE,
        stop_grace_s=10.0,
    )
    stack = DevStack(config)
    try:
        await asyncio.to_thread(stack.start)
        yield BenchStack(stack, state_dir)
    finally:
        await asyncio.to_thread(stack.stop)
        if keep:
            print(f"bench: stack files kept in {state_dir}", file=sys.stderr)
        else:
            shutil.rmtree(state_dir, ignore_errors=True)
