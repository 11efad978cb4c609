"""``meshfleet dev`` and ``meshfleet demo``: the embedded stack for people at a terminal."""

from __future__ import annotations

import asyncio
import os
import shlex
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, TextIO

from meshfleet.asm.auth import StaticTokenAuth
from meshfleet.asm.client import AsmClient
from meshfleet.asm.errors import AsmError
from meshfleet.asm.regions import extra_regions_of
from meshfleet.cli.exit_codes import ExitCode, print_error
from meshfleet.contract.payloads import rollout_workflow_id
from meshfleet.dev.binaries import temporal_cli
from meshfleet.dev.config import (
    DEFAULT_CREATE_SECONDS,
    DEFAULT_SIMULATOR_PORT,
    DEFAULT_STATE_DIR,
    DEFAULT_TEMPORAL_PORT,
    DEFAULT_UI_PORT,
    StackConfig,
)
from meshfleet.dev.errors import DevStackError, MissingExtraError, PortInUseError
from meshfleet.dev.processes import processes_of
from meshfleet.dev.signals import interruptible
from meshfleet.dev.stack import DevStack
from meshfleet.manifest.load import ManifestError, load_manifest
from meshfleet.manifest.schedule import count_of
from meshfleet.models import MeshTarget
from meshfleet.rollouts import ui_url

DEFAULT_MANIFEST: Final = "examples/fleet.yaml"
# The exit code of a process ended by SIGINT, by shell convention (128 + 2).
INTERRUPTED: Final = 130


def _say(out: TextIO, text: str = "") -> None:
    print(text, file=out, flush=True)


def _meshfleet_argv() -> list[str]:
    # The console script beside this Python; without it (an unusual install) the same entry
    # point through the interpreter.
    script = Path(sysconfig.get_path("scripts")) / "meshfleet"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from meshfleet.cli.app import main; main()"]


def _banner(stack: DevStack, out: TextIO) -> None:
    cfg = stack.config
    logs = stack.log_paths()
    width = max(len(name) for name in logs)
    _say(out, f"  Temporal      {cfg.temporal_address}  (namespace {cfg.namespace})")
    _say(out, f"  Temporal UI   {cfg.ui_url}")
    _say(
        out,
        f"  ASM simulator {cfg.simulator_url}  (meshes become Running after "
        f"{cfg.create_seconds:g} s)",
    )
    _say(out, f"  Worker        task queue {cfg.task_queue}")
    _say(out, f"  Database      {cfg.db_path}  (SQLite, WAL)")
    _say(out, "  Logs")
    for name, path in logs.items():
        _say(out, f"    {name.ljust(width)}  {path}")


def _stop(stack: DevStack, out: TextIO) -> None:
    _say(out, "Stopping the worker, Temporal and the simulator ...")
    stack.stop()
    left = processes_of(stack.config.state_dir)
    if left:
        print_error(f"still running after stop: pids {left}", stream=out)
    else:
        _say(out, "Stopped; no process left behind.")


def _config(
    state_dir: Path,
    temporal_port: int,
    ui_port: int,
    simulator_port: int,
    create_seconds: float,
    *,
    demo: bool,
) -> StackConfig:
    return StackConfig(
        state_dir=state_dir,
        temporal_port=temporal_port,
        ui_port=ui_port,
        simulator_port=simulator_port,
        create_seconds=create_seconds,
        # The demo starts from an empty database each time: a rollout left half-done by an
        # interrupted demo would otherwise resume and hold the same mesh workflow ids.
        db_name="demo.db" if demo else "temporal.db",
        fresh_db=demo,
    )


def _start(stack: DevStack, out: TextIO, err: TextIO) -> int | None:
    """Start the stack; an exit code if it could not start."""
    try:
        # Before anything is said to start: without the devstack extra nothing can.
        temporal_cli()
        _say(out, "Starting Temporal (dev server), the ASM simulator and a meshfleet worker ...")
        started = time.monotonic()
        stack.start()
    except (MissingExtraError, PortInUseError) as exc:
        # Nothing was started, and trying again will not help until the setup changes.
        print_error(str(exc), stream=err)
        return ExitCode.INVALID
    except DevStackError as exc:
        print_error(str(exc), stream=err)
        return ExitCode.UNREACHABLE
    _say(out, f"Up in {time.monotonic() - started:.1f} s:")
    _banner(stack, out)
    return None


def _watch(stack: DevStack, err: TextIO, done: Callable[[], bool]) -> int | None:
    """Wait until ``done``; an exit code if a child of the stack died meanwhile."""
    while not done():
        dead = stack.dead_child()
        if dead is not None:
            name, code, log = dead
            print_error(f"the {name} exited with code {code}; its log is {log}", stream=err)
            return ExitCode.UNREACHABLE
        time.sleep(0.2)
    return None


async def _phases(stack: DevStack, targets: list[MeshTarget]) -> list[str | None]:
    """Each target's mesh phase as the simulator has it (None: no such mesh)."""
    found: dict[tuple[str, str], str | None] = {}
    async with AsmClient(StaticTokenAuth(stack.token), endpoint=stack.config.simulator_url) as api:
        for project_id, region in sorted({(t.project_id, t.region) for t in targets}):
            for mesh in await api.meshes(project_id, region):
                found[(project_id, mesh.metadata.name)] = mesh.phase
    return [found.get((t.project_id, t.mesh_name)) for t in targets]


