"""``meshfleet start``, ``wait``, ``status`` and ``report``: a rollout started, watched and looked
at through Temporal."""

from __future__ import annotations

from typing import Annotated

import typer
from temporalio.client import Client, WorkflowExecutionStatus

from meshfleet import rollouts
from meshfleet.cli.core import Command
from meshfleet.cli.emit import emit_json, emit_lines, note
from meshfleet.cli.exit_codes import ExitCode
from meshfleet.cli.manifests import read_manifest
from meshfleet.cli.on_rollout import RolloutCommand
from meshfleet.cli.output import progress_line, report_document, rollout_exit_code
from meshfleet.cli.params import JsonFlag, ManifestFile, RolloutIdOption
from meshfleet.cli.temporal import run_with_temporal
from meshfleet.cli.watching import (
    describe,
    ended,
    fetch_progress,
    print_report,
    ui_address,
    watch,
)
from meshfleet.manifest.schedule import count_of
from meshfleet.models import RolloutProgress, RolloutSpec
from meshfleet.settings import Settings


async def start(
    client: Client, settings: Settings, spec: RolloutSpec, *, wait: bool, as_json: bool
) -> int:
    """Start the rollout, or attach to the one with the same id; with ``wait``, watch it end."""
    started = await rollouts.start_rollout(client, spec, task_queue=settings.task_queue)
    if started.started:
        note(f"started rollout {spec.rollout_id}: {count_of(len(spec.targets))}")
    else:
        desc = await describe(client, spec.rollout_id)
        state = (
            "running"
            if desc.status == WorkflowExecutionStatus.RUNNING
            else await ended(client, spec.rollout_id, desc)
        )
        note(f"rollout {spec.rollout_id} already exists ({state}): attached, nothing new started")
    note(f"Temporal UI: {ui_address(client, settings, spec.rollout_id)}")
    if not started.search_attributes:
        note(
            "search attributes are not registered, so the UI cannot filter by rollout: "
            "`meshfleet search-attributes --register`"
        )
    if not await rollouts.has_workers(client, settings.task_queue):
        note(
            f"no worker is polling task queue {settings.task_queue!r}: the rollout waits "
            "until one starts (`meshfleet worker`)"
        )
    if not wait:
        if as_json:
            emit_json(report_document(await _start_progress(client, settings, spec, started)))
        return ExitCode.OK
    return await watch(client, settings, spec.rollout_id, as_json=as_json)


async def _start_progress(
    client: Client, settings: Settings, spec: RolloutSpec, started: rollouts.StartedRollout
) -> RolloutProgress:
    if not started.started:
        return await fetch_progress(client, settings, spec.rollout_id)
    # Just started: nothing has happened yet, and no worker needs to answer for that.
    return rollouts.started_report(spec)


async def wait(
    client: Client, settings: Settings, rollout_id: str, *, as_json: bool, rollback: bool = False
) -> int:
    """Attach to a rollout and watch it as ``start --wait`` does: same output, same exit codes."""
    desc = await describe(client, rollout_id, rollback=rollback)
    note(f"Temporal UI: {ui_address(client, settings, rollout_id, rollback=rollback)}")
    if desc.status == WorkflowExecutionStatus.RUNNING and not await rollouts.has_workers(
        client, desc.task_queue
    ):
        note(
            f"no worker is polling task queue {desc.task_queue!r}: the rollout waits "
            "until one starts (`meshfleet worker`)"
        )
    return await watch(client, settings, rollout_id, as_json=as_json, rollback=rollback)


async def status(
    client: Client, settings: Settings, rollout_id: str, *, as_json: bool, rollback: bool = False
) -> int:
    """One line on where the rollout stands."""
    progress = await fetch_progress(client, settings, rollout_id, rollback=rollback)
    if as_json:
        emit_json(report_document(progress))
    else:
        emit_lines([progress_line(progress)])
        note(f"Temporal UI: {ui_address(client, settings, rollout_id, rollback=rollback)}")
    return rollout_exit_code(progress)


async def report(
    client: Client, settings: Settings, rollout_id: str, *, as_json: bool, rollback: bool = False
) -> int:
    """The report (or the progress so far) with every failure."""
    progress = await fetch_progress(client, settings, rollout_id, rollback=rollback)
    print_report(progress, as_json=as_json)
    return rollout_exit_code(progress)


def start_command(
    file: ManifestFile,
    rollout_id: RolloutIdOption = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Watch until the rollout ends; exit by its outcome.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Start a rollout, or attach to the one with the same id.

    Attaching starts nothing new. The manifest is validated completely first; nothing starts if
    anything is wrong (exit 2). Prints the rollout's Temporal UI address. With --wait, shows
    live progress (a bar on a terminal, plain lines otherwise, on standard error) and prints
    the report when the rollout ends, or when it waits at an approval gate (exit 4; `meshfleet
    approve ROLLOUT_ID`, then `meshfleet wait ROLLOUT_ID`).
    """
    spec = read_manifest(file, rollout_id)
    run_with_temporal(
        lambda client, settings: start(client, settings, spec, wait=wait, as_json=as_json)
    )


LOOKS = (
    RolloutCommand(
        "wait",
        wait,
        "Watch a rollout as `start --wait` does.",
        """Attach to a rollout and watch it as `start --wait` does.

        The same progress, report and exit codes (4 when it waits at an approval gate; an ended
        rollout's report at once).
        """,
    ),
    RolloutCommand(
        "status",
        status,
        None,
        """Where a rollout stands, in one line.

        Exit 1 once a target failed or it halted; 4 while it waits at an approval gate.
        """,
    ),
    RolloutCommand(
        "report",
        report,
        "A rollout's report, with every failure.",
        "A rollout's report with every failure (its progress so far while it runs).",
    ),
)
"""``wait``, ``status`` and ``report``: each looks at one rollout, or its rollback."""


def register(app: typer.Typer) -> None:
    """Add ``start``, ``wait``, ``status`` and ``report`` to ``app``."""
    app.command(name="start", cls=Command)(start_command)
    for look in LOOKS:
        look.register(app)
