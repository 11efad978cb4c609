"""Child processes of the scenarios: production workers and a Temporal dev server on SQLite.

Every process is started in its own session and is killed by its pid when its context ends, so a
failing test leaves nothing running.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from meshfleet.contract import search_attributes as sa
from meshfleet.dev.binaries import temporal_cli
from tests.helpers.cli_run import env_without_settings
from tests.helpers.eventually import NotYetError, eventually, eventually_value
from tests.helpers.fleet import SIM_TOKEN
from tests.helpers.paths import REPO
from tests.helpers.ports import free_port

ROOT = REPO


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without meshfleet, ASM, IAM or Temporal settings, plus extra."""
    env = env_without_settings(**extra)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def spawn(
    argv: list[str], log_path: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session, its output appended to ``log_path``.

    Starting a process does not wait for it, so async callers may use this as it is.
    """
    with log_path.open("ab") as log:
        return subprocess.Popen(
            argv,
            env=dict(env) if env is not None else None,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


async def _exit_code(proc: subprocess.Popen[bytes], limit_s: float) -> int:
    # Poll rather than block: the event loop of the test also serves the simulator.
    code = await eventually_value(
        proc.poll, lambda c: c is not None, limit_s, f"pid {proc.pid} exits", interval=0.02
    )
    assert code is not None
    return code


@dataclass
class WorkerProcess:
    """``python worker.py`` as its own process, its log lines in ``log_path``."""

    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        """The worker's process id (its Temporal identity starts with it)."""
        return self.proc.pid

    def kill(self) -> int:
        """SIGKILL: no drain, no goodbye to the server; the exit status."""
        os.kill(self.pid, signal.SIGKILL)
        return self.proc.wait()

    async def terminate(self, limit_s: float) -> tuple[int, float]:
        """SIGTERM, then wait for the exit: (exit status, seconds from signal to exit)."""
        sent = time.monotonic()
        os.kill(self.pid, signal.SIGTERM)
        code = await _exit_code(self.proc, limit_s)
        return code, time.monotonic() - sent

    def log(self) -> str:
        """Everything the worker wrote to standard output and standard error so far."""
        return self.log_path.read_text(errors="replace")


def worker_env(
    address: str,
    task_queue: str,
    asm_url: str,
    credentials: Mapping[str, str] | None = None,
    **settings: str,
) -> dict[str, str]:
    """The environment of a production worker for the dev server at ``address``."""
    creds = dict(credentials) if credentials is not None else {"ASM_AUTH_TOKEN": SIM_TOKEN}
    return clean_env(
        TEMPORAL_ADDRESS=address,
        TEMPORAL_NAMESPACE="default",
        MESHFLEET_TASK_QUEUE=task_queue,
        ASM_ENDPOINT=asm_url,
        MESHFLEET_LOG_FORMAT="json",
        **creds,
        **settings,
    )


def spawn_worker(
    temporal: WorkflowEnvironment, task_queue: str, asm_url: str, **settings: str
) -> subprocess.Popen[bytes]:
    """``python worker.py`` for ``temporal``'s dev server, as its own process, output discarded."""
    env = worker_env(temporal.client.service_client.config.target_host, task_queue, asm_url)
    return subprocess.Popen(
        [sys.executable, str(ROOT / "worker.py")],
        env=env | settings,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@asynccontextmanager
async def worker_process(
    client: Client, env: Mapping[str, str], log_path: Path, *, ready_s: float = 30
) -> AsyncIterator[WorkerProcess]:
    """Start ``python worker.py``; yield once it polls its task queue; SIGKILL it on exit."""
    proc = spawn([sys.executable, str(ROOT / "worker.py")], log_path, env)
    worker = WorkerProcess(proc, log_path)
    try:
        await wait_for_poller(client, env["MESHFLEET_TASK_QUEUE"], worker, ready_s)
        yield worker
    finally:
        _stop(proc)


async def wait_for_poller(
    client: Client, task_queue: str, worker: WorkerProcess, limit_s: float
) -> None:
    """Return once this very worker (not an earlier one) polls ``task_queue`` for workflows."""
    request = DescribeTaskQueueRequest(
        namespace=client.namespace,
        task_queue=TaskQueue(name=task_queue),
        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    )
    identity = f"{worker.pid}@"

    async def polling() -> bool:
        if worker.proc.poll() is not None:
            raise RuntimeError(f"worker exited with {worker.proc.returncode}:\n{worker.log()}")
        pollers = (await client.workflow_service.describe_task_queue(request)).pollers
        return any(p.identity.startswith(identity) for p in pollers)

    await eventually(polling, limit_s, f"worker {worker.pid} polls {task_queue}", interval=0.1)


class DevServer:
    """``temporal server start-dev`` on a SQLite file (WAL), stoppable and restartable."""

    def __init__(self, db_path: Path, log_path: Path, port: int | None = None) -> None:
        self.db_path = db_path
        self.log_path = log_path
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """host:port of the gRPC frontend."""
        return f"127.0.0.1:{self.port}"

    def _argv(self) -> list[str]:
        # The embedded stack's flags (meshfleet/dev/stack.py): WAL + synchronous=normal.
        return [
            str(temporal_cli()),
            "server",
            "start-dev",
            "--db-filename",
            str(self.db_path),
            "--sqlite-pragma",
            "journal_mode=wal",
            "--sqlite-pragma",
            "synchronous=normal",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--http-port",
            str(free_port()),
            "--metrics-port",
            str(free_port()),
            "--headless",
            "--log-level",
            "warn",
            *sa.dev_server_flags(),
        ]

    async def start(self, ready_s: float = 60) -> Client:
        """Start the server; return a client once it answers."""
        proc = self.proc = spawn(self._argv(), self.log_path)

        async def answering() -> Client:
            if proc.poll() is not None:
                raise ProcessLookupError(f"temporal exited with {proc.returncode}")
            try:
                client = await Client.connect(self.address, data_converter=pydantic_data_converter)
                await client.count_workflows()  # the namespace answers, not only the port
            except Exception as err:
                # Refused or not ready yet: the server is still starting.
                raise NotYetError(err) from err
            return client

        return await eventually_value(
            answering, lambda _: True, ready_s, f"dev server on {self.address}", interval=0.2
        )

    async def stop(self, limit_s: float = 30) -> tuple[int, float]:
        """SIGTERM and wait: (exit status, seconds it took)."""
        assert self.proc is not None
        sent = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = await _exit_code(self.proc, limit_s)
        return code, time.monotonic() - sent

    def kill(self) -> None:
        """SIGKILL if still running (the finally of every test that starts one)."""
        if self.proc is not None:
            _stop(self.proc)


@contextmanager
def dev_server(db_path: Path, log_path: Path) -> Iterator[DevServer]:
    """A ``DevServer`` (not yet started) that is killed when the block ends."""
    server = DevServer(db_path, log_path)
    try:
        yield server
    finally:
        server.kill()
