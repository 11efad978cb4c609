"""``meshfleet rollback``: delete exactly the meshes a rollout created, or show what it would."""

from __future__ import annotations

import os
from collections import Counter
from typing import Annotated

import typer
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from meshfleet import rollouts
from meshfleet.asm.auth import auth_from_env
from meshfleet.asm.client import AsmClient
from meshfleet.cli.core import Command
from meshfleet.cli.emit import emit_json, emit_lines, note
from meshfleet.cli.exit_codes import ExitCode
from meshfleet.cli.output import not_rolled_back_counts, not_rolled_back_text, report_document
from meshfleet.cli.params import RolloutIdArg, check_rollout_id
from meshfleet.cli.tables import plan_table
from meshfleet.cli.temporal import run_with_temporal
from meshfleet.cli.watching import fetch_progress, ui_address, watch
from meshfleet.manifest.schedule import count_of
from meshfleet.rollback import PlannedDeletion, plan_rollback, read_records, start_rollback
from meshfleet.rollout_identity import ROLLBACK_RESTARTABLE
from meshfleet.settings import Settings


async def _existing(client: Client, rollout_id: str) -> WorkflowExecutionStatus | None:
    try:
        desc = await rollouts.rollout_handle(client, rollout_id, rollback=True).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    return desc.status


async def rollback(
    client: Client, settings: Settings, rollout_id: str, *, wait: bool, as_json: bool
) -> int:
    """Start the rollback of a closed rollout (or attach to it); with ``wait``, watch it end."""
    existing = await _existing(client, rollout_id)
    # A rollback that runs or completed is attached to; after one that stopped short (failed,
    # cancelled, terminated, timed out) a new run deletes what is still there.
    if existing is not None and existing not in ROLLBACK_RESTARTABLE:
        state = existing.name.lower()
        note(
            f"the rollback of rollout {rollout_id} already exists ({state}): attached, "
            "nothing new started"
        )
    else:
        records = await read_records(client, rollout_id)
        started = await start_rollback(client, records, task_queue=settings.task_queue)
        left = records.not_rolled_back()
        verb = "started" if started.started else "attached to"
        note(
            f"{verb} the rollback of rollout {rollout_id}: "
            f"{count_of(len(records.created()), 'mesh')} it created to delete, "
            f"{len(records.undone()) - len(records.created())} it updated to restore"
            + (f"; left alone: {not_rolled_back_text(left)}" if left else "")
        )
    note(f"Temporal UI: {ui_address(client, settings, rollout_id, rollback=True)}")
    if not await rollouts.has_workers(client, settings.task_queue):
        note(
            f"no worker is polling task queue {settings.task_queue!r}: the rollback waits "
            "until one starts (`meshfleet worker`)"
        )
    if wait:
        return await watch(client, settings, rollout_id, as_json=as_json, rollback=True)
    if as_json:
        emit_json(
            report_document(await fetch_progress(client, settings, rollout_id, rollback=True))
        )
    return ExitCode.OK


async def plan(client: Client, settings: Settings, rollout_id: str, *, as_json: bool) -> int:
    """What a rollback would delete and keep, and why; nothing changes."""
    records = await read_records(client, rollout_id)
    async with AsmClient(
        auth_from_env(os.environ),
        endpoint=settings.asm_endpoint,
        request_timeout=settings.asm_request_timeout_s,
    ) as api:
        planned = await plan_rollback(api, records)
    counts = Counter(p.action for p in planned)
    if as_json:
        emit_json(
            {
                "rollout_id": rollout_id,
                "delete": counts["delete"],
                "restore": counts["restore"],
                "gone": counts["gone"],
                "keep": counts["keep"],
                "leave": counts["leave"],
                "not_rolled_back": not_rolled_back_counts(records.not_rolled_back()),
                "targets": [_planned_entry(p) for p in planned],
                "roll_back": counts["roll_back"],
            }
        )
    else:
        emit_lines(plan_lines(planned))
        note(
            f"rollback of {rollout_id}: {counts['delete']} to delete, "
            f"{counts['restore']} to restore, {counts['roll_back']} upgrade(s) to roll back, "
            f"{counts['gone']} gone already, "
            f"{counts['keep']} kept (re-created or changed since, or finalized), "
            f"{counts['leave']} left alone "
            "(the rollout neither created nor updated them); nothing was changed"
        )
    return ExitCode.OK


def _planned_entry(p: PlannedDeletion) -> dict[str, str | None]:
    t = p.target
    return {
        "project_id": t.project_id,
        "region": t.region,
        "cluster_id": t.cluster_id,
        "mesh_name": t.mesh_name,
        "uid": p.uid,
        "action": p.action,
        "reason": p.reason,
    }


def plan_lines(planned: list[PlannedDeletion]) -> list[str]:
    """The plan table of a rollback: a line per target of the rollout, in the order the
    rollback deletes, with what it would do and why."""
    return plan_table(((p.action, p.target, p.reason) for p in planned), "WHY")


def rollback_command(
    rollout_id: RolloutIdArg,
    wait: Annotated[
        bool, typer.Option("--wait", help="Show progress and print the report when it ends.")
    ] = False,
    plan_only: Annotated[
        bool,
        typer.Option(
            "--plan",
            help="Only show what would be deleted and what kept, and why; change nothing. "
            "Reads the ASM credentials like the worker.",
        ),
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="One JSON document: rollout_id, kind, state, total, deleted, kept, failed, "
            "pending, failures[], kept_meshes[], not_rolled_back{}; with --plan: rollout_id, "
            "delete, gone, keep, targets[{project_id, region, cluster_id, mesh_name, uid, "
            "action, reason}].",
        ),
    ] = False,
) -> None:
    """Delete exactly the meshes the rollout created, never one it adopted.

    Each by the uid recorded when it was created: a durable workflow (id rollback/ROLLOUT_ID)
    with the rollout's window, failure budget and waves in reverse (its canary last). Running
    it again attaches. A rollout that still runs is refused (cancel it first). Steer it with
    `pause|resume|cancel|status|report|wait ROLLOUT_ID --rollback`. Exit codes as `start`.
    """
    check_rollout_id(rollout_id)
    if plan_only:
        run_with_temporal(
            lambda client, settings: plan(client, settings, rollout_id, as_json=as_json)
        )
    else:
        run_with_temporal(
            lambda client, settings: rollback(
                client, settings, rollout_id, wait=wait, as_json=as_json
            )
        )


def register(app: typer.Typer) -> None:
    """Add ``rollback`` to ``app``."""
    app.command(
        name="rollback", cls=Command, short_help="Delete exactly the meshes a rollout created."
    )(rollback_command)
