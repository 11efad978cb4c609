"""The embedded dev stack for real: Temporal dev server, simulator and worker as child processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

from meshfleet.asm.auth import StaticTokenAuth
from meshfleet.asm.client import AsmClient
from meshfleet.asm.errors import AsmAuthenticationError
from meshfleet.contract import search_attributes as sa
from meshfleet.dev.config import StackConfig
from meshfleet.dev.errors import DevStackError, PortInUseError
from meshfleet.dev.ports import check_ports_free
from meshfleet.dev.processes import processes_of
from meshfleet.dev.stack import DevStack
from meshfleet.manifest.load import load_manifest
from meshfleet.rollouts import registered_search_attributes
from meshfleet.temporal import connect
from tests.helpers.paths import REPO
from tests.helpers.ports import free_ports

PROJECT = "0123456789abcdef0123456789abcdef"
REGION = "ap-southeast-3"
ROOT = REPO


def stack_config(state_dir: Path) -> StackConfig:
    temporal, ui, simulator = free_ports(3)
    return StackConfig(
        state_dir=state_dir,
        temporal_port=temporal,
        ui_port=ui,
        simulator_port=simulator,
        create_seconds=0.5,
        ready_timeout_s=30,
    )


def alive(pid: int) -> bool:
    """Running, not merely a zombie waiting for init to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[DevStack]:
    dev = DevStack(stack_config(tmp_path / "state"))
    dev.start()
    try:
        yield dev
    finally:
        dev.stop()


async def _check_temporal(dev: DevStack) -> tuple[set[str], int]:
    # Through the same environment the CLI gets: TEMPORAL_* and the stack's temporal.toml.
    client = await connect(dev.client_env())
    names = await registered_search_attributes(client)
    described = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=dev.config.task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        )
    )
    return names, len(described.pollers)


async def _check_simulator(dev: DevStack) -> None:
    endpoint = dev.client_env()["ASM_ENDPOINT"]
    async with AsmClient(StaticTokenAuth(dev.token), endpoint=endpoint) as api:
        assert await api.meshes(PROJECT, REGION) == []
    async with AsmClient(StaticTokenAuth("not-the-dev-token"), endpoint=endpoint) as api:
        with pytest.raises(AsmAuthenticationError):
            await api.meshes(PROJECT, REGION)


def test_stack_answers_and_stops_without_leaving_a_process(stack: DevStack) -> None:
    cfg = stack.config
    pids = stack.pids()
    assert len(pids) == 3
    assert all(alive(pid) for pid in pids)
    assert sorted(processes_of(cfg.state_dir)) == sorted(pids)

    names, pollers = asyncio.run(_check_temporal(stack))
    assert names == {key.name for key in sa.ALL}
    assert pollers >= 1
    asyncio.run(_check_simulator(stack))
    # The database is a file in WAL mode, in the state dir.
    assert cfg.db_path.exists()
    assert Path(f"{cfg.db_path}-wal").exists()
    assert set(stack.log_paths()) == {"temporal", "simulator", "worker"}
    assert all(path.parent == cfg.log_dir for path in stack.log_paths().values())

    stack.stop()

    assert not [pid for pid in pids if alive(pid)]
    assert processes_of(cfg.state_dir) == []
    check_ports_free(cfg.ports())  # and every port is free again


def test_busy_port_is_named_and_nothing_starts(tmp_path: Path) -> None:
    cfg = stack_config(tmp_path / "state")
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", cfg.ui_port))
        holder.listen()
        dev = DevStack(cfg)

        with pytest.raises(PortInUseError) as caught:
            dev.start()

    message = str(caught.value)
    assert f"port {cfg.ui_port} (Temporal UI)" in message
    assert str(cfg.temporal_port) not in message
    assert "--ui-port" in message
    assert dev.pids() == []
    assert processes_of(cfg.state_dir) == []
    assert not cfg.db_path.exists()