def _check_meshes(stack: DevStack, manifest: str, out: TextIO, err: TextIO) -> bool:
    """Print every target's phase from the ASM side; whether all of them are Running."""
    try:
        targets = list(load_manifest(manifest, extra_regions=extra_regions_of(os.environ)).targets)
        phases = asyncio.run(_phases(stack, targets))
    except (ManifestError, AsmError, ValueError) as exc:
        print_error(f"could not list the meshes in the simulator: {exc}", stream=err)
        return False
    running = sum(phase == "Running" for phase in phases)
    _say(out)
    # Read back from the ASM API, not from Temporal: the demo proves the meshes exist.
    _say(out, f"ASM simulator: {running} of {count_of(len(targets), 'mesh')} Running")
    width = max(len(phase or "missing") for phase in phases)
    for target, phase in zip(targets, phases, strict=True):
        _say(
            out,
            f"  {(phase or 'missing').ljust(width)}  {target.region:<16} {target.project_id}  "
            f"{target.mesh_name}",
        )
    return running == len(targets)


def run_dev(
    *,
    state_dir: Path = DEFAULT_STATE_DIR,
    temporal_port: int = DEFAULT_TEMPORAL_PORT,
    ui_port: int = DEFAULT_UI_PORT,
    simulator_port: int = DEFAULT_SIMULATOR_PORT,
    create_seconds: float = DEFAULT_CREATE_SECONDS,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Start the embedded stack and keep it up until Ctrl-C (or SIGTERM); stop it on any exit.

    Returns:
        0 after Ctrl-C; 2 when a port is taken or the devstack extra is missing; 3 when the
        stack did not come up or a part of it died.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    stack = DevStack(
        _config(state_dir, temporal_port, ui_port, simulator_port, create_seconds, demo=False)
    )
    with interruptible():
        try:
            code = _start(stack, out, err)
            if code is not None:
                return code
            env_file = stack.config.state_dir / "dev.env"
            _say(out)
            _say(out, "Use it from another terminal:")
            _say(out, f"  source {env_file}")
            _say(out, f"  {shlex.join(_meshfleet_argv())} start {DEFAULT_MANIFEST} --wait")
            _say(out, f"({env_file} exports {', '.join(stack.client_env())}.)")
            _say(out)
            _say(out, "Ctrl-C stops everything.")
            return _watch(stack, err, lambda: False) or ExitCode.OK
        except KeyboardInterrupt:
            _say(out)
            return ExitCode.OK
        finally:
            _stop(stack, out)


def run_demo(
    manifest: str = DEFAULT_MANIFEST,
    *,
    state_dir: Path = DEFAULT_STATE_DIR,
    temporal_port: int = DEFAULT_TEMPORAL_PORT,
    ui_port: int = DEFAULT_UI_PORT,
    simulator_port: int = DEFAULT_SIMULATOR_PORT,
    create_seconds: float = DEFAULT_CREATE_SECONDS,
    rollout_id: str | None = None,
    keep: bool = False,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Start the stack, roll out ``manifest`` with a live progress bar, and stop everything.

    The rollout runs as ``meshfleet start MANIFEST --rollout-id ID --wait`` in a child process:
    the demo shows exactly the command a release pipeline runs, with its own progress display,
    report and exit codes (and its own ``flush_and_exit`` ending: docs/operations.md, "Exiting
    after using the Temporal client").

    Args:
        manifest: The fleet to roll out.
        rollout_id: Defaults to ``demo-<UTC time>``, a new rollout each run.
        keep: Keep the stack up after the report (to browse the UI) until Ctrl-C.

    Returns:
        The rollout's exit code (0: every target Running); 2 when a port is taken or the
        devstack extra is missing; 3 when the stack did not come up or died; 130 when
        interrupted.
    """
    out = out or sys.stdout
    err = err or sys.stderr
    rollout_id = rollout_id or f"demo-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    stack = DevStack(
        _config(state_dir, temporal_port, ui_port, simulator_port, create_seconds, demo=True)
    )
    started = time.monotonic()
    cli: subprocess.Popen[bytes] | None = None
    result: int | None = None
    with interruptible():
        try:
            code = _start(stack, out, err)
            if code is not None:
                return code
            argv = [*_meshfleet_argv(), "start", manifest, "--rollout-id", rollout_id, "--wait"]
            _say(out)
            _say(out, f"$ meshfleet start {manifest} --rollout-id {rollout_id} --wait")
            cli = subprocess.Popen(argv, env=stack.child_env())  # noqa: S603 - built here
            died = _watch(stack, err, lambda: cli is None or cli.poll() is not None)
            if died is not None:
                return died
            result = cli.returncode
            if result in (ExitCode.OK, ExitCode.FAILED):
                all_running = _check_meshes(stack, manifest, out, err)
                if result == ExitCode.OK and not all_running:
                    print_error("the rollout reported success, yet not every mesh runs", stream=err)
                    result = ExitCode.FAILED
            page = ui_url(
                stack.config.ui_url, stack.config.namespace, rollout_workflow_id(rollout_id)
            )
            _say(out)
            _say(
                out,
                f"Rollout {rollout_id}: exit code {result}, "
                f"{time.monotonic() - started:.1f} s from start to report.",
            )
            if keep:
                _say(out, f"Temporal UI: {page}")
                _say(out, "The stack stays up for the UI; Ctrl-C stops everything.")
                _watch(stack, err, lambda: False)
            else:
                # The stack stops below, and its database with it: a link would lead nowhere.
                _say(
                    out,
                    "The stack stops now. To browse the rollout in the Temporal UI, run "
                    "`make demo ARGS=--keep` (or `meshfleet demo --keep`): the stack then stays "
                    "up until Ctrl-C.",
                )
            return result
        except KeyboardInterrupt:
            _say(out)
            # After the report, Ctrl-C is how --keep ends: the rollout's code still stands.
            return result if result is not None else INTERRUPTED
        finally:
            if cli is not None and cli.poll() is None:
                cli.terminate()
                try:
                    cli.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    cli.kill()
                    cli.wait()
            _stop(stack, out)
