"""What changing a mesh in place takes, for converging and restoring alike: judge the mesh that
exists against the target, then PUT a configuration and read it back until it holds."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from meshfleet.contract import failures as errors
    from meshfleet.contract.convergence import (
        JudgedMesh,
        JudgeMeshInput,
        UpdateMeshActivityInput,
        UpdateMeshResult,
        WaitForConfigInput,
        WaitForConfigResult,
    )
    from meshfleet.contract.payloads import (
        JUDGE_MESH,
        UPDATE_MESH,
        WAIT_FOR_CONFIG,
        MeshChangeInput,
    )
    from meshfleet.models import OutcomeKind, TargetOutcome
    from workflows import policies
    from workflows.change import MeshChangeWorkflow

# One list call, or one PUT after a show: each HTTP call has its own 30 s limit.
CALL_ATTEMPT_TIMEOUT = timedelta(seconds=90)


class InPlaceChange(MeshChangeWorkflow):
    """The steps of a change made to a mesh that exists."""

    async def _judge(self, inp: MeshChangeInput) -> JudgedMesh:
        """The target against its project's meshes now (the fleet may have changed since the
        plan). A local activity: one list call needs no task queue round trip.

        Raises:
            ActivityError, ApplicationError: the list call failed past its retries.
        """
        target = inp.target
        judged: JudgedMesh = await workflow.execute_local_activity(
            JUDGE_MESH,
            JudgeMeshInput(target=target, rollout_id=inp.rollout_id),
            result_type=JudgedMesh,
            start_to_close_timeout=CALL_ATTEMPT_TIMEOUT,
            schedule_to_close_timeout=timedelta(seconds=inp.timing.timeout_s),
            retry_policy=policies.call_retry(inp.timing),
            summary=f"judge mesh {target.mesh_name} in {target.project_id}",
        )
        self._phase = judged.phase
        return judged

    async def _put_config(
        self,
        inp: MeshChangeInput,
        judged: JudgedMesh,
        config: dict[str, Any] | None,
        kind: OutcomeKind,
        drift: list[str],
    ) -> TargetOutcome:
        """PUT ``config`` to the judged mesh and read it back until it holds; ``kind`` is the
        outcome then, recording the configuration it replaced."""
        target = inp.target
        uid = judged.uid or ""
        if judged.phase != "Running":
            return self._outcome(
                inp,
                "failed",
                uid=uid,
                attempts=0,
                error_code=errors.MESH_NOT_RUNNING,
                message=f"mesh {target.mesh_name} is {judged.phase or 'in no phase'}; only a "
                "Running mesh takes a configuration change (nothing was sent)",
                drift=drift,
            )
        heartbeat_timeout = timedelta(seconds=inp.timing.heartbeat_timeout_s)
        try:
            # A regular activity, not a local one: its attempt count survives a dead worker, so
            # the retry knows to look before it sends the PUT again.
            put = await workflow.execute_activity(
                UPDATE_MESH,
                UpdateMeshActivityInput(
                    project_id=target.project_id,
                    region=target.region,
                    mesh_name=target.mesh_name,
                    uid=uid,
                    rollout_id=inp.rollout_id,
                    config=config,
                    config_before=judged.config,
                    updated_at=judged.updated_at,
                ),
                result_type=UpdateMeshResult,
                start_to_close_timeout=CALL_ATTEMPT_TIMEOUT,
                heartbeat_timeout=heartbeat_timeout,
                schedule_to_close_timeout=timedelta(seconds=inp.timing.timeout_s),
                retry_policy=policies.call_retry(inp.timing),
                summary=f"PUT configuration of mesh {target.mesh_name}",
            )
        except ActivityError as err:
            # The PUT may have landed all the same: what it replaced is kept for a rollback.
            return self._failed(inp, err, uid=uid).model_copy(
                update={"drift": drift, "config_before": judged.config or {}}
            )
        try:
            waited = await self._poll(
                inp,
                WAIT_FOR_CONFIG,
                WaitForConfigInput(
                    project_id=target.project_id,
                    region=target.region,
                    mesh_name=target.mesh_name,
                    uid=uid,
                    rollout_id=inp.rollout_id,
                    config=config,
                    first_poll_s=inp.timing.first_poll_s,
                    poll_interval_s=inp.timing.poll_interval_s,
                    deadline=policies.deadline_of(inp.timing).isoformat(),
                ),
                WaitForConfigResult,
                f"wait for mesh {target.mesh_name} to read its new configuration",
            )
        except ActivityError as err:
            failed = self._failed(inp, err, uid=uid, attempts=put.attempts)
            return failed.model_copy(update={"drift": drift, "config_before": judged.config or {}})
        self._phase = waited.phase
        return self._outcome(
            inp,
            kind,
            uid=uid,
            attempts=put.attempts,
            polls=waited.polls,
            drift=drift,
            config_before=judged.config or {},
        )