def _run_dev(state_dir: Path, cfg: StackConfig) -> subprocess.Popen[str]:
    # SIGINT starts ignored, as in a process a script or CI started with `&`: Ctrl-C (or
    # `kill -INT`) must stop the stack all the same.
    code = (
        "import signal; signal.signal(signal.SIGINT, signal.SIG_IGN); "
        "import sys; from pathlib import Path; from meshfleet.dev.demo import run_dev; "
        f"sys.exit(run_dev(state_dir=Path({str(state_dir)!r}), temporal_port={cfg.temporal_port}, "
        f"ui_port={cfg.ui_port}, simulator_port={cfg.simulator_port}))"
    )
    return subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_for_line(process: subprocess.Popen[str], text: str, timeout_s: float = 45) -> str:
    """The output up to the first line holding ``text``; fails naming it after ``timeout_s``.

    A blocked ``readline`` cannot watch a clock, so a thread reads and this one waits on it.
    """
    stdout = process.stdout
    assert stdout is not None
    seen: list[str] = []
    found = threading.Event()

    def read() -> None:
        for line in stdout:  # ends at EOF: the process is gone
            seen.append(line)
            if text in line:
                found.set()
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout_s)
    if found.is_set():
        return "".join(seen)
    process.kill()
    pytest.fail(f"never printed {text!r} within {timeout_s:g} s; output:\n{''.join(seen)}")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_dev_stops_everything_on_ctrl_c_or_sigterm(tmp_path: Path, signum: int) -> None:
    state_dir = tmp_path / "state"
    cfg = stack_config(state_dir)
    dev = _run_dev(state_dir, cfg)
    try:
        banner = _wait_for_line(dev, "Ctrl-C stops everything")
        children = processes_of(state_dir)
        assert len(children) == 3
        assert f"127.0.0.1:{cfg.temporal_port}" in banner
        assert f"http://127.0.0.1:{cfg.ui_port}" in banner
        assert str(state_dir / "dev.env") in banner

        dev.send_signal(signum)
        # The stack may take its full design limit on a loaded machine: each of its three
        # children gets stop_grace_s before SIGKILL, so the test allows that plus a margin.
        out, _ = dev.communicate(timeout=3 * cfg.stop_grace_s + 15)
    finally:
        if dev.poll() is None:
            dev.kill()
            # Its children run in sessions of their own: a failed test must not leave them.
            for pid in processes_of(state_dir):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    assert dev.returncode == 0, out
    assert "no process left behind" in out
    assert not [pid for pid in children if alive(pid)]
    assert processes_of(state_dir) == []


def test_leftovers_of_a_killed_run_are_stopped_before_the_next_start(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    cfg = stack_config(state_dir)
    dev = _run_dev(state_dir, cfg)
    try:
        _wait_for_line(dev, "Ctrl-C stops everything")
        orphans = processes_of(state_dir)
        # SIGKILL leaves no chance to clean up: the children outlive their parent.
        dev.kill()
        dev.wait()
        assert all(alive(pid) for pid in orphans)

        again = DevStack(cfg)
        again.start()
        try:
            assert not [pid for pid in orphans if alive(pid)]
            assert sorted(processes_of(state_dir)) == sorted(again.pids())
        finally:
            again.stop()
    finally:
        for pid in processes_of(state_dir):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert processes_of(state_dir) == []


def test_a_state_dir_in_use_is_refused_and_left_alone(stack: DevStack) -> None:
    # Other ports, same directory: the database must not get a second server.
    other = DevStack(stack_config(stack.config.state_dir))

    with pytest.raises(DevStackError, match=f"in use by process {os.getpid()}"):
        other.start()
    other.stop()

    assert all(alive(pid) for pid in stack.pids())
    assert (stack.config.state_dir / "stack.json").exists()


def test_demo_rolls_out_the_example_fleet_and_leaves_nothing_behind(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    temporal, ui, simulator = free_ports(3)
    targets = load_manifest(ROOT / "examples" / "fleet.yaml").targets
    total = len(targets)
    started = time.monotonic()

    demo = subprocess.run(
        [
            sys.executable,
            "-m",
            "meshfleet",
            "demo",
            "--temporal-port",
            str(temporal),
            "--ui-port",
            str(ui),
            "--simulator-port",
            str(simulator),
            "--state-dir",
            str(state_dir),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    elapsed = time.monotonic() - started

    output = demo.stdout + demo.stderr
    assert demo.returncode == 0, output
    # The CLI's report counts every target Running; the simulator lists each of them Running.
    assert f"{total}/{total} done (created {total}, adopted 0, failed 0)" in output
    assert f"ASM simulator: {total} of {total} meshes Running" in demo.stdout
    for target in targets:
        line = rf"^\s+Running\s+{target.region}\s+{target.project_id}\s+{target.mesh_name}$"
        assert re.search(line, demo.stdout, re.MULTILINE), target.mesh_name
    link = f"http://127.0.0.1:{ui}/namespaces/default/workflows/rollout%2Fdemo-"
    assert link in demo.stderr  # while the rollout runs, from `meshfleet start`
    # After the report the stack stops: no link to a server that is gone, but how to keep it.
    after_report = demo.stdout.split("from start to report.", 1)[1]
    assert link not in after_report
    assert "make demo ARGS=--keep" in after_report
    assert "no process left behind" in demo.stdout
    assert processes_of(state_dir) == []
    assert elapsed < 120
