"""``CreateMeshWorkflow``: drive one target from POST to ``Running`` or a clear failure."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from meshfleet.contract.payloads import (
        CREATE_MESH,
        CREATE_MESH_WORKFLOW,
        WAIT_FOR_MESH,
        CreateMeshActivityInput,
        CreateMeshInput,
        CreateMeshResult,
        WaitForMeshInput,
        WaitForMeshResult,
    )
    from meshfleet.models import OutcomeKind, TargetOutcome
    from workflows import policies
    from workflows.change import MeshChangeWorkflow

FIRST_TASK_HISTORY_LENGTH = 3
# Every HTTP call has its own 30 s timeout; create may add a list call when it meets a 409.
CREATE_ATTEMPT_TIMEOUT = timedelta(seconds=90)


@workflow.defn(name=CREATE_MESH_WORKFLOW)
class CreateMeshWorkflow(MeshChangeWorkflow):
    """One mesh: ``create_mesh`` then ``wait_for_mesh``; returns the ``TargetOutcome``, or ends
    Failed carrying it (``outcomes.end``)."""

    @workflow.run
    async def run(self, inp: CreateMeshInput) -> TargetOutcome:
        """Create (or adopt) the mesh and wait until it runs; failures become a failed outcome."""
        return await self._run(inp)

    async def _drive(self, inp: CreateMeshInput) -> TargetOutcome:
        # The run's start, not now() nor info().start_time (the task this worker first saw):
        # after a lost workflow task both are later, and a mesh our lost POST created would
        # look older than the target.
        started = workflow.info().workflow_start_time
        target = inp.target
        try:
            # A local activity: the POST needs no task queue round trip or three history
            # events of its own, which made each target cost the server half again as much
            # (docs/performance.md). If the worker dies mid-POST, the workflow task times out
            # and the next worker runs it again, where a 409 adopts what the first POST made.
            created = await workflow.execute_local_activity(
                CREATE_MESH,
                CreateMeshActivityInput(
                    target=target,
                    started_at=started.isoformat(),
                    rollout_id=inp.rollout_id,
                    after_lost_task=self._after_lost_task(),
                ),
                result_type=CreateMeshResult,
                start_to_close_timeout=CREATE_ATTEMPT_TIMEOUT,
                schedule_to_close_timeout=timedelta(seconds=inp.timing.timeout_s),
                retry_policy=policies.call_retry(inp.timing),
                summary=f"POST mesh {target.mesh_name} in {target.project_id}",
            )
        except (ActivityError, ApplicationError) as err:
            # A local activity's non-retryable failure arrives as the ApplicationError itself.
            return self._failed(inp, err)
        self._phase = created.phase
        kind: OutcomeKind = "adopted" if created.adopted else "created"
        if created.phase == "Running":
            return self._outcome(
                inp, kind, uid=created.uid, attempts=created.attempts, drift=created.drift
            )

        try:
            # An adopted mesh was created earlier: look at it now, not after the delay.
            waited = await self._wait_running(
                inp, created.uid, first_poll_s=0.0 if created.adopted else None
            )
        except ActivityError as err:
            return self._failed(inp, err, uid=created.uid, attempts=created.attempts)
        self._phase = waited.phase
        return self._outcome(
            inp,
            kind,
            uid=created.uid,
            attempts=created.attempts,
            polls=waited.polls,
            drift=created.drift,
        )

    async def _wait_running(
        self, inp: CreateMeshInput, uid: str, *, first_poll_s: float | None = None
    ) -> WaitForMeshResult:
        """Poll the mesh ``uid`` until it is ``Running`` (``wait_for_mesh``), the first read
        after ``first_poll_s`` (the strategy's when None).

        Raises:
            ActivityError: the mesh failed, vanished or missed the target's deadline.
        """
        target = inp.target
        timing = inp.timing
        return await self._poll(
            inp,
            WAIT_FOR_MESH,
            WaitForMeshInput(
                project_id=target.project_id,
                region=target.region,
                mesh_name=target.mesh_name,
                uid=uid,
                cluster_id=target.cluster_id,
                rollout_id=inp.rollout_id,
                first_poll_s=timing.first_poll_s if first_poll_s is None else first_poll_s,
                poll_interval_s=timing.poll_interval_s,
                deadline=policies.deadline_of(timing).isoformat(),
            ),
            WaitForMeshResult,
            f"wait for mesh {target.mesh_name} to be Running",
        )

    @staticmethod
    def _after_lost_task() -> bool:
        # The first workflow task of a run sees 3 events (started, task scheduled, task started).
        # More before the POST means an earlier task failed or timed out, usually with its worker
        # and the local activity it was running: whose POST may have created the mesh. A POST
        # that outlasted 8 s made the SDK heartbeat the task (a completed task in history), and a
        # worker dying after that is seen only as a replay that runs the POST again; a replay
        # that reaches this point without the POST's result recorded lost the earlier one.
        return (
            workflow.unsafe.is_replaying()
            or workflow.info().get_current_history_length() > FIRST_TASK_HISTORY_LENGTH
        )
