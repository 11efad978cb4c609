"""``DeleteMeshWorkflow``: delete one mesh a rollout created, by its recorded uid, until gone."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from meshfleet.contract.deletion import (
        DELETE_MESH,
        DELETE_MESH_WORKFLOW,
        WAIT_FOR_MESH_GONE,
        DeleteMeshActivityInput,
        DeleteMeshInput,
        DeleteMeshResult,
        WaitGoneInput,
        WaitGoneResult,
    )
    from meshfleet.contract.payloads import ActionKind
    from meshfleet.models import TargetOutcome
    from workflows import policies
    from workflows.change import MeshChangeWorkflow

# One DELETE, or a DELETE and a list after its 404: each HTTP call has its own 30 s limit.
DELETE_ATTEMPT_TIMEOUT = timedelta(seconds=90)


@workflow.defn(name=DELETE_MESH_WORKFLOW)
class DeleteMeshWorkflow(MeshChangeWorkflow):
    """One mesh: ``delete_mesh`` then ``wait_for_mesh_gone``; returns a ``TargetOutcome``
    (``deleted``, or ``kept`` with the reason in ``message``), or ends Failed carrying the
    failed one (``outcomes.end``)."""

    action: ActionKind = "delete"

    @workflow.run
    async def run(self, inp: DeleteMeshInput) -> TargetOutcome:
        """Delete the mesh and wait until it is gone; failures become a failed outcome."""
        return await self._run(inp)

    async def _drive(self, inp: DeleteMeshInput) -> TargetOutcome:
        target = inp.target
        uid = target.uid
        if not uid:
            # Only a mesh whose uid was recorded may be deleted: never one found by its name.
            return self._outcome(inp, "failed", uid=uid, error_code="NoRecordedUid", attempts=0)
        deadline = policies.deadline_of(inp.timing)
        heartbeat_timeout = timedelta(seconds=inp.timing.heartbeat_timeout_s)
        try:
            started = await workflow.execute_activity(
                DELETE_MESH,
                DeleteMeshActivityInput(
                    rollout_id=inp.rollout_id,
                    project_id=target.project_id,
                    region=target.region,
                    mesh_name=target.mesh_name,
                    uid=uid,
                    cluster_id=target.cluster_id,
                ),
                result_type=DeleteMeshResult,
                start_to_close_timeout=DELETE_ATTEMPT_TIMEOUT,
                schedule_to_close_timeout=timedelta(seconds=inp.timing.timeout_s),
                # It heartbeats through its calls: a worker killed mid-DELETE is noticed in
                # seconds, and the DELETE sent again finds the mesh Deleting, or gone.
                heartbeat_timeout=heartbeat_timeout,
                # As a create's POST: 429, 5xx and no answer are retried, Retry-After honoured.
                retry_policy=policies.call_retry(inp.timing),
                summary=f"DELETE mesh {target.mesh_name} ({uid})",
            )
        except ActivityError as err:
            return self._failed(inp, err, uid=uid)
        self._phase = started.phase
        if started.verdict == "kept":
            return self._outcome(
                inp, "kept", uid=uid, message=started.reason, attempts=started.attempts
            )
        if started.verdict == "gone":
            return self._outcome(inp, "deleted", uid=uid, attempts=started.attempts)

        try:
            waited = await self._poll(
                inp,
                WAIT_FOR_MESH_GONE,
                WaitGoneInput(
                    rollout_id=inp.rollout_id,
                    project_id=target.project_id,
                    region=target.region,
                    mesh_name=target.mesh_name,
                    uid=uid,
                    first_poll_s=inp.timing.first_poll_s,
                    poll_interval_s=inp.timing.poll_interval_s,
                    deadline=deadline.isoformat(),
                ),
                WaitGoneResult,
                f"wait for mesh {target.mesh_name} to be gone",
            )
        except ActivityError as err:
            return self._failed(inp, err, uid=uid)
        self._phase = None
        return self._outcome(inp, "deleted", uid=uid, attempts=started.attempts, polls=waited.polls)
