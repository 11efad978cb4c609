"""``MeshRollbackWorkflow``: delete the meshes a rollout created, walked as a rollout walks.

The rollback is a rollout of deletions: the same window, waves, failure budget, halt, pause,
resume, cancel, continue-as-new, progress query and UI details, with ``DeleteMeshWorkflow`` as
each target's child instead of ``CreateMeshWorkflow``. Its targets are only the meshes the
rollout reported ``created``, each with the uid recorded then, in reverse wave order (the
starter lays them out: the rollout's last wave first, its canary last).
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from meshfleet.contract.deletion import (
        DELETE_MESH_WORKFLOW,
        ROLLBACK_WORKFLOW,
        DeleteMeshInput,
        RollbackInput,
        rollback_page_workflow_id,
    )
    from meshfleet.contract.payloads import LoadPageInput, MeshTiming
    from meshfleet.models import (
        MAX_REPORTED_FAILURES,
        KeptMesh,
        MeshTarget,
        RolloutProgress,
        TargetOutcome,
    )
    from workflows.rollout import MeshRolloutWorkflow


@workflow.defn(name=ROLLBACK_WORKFLOW)
class MeshRollbackWorkflow(MeshRolloutWorkflow):
    """A rollback of one rollout; its workflow id is ``rollback/{rollout_id}``."""

    @workflow.init
    def __init__(self, inp: RollbackInput) -> None:
        super().__init__(inp)
        self._rollback = inp

    # The SDK decodes the input by this annotation: it must name the rollback's own model.
    @workflow.run
    async def run(self, inp: RollbackInput) -> RolloutProgress:  # type: ignore[override]
        """Delete every target's mesh by its uid, or stop early on cancel; return the report."""
        return await super().run(inp)

    def _child(self, target: MeshTarget) -> tuple[str, Any]:
        return DELETE_MESH_WORKFLOW, DeleteMeshInput(
            rollout_id=self._inp.rollout_id,
            target=target,
            timing=MeshTiming.of(self._inp.strategy),
            search_attributes=self._inp.search_attributes,
        )

    def _page_input(self, page_no: int) -> LoadPageInput:
        return LoadPageInput(
            rollout_id=self._inp.rollout_id,
            page=page_no,
            workflow_id=rollback_page_workflow_id(self._inp.rollout_id, page_no),
        )

    def _record(self, outcome: TargetOutcome) -> None:
        carry = self._carry
        if (
            outcome.outcome == "kept"
            and outcome.workflow_id in carry.in_flight
            and len(carry.kept) < MAX_REPORTED_FAILURES
        ):
            carry.kept.append(
                KeptMesh(
                    project_id=outcome.project_id,
                    region=outcome.region,
                    cluster_id=outcome.cluster_id,
                    mesh_name=outcome.mesh_name,
                    reason=outcome.message or "left alone",
                )
            )
        super()._record(outcome)

    def _report(self, report: RolloutProgress) -> RolloutProgress:
        counts = self._carry.counts
        return report.model_copy(
            update={
                "kind": "rollback",
                "deleted": counts.deleted,
                "kept": counts.kept,
                "kept_reasons": list(self._carry.kept),
                "not_rolled_back": dict(self._rollback.not_rolled_back),
            }
        )

    def _cli_flag(self) -> str:
        return " --rollback"

    def _counts_text(self) -> str:
        c = self._carry.counts
        return f"{c.deleted} deleted, {c.kept} kept, {c.failed} failed, {c.cancelled} cancelled"
