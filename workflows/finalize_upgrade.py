"""``FinalizeUpgradeWorkflow``: the last step of a mesh's upgrade, once its rollout has proven
the new version across the fleet."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from meshfleet.contract.payloads import FINALIZE_UPGRADE_WORKFLOW, ActionKind, MeshChangeInput
    from meshfleet.models import TargetOutcome
    from workflows.upgrade import MeshUpgrade


@workflow.defn(name=FINALIZE_UPGRADE_WORKFLOW)
class FinalizeUpgradeWorkflow(MeshUpgrade):
    """One upgraded mesh (its target's ``upgrade`` names the task): ASM's ``finish`` uninstalls
    the old control plane (``finalized``); from then on the upgrade cannot be rolled back."""

    action: ActionKind = "finalize"

    @workflow.run
    async def run(self, inp: MeshChangeInput) -> TargetOutcome:
        """Finalize the mesh's upgrade; failures become a failed outcome."""
        return await self._run(inp)

    async def _drive(self, inp: MeshChangeInput) -> TargetOutcome:
        ref = inp.target.upgrade
        if ref is None or not ref.task_id:
            return self._outcome(inp, "failed", uid=None, error_code="NoRecordedTask", attempts=0)
        return await self._finalize(inp, ref)
