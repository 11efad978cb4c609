"""A rollout id names one manifest: the digest kept with a rollout, and the check a start makes.

A pipeline that reuses a rollout id with another manifest must hear that nothing of the new
manifest will run, not "attached" and exit 0 for a release it never ran. So every rollout keeps
the digest of its normalized manifest (its strategy and its targets in rollout order) in its
memo, and ``start`` compares before anything is written. A rollout started before the memo
existed is judged by the digest of its first run's input, which holds the same two things.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from meshfleet.contract.deletion import rollback_workflow_id
from meshfleet.contract.payloads import RolloutInput, TargetPage, page_workflow_id
from meshfleet.models import MeshTarget, RolloutStrategy

MANIFEST_DIGEST = "manifest_digest"
"""The memo key of a rollout's manifest digest (visible in the Temporal UI's memo)."""

# Ended these ways, a rollout's id may start it again (same manifest): nothing of it finished.
RESTARTABLE = (WorkflowExecutionStatus.TERMINATED, WorkflowExecutionStatus.TIMED_OUT)

# A rollback that failed or was cancelled stopped short of deleting what the rollout created;
# run again, it deletes what is still there (by uid, so nothing twice). Only a completed one
# stands.
ROLLBACK_RESTARTABLE = (
    WorkflowExecutionStatus.FAILED,
    WorkflowExecutionStatus.CANCELED,
    WorkflowExecutionStatus.TERMINATED,
    WorkflowExecutionStatus.TIMED_OUT,
)


class RolloutIdReusedError(Exception):
    """The rollout id is taken by another manifest, or its rollout was rolled back."""


def manifest_digest(strategy: RolloutStrategy, targets: Sequence[MeshTarget]) -> str:
    """``sha256:…`` of the normalized manifest: what the rollout does, not how it was written.

    Defaults are left out, so a field a later release adds (with its default) leaves the digest
    of an older rollout as it was, and a manifest that spells a default out is the same manifest.
    """
    document = {
        "strategy": strategy.model_dump(mode="json", exclude_defaults=True),
        "targets": [t.model_dump(mode="json", exclude_defaults=True) for t in targets],
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


async def stored_targets(client: Client, inp: RolloutInput) -> list[MeshTarget]:
    """A rollout's targets in rollout order: inline in its input, or from its stored pages."""
    if inp.targets is not None:
        return list(inp.targets)
    targets: list[MeshTarget] = []
    for page_no in range(-(-inp.total // inp.page_size)):
        handle = client.get_workflow_handle(
            page_workflow_id(inp.rollout_id, page_no), result_type=TargetPage
        )
        page: TargetPage = await handle.result()
        targets.extend(page.targets)
    return targets


async def _describe(client: Client, workflow_id: str) -> WorkflowExecutionDescription | None:
    try:
        return await client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise


async def recorded_digest(client: Client, desc: WorkflowExecutionDescription) -> str:
    """The digest of the manifest the rollout ``desc`` describes ran: its memo, or its input's."""
    digest = await desc.memo_value(MANIFEST_DIGEST, None)
    if isinstance(digest, str):
        return digest
    first_run = desc.raw_description.workflow_execution_info.first_run_id or desc.run_id
    history = await client.get_workflow_handle(desc.id, run_id=first_run).fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    inp = client.data_converter.payload_converter.from_payloads(
        list(started.input.payloads), [RolloutInput]
    )[0]
    return manifest_digest(inp.strategy, await stored_targets(client, inp))


async def check_reuse(
    client: Client, rollout_id: str, workflow_id: str, digest: str
) -> WorkflowExecutionDescription | None:
    """The rollout already under ``workflow_id``, when starting ``digest`` there may attach to
    it (or start it again); None when there is none.

    Raises:
        RolloutIdReusedError: it ran another manifest, or it was rolled back.
    """
    desc = await _describe(client, workflow_id)
    if desc is None:
        return None
    rollback = await _describe(client, rollback_workflow_id(rollout_id))
    if rollback is not None:
        state = rollback.status.name.lower() if rollback.status else "unknown"
        raise RolloutIdReusedError(
            f"rollout {rollout_id!r} was rolled back (its rollback is {state}: "
            f"`meshfleet status {rollout_id} --rollback`): nothing started; a rolled-back "
            "rollout is not run again, start this manifest under a new --rollout-id"
        )
    recorded = await recorded_digest(client, desc)
    if recorded != digest:
        raise RolloutIdReusedError(
            f"rollout {rollout_id!r} ran another manifest (digest {recorded[:19]}…, this one "
            f"{digest[:19]}…): the manifests differ, nothing started; give this manifest a new "
            "--rollout-id, or leave it out (the default id follows the manifest)"
        )
    return desc
