"""``MeshRollbackWorkflow``: delete the meshes a rollout created, walked as a rollout walks.

The rollback is a rollout whose action is ``delete``: the same engine (window, waves, failure
budget, halt, pause, resume, cancel, continue-as-new, progress query and UI details), with
``DeleteMeshWorkflow`` as each target's child. Only its name, input, workflow ids and report
are its own. Its targets are only the meshes the
rollout reported ``created``, each with the uid recorded then, in reverse wave order (the
starter lays them out: the rollout's last wave first, its canary last).
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from meshfleet.contract.deletion import (
        ROLLBACK_WORKFLOW,
        RollbackInput,
        rollback_page_workflow_id,
    )
    from meshfleet.contract.payloads import LoadPageInput
    from meshfleet.models import RolloutProgress
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

    def _page_input(self, page_no: int) -> LoadPageInput:
        return LoadPageInput(
            rollout_id=self._inp.rollout_id,
            page=page_no,
            workflow_id=rollback_page_workflow_id(self._inp.rollout_id, page_no),
        )

    def _report(self, report: RolloutProgress) -> RolloutProgress:
        return report.model_copy(
            update={"kind": "rollback", "not_rolled_back": dict(self._rollback.not_rolled_back)}
        )

    def _cli_flag(self) -> str:
        return " --rollback"
