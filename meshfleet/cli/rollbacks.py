"""``meshfleet rollback``: delete exactly the meshes a rollout created, or show what it would."""

from __future__ import annotations

import os
from collections import Counter

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from meshfleet import rollouts
from meshfleet.asm.auth import auth_from_env
from meshfleet.asm.client import AsmClient
from meshfleet.asm.errors import AsmConnectionError, AsmError, AsmValidationError
from meshfleet.cli.exit_codes import CommandError, ExitCode
from meshfleet.cli.output import (
    aligned,
    not_rolled_back_counts,
    not_rolled_back_text,
    report_document,
)
from meshfleet.cli.rollouts import (
    check_rollout_id,
    emit_json,
    fetch_progress,
    note,
    ui_address,
    watch,
)
from meshfleet.manifest.schedule import count_of
from meshfleet.rollback import (
    PlannedDeletion,
    RollbackRefusedError,
    RolloutRecords,
    plan_rollback,
    read_records,
    start_rollback,
)
from meshfleet.rollout_identity import ROLLBACK_RESTARTABLE
from meshfleet.settings import Settings


async def _records(client: Client, rollout_id: str) -> RolloutRecords:
    try:
        return await read_records(client, rollout_id)
    except RollbackRefusedError as exc:
        raise CommandError(ExitCode.INVALID, f"cannot roll back: {exc}") from exc


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
    rid = check_rollout_id(rollout_id)
    existing = await _existing(client, rid)
    # A rollback that runs or completed is attached to; after one that stopped short (failed,
    # cancelled, terminated, timed out) a new run deletes what is still there.
    if existing is not None and existing not in ROLLBACK_RESTARTABLE:
        state = existing.name.lower()
        note(
            f"the rollback of rollout {rid} already exists ({state}): attached, nothing new started"
        )
    else:
        records = await _records(client, rid)
        started = await start_rollback(client, records, task_queue=settings.task_queue)
        left = records.not_rolled_back()
        note(
            f"{'started' if started.started else 'attached to'} the rollback of rollout {rid}: "
            f"{count_of(len(records.created()), 'mesh')} it created to delete"
            + (f"; left alone: {not_rolled_back_text(left)}" if left else "")
        )
    note(f"Temporal UI: {ui_address(client, settings, rid, rollback=True)}")
    if not await rollouts.has_workers(client, settings.task_queue):
        note(
            f"no worker is polling task queue {settings.task_queue!r}: the rollback waits "
            "until one starts (`meshfleet worker`)"
        )
    if wait:
        return await watch(client, settings, rid, as_json=as_json, rollback=True)
    if as_json:
        emit_json(report_document(await fetch_progress(client, settings, rid, rollback=True)))
    return ExitCode.OK


async def plan(client: Client, settings: Settings, rollout_id: str, *, as_json: bool) -> int:
    """What a rollback would delete and keep, and why; nothing changes."""
    rid = check_rollout_id(rollout_id)
    records = await _records(client, rid)
    try:
        async with AsmClient(
            auth_from_env(os.environ),
            endpoint=settings.asm_endpoint,
            request_timeout=settings.asm_request_timeout_s,
        ) as api:
            planned = await plan_rollback(api, records)
    except AsmValidationError as exc:  # missing credentials, a malformed ASM_ENDPOINT
        raise CommandError(ExitCode.INVALID, str(exc)) from exc
    except AsmConnectionError as exc:
        raise CommandError(ExitCode.UNREACHABLE, f"ASM unreachable: {exc}") from exc
    except AsmError as exc:
        raise CommandError(ExitCode.FAILED, f"a list call was refused: {exc}") from exc
    counts = Counter(p.action for p in planned)
    if as_json:
        emit_json(
            {
                "rollout_id": rid,
                "delete": counts["delete"],
                "gone": counts["gone"],
                "keep": counts["keep"],
                "leave": counts["leave"],
                "not_rolled_back": not_rolled_back_counts(records.not_rolled_back()),
                "targets": [_planned_entry(p) for p in planned],
            }
        )
    else:
        print("\n".join(plan_lines(planned)), flush=True)
        note(
            f"rollback of {rid}: {counts['delete']} to delete, {counts['gone']} gone already, "
            f"{counts['keep']} kept (re-created since), {counts['leave']} left alone (the "
            "rollout did not create them); nothing was changed"
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
    """Aligned lines, one per target of the rollout, in the order the rollback deletes."""
    header = ("ACTION", "REGION", "PROJECT", "MESH", "WHY")
    rows = [header] + [
        (p.action, p.target.region, p.target.project_id, p.target.mesh_name, p.reason)
        for p in planned
    ]
    return aligned(rows)
