"""The embedded dev stack: Temporal dev server, ASM simulator and worker, started and stopped.

The stack itself: the order its children start in, how each is known to be ready, and the
order they stop in. Its parts live beside it: ``config`` (ports and paths), ``binaries`` (the
Temporal CLI), ``ports``, ``processes`` (process groups, markers), ``environment`` (what the
children inherit), ``state`` (the files of the state directory) and ``signals``.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import secrets
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError

from meshfleet.contract import search_attributes as sa
from meshfleet.dev.binaries import temporal_cli
from meshfleet.dev.config import HOST, StackConfig
from meshfleet.dev.environment import without_real_systems
from meshfleet.dev.errors import DevStackError
from meshfleet.dev.ports import answers_http, check_ports_free
from meshfleet.dev.processes import (
    MARKER_ENV,
    Child,
    alive,
    has_marker,
    log_tail,
    spawn,
    stop_child,
    stop_group,
)
from meshfleet.dev.signals import handling_stop_signals
from meshfleet.dev.state import (
    StackRecord,
    drop_record,
    read_record,
    remove_database,
    write_client_files,
    write_record,
)
from meshfleet.rollouts import register_search_attributes, search_attributes_registered


class DevStack:
    """The three children of the embedded stack, started in order and stopped in reverse.

    Each child runs in its own session (so its own process group): a Ctrl-C on the terminal
    reaches only this process, which then stops the worker first (it drains), then Temporal,
    then the simulator, and every grandchild with its group.
    """

    def __init__(self, config: StackConfig | None = None) -> None:
        self.config = config or StackConfig()
        # A fresh random token per run: the simulator accepts only it, and only this stack's
        # worker and clients know it.
        self.token = secrets.token_urlsafe(24)
        self._children: list[Child] = []
        self._atexit = False
        self._marker = ""
        self._wrote_record = False

    # --- what the stack offers -----------------------------------------------------------------

    def client_env(self) -> dict[str, str]:
        """What a meshfleet CLI or worker needs to use this stack (added to a clean environment)."""
        cfg = self.config
        return {
            "TEMPORAL_ADDRESS": cfg.temporal_address,
            "TEMPORAL_NAMESPACE": cfg.namespace,
            "TEMPORAL_CONFIG_FILE": str((cfg.state_dir / "temporal.toml").resolve()),
            "MESHFLEET_TASK_QUEUE": cfg.task_queue,
            "MESHFLEET_UI_URL": cfg.ui_url,
            "ASM_ENDPOINT": cfg.simulator_url,
            "ASM_AUTH_TOKEN": self.token,
        }

    def child_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """``base`` (the process environment) without real credentials, plus ``client_env``."""
        env = without_real_systems(os.environ if base is None else base)
        env.update(self.client_env())
        env["PYTHONUNBUFFERED"] = "1"
        env[MARKER_ENV] = self._marker or str(self.config.state_dir.resolve())
        return env

    def pids(self) -> list[int]:
        """Pids of the children started so far (each leads its own process group)."""
        return [child.process.pid for child in self._children]

    def log_paths(self) -> dict[str, Path]:
        """Each child's log file."""
        return {child.name: child.log_path for child in self._children}

    def dead_child(self) -> tuple[str, int, Path] | None:
        """The first child that has exited on its own: name, exit code, log file."""
        for child in self._children:
            code = child.process.poll()
            if code is not None:
                return child.name, code, child.log_path
        return None

    # --- start ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Start Temporal, the simulator and the worker; return once each one answers.

        Raises:
            MissingExtraError: the Temporal CLI is not installed (nothing was started).
            PortInUseError: a port is taken (nothing was started).
            DevStackError: a child did not come up; everything started is stopped again.
        """
        cfg = self.config
        cli = temporal_cli()
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        self._marker = str(cfg.state_dir.resolve())
        self._stop_leftovers()
        check_ports_free(cfg.ports())
        if not self._atexit:
            # os._exit skips atexit, so callers stop the stack in a finally; this catches an
            # ordinary interpreter exit that bypassed it.
            atexit.register(self.stop)
            self._atexit = True
        try:
            cfg.log_dir.mkdir(parents=True, exist_ok=True)
            if cfg.fresh_db:
                remove_database(cfg.db_path)
            write_client_files(cfg, self.client_env())
            # The simulator binds its port first: the dev server picks several ports of its own
            # from the ephemeral range as it starts, and could otherwise take the simulator's.
            self._spawn("simulator", self._simulator_args())
            self._wait_for_simulator()
            self._spawn("temporal", [str(cli), *self._temporal_args()])
            asyncio.run(self._wait_for_temporal())
            # The installed package's own command, as operators run it: no path to find.
            self._spawn("worker", [sys.executable, "-m", "meshfleet", "worker"])
            asyncio.run(self._wait_for_worker())
        except BaseException:
            self.stop()
            raise

    def _temporal_args(self) -> list[str]:
        cfg = self.config
        return [
            "server",
            "start-dev",
            "--db-filename",
            str(cfg.db_path.resolve()),
            # WAL + synchronous=normal: 17.3 workflows/s against 7.6 with the default journal on
            # two cores (docs/performance.md), and still durable across a crash of the process.
            "--sqlite-pragma",
            "journal_mode=wal",
            "--sqlite-pragma",
            "synchronous=normal",
            "--ip",
            HOST,
            "--port",
            str(cfg.temporal_port),
            "--ui-port",
            str(cfg.ui_port),
            "--namespace",
            cfg.namespace,
            "--log-level",
            "warn",
            # No newsfeed fetch: the UI must not reach out to the internet from a dev machine.
            "--ui-disable-news-fetch",
            *sa.dev_server_flags(),
        ]

    def _simulator_args(self) -> list[str]:
        cfg = self.config
        return [
            sys.executable,
            "-m",
            "meshfleet.simulator",
            "--port",
            str(cfg.simulator_port),
            "--create-seconds",
            f"{cfg.create_seconds:g}",
        ]

    def _spawn(self, name: str, argv: list[str]) -> None:
        env = self.child_env()
        if name == "worker":
            # Stop quickly: a dev worker has nothing in flight worth a 30 s drain.
            env.setdefault("MESHFLEET_GRACEFUL_SHUTDOWN", "3")
        self._children.append(spawn(name, argv, self.config.log_dir / f"{name}.log", env))
        children = {child.name: child.process.pid for child in self._children}
        write_record(self.config.state_dir, StackRecord(os.getpid(), children))
        self._wrote_record = True

    def _failed(self, name: str, problem: str) -> DevStackError:
        log_path = self.config.log_dir / f"{name}.log"
        tail = log_tail(log_path)
        return DevStackError(
            f"{name} {problem}; its log is {log_path}" + (f":\n{tail}" if tail else "")
        )

    def _check_running(self, name: str) -> None:
        for child in self._children:
            if child.name == name and child.process.poll() is not None:
                raise self._failed(name, f"exited with code {child.process.returncode}")

    async def _connect(self) -> Client:
        cfg = self.config
        deadline = time.monotonic() + cfg.ready_timeout_s
        while True:
            self._check_running("temporal")
            try:
                return await Client.connect(cfg.temporal_address, namespace=cfg.namespace)
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise self._failed(
                        "temporal",
                        f"did not answer on {cfg.temporal_address} within "
                        f"{cfg.ready_timeout_s:g} s",
                    ) from None
                await asyncio.sleep(0.2)

    async def _wait_for_temporal(self) -> None:
        client = await self._connect()
        # The server registers --search-attribute flags only when it creates the database, so
        # a database from an older meshfleet may lack a newer attribute: add what is missing.
        deadline = time.monotonic() + self.config.ready_timeout_s
        while True:
            try:
                await register_search_attributes(client)
                if await search_attributes_registered(client):
                    return
                problem = "did not register the search attributes"
            except RPCError as exc:  # the namespace may still be initialising
                problem = f"refused the search attributes: {exc}"
            if time.monotonic() > deadline:
                raise self._failed("temporal", problem)
            await asyncio.sleep(0.2)

    def _wait_for_simulator(self) -> None:
        cfg = self.config
        deadline = time.monotonic() + cfg.ready_timeout_s
        while not answers_http(HOST, cfg.simulator_port):
            self._check_running("simulator")
            if time.monotonic() > deadline:
                raise self._failed(
                    "simulator",
                    f"did not answer on {cfg.simulator_url} within {cfg.ready_timeout_s:g} s",
                )
            time.sleep(0.1)

    async def _wait_for_worker(self) -> None:
        cfg = self.config
        client = await self._connect()
        request = DescribeTaskQueueRequest(
            namespace=cfg.namespace,
            task_queue=TaskQueue(name=cfg.task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
        deadline = time.monotonic() + cfg.ready_timeout_s
        # Polling the task queue proves the worker is connected, not merely that it started.
        while not (await client.workflow_service.describe_task_queue(request)).pollers:
            self._check_running("worker")
            if time.monotonic() > deadline:
                raise self._failed(
                    "worker",
                    f"did not poll task queue {cfg.task_queue} within {cfg.ready_timeout_s:g} s",
                )
            await asyncio.sleep(0.2)

    # --- stop ----------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop every child, newest first: SIGTERM to its group, SIGKILL after the grace period.

        Safe to call twice and from a signal handler's aftermath; a second Ctrl-C while it runs
        skips the remaining grace and kills at once.
        """
        hurry = False

        def _hurry(signum: int, frame: FrameType | None) -> None:
            nonlocal hurry
            hurry = True

        with handling_stop_signals(_hurry):
            while self._children:
                child = self._children.pop()
                stop_child(child.process, self.config.stop_grace_s, lambda: hurry)
                child.log_file.close()
        if self._wrote_record:
            # Only the stack that wrote it may drop it: another stack may own this directory.
            drop_record(self.config.state_dir)
            self._wrote_record = False

    def _stop_leftovers(self) -> None:
        # A stack whose parent was SIGKILLed leaves its children running: they carry our
        # marker, so stop exactly those (and nothing else) before checking the ports. A stack
        # whose parent still runs is in use, and two Temporal servers on one database would
        # corrupt it: refuse.
        record = read_record(self.config.state_dir)
        if record is None:
            return
        running = {
            name: pid
            for name, pid in record.children.items()
            if alive(pid) and has_marker(pid, self._marker)
        }
        if running and alive(record.owner):
            raise DevStackError(
                f"{self.config.state_dir} is in use by process {record.owner} (another "
                "`meshfleet dev` or `meshfleet demo`?): stop it, or choose another --state-dir"
            )
        for name, pid in running.items():
            print(f"meshfleet: stopping {name} (pid {pid}) left over from an earlier run")
            stop_group(pid, self.config.stop_grace_s)
        drop_record(self.config.state_dir)

    def __enter__(self) -> DevStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
