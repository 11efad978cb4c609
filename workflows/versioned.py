"""The workflows as a versioned worker registers them: each with its Worker Versioning behaviour.

An unversioned worker must not declare a behaviour (the server refuses every workflow task that
names one without deployment options in versioned mode), so the behaviours live on these
subclasses, registered only when the worker runs as a version of a Worker Deployment. Each one
only declares its behaviour; the logic, names and handlers are its base class's.
Why each behaviour: docs/worker-versioning.md.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import VersioningBehavior

with workflow.unsafe.imports_passed_through():
    from meshfleet.contract.deletion import (
        DELETE_MESH_WORKFLOW,
        ROLLBACK_WORKFLOW,
        DeleteMeshInput,
        RollbackInput,
    )
    from meshfleet.contract.drift import (
        DRIFT_CHECK_WORKFLOW,
        DRIFT_PAGE_WORKFLOW,
        DriftCheckInput,
        DriftPage,
        DriftReport,
    )
    from meshfleet.contract.payloads import (
        CONVERGE_MESH_WORKFLOW,
        CREATE_MESH_WORKFLOW,
        FINALIZE_UPGRADE_WORKFLOW,
        RESTORE_MESH_WORKFLOW,
        ROLLOUT_WORKFLOW,
        TARGET_PAGE_WORKFLOW,
        CreateMeshInput,
        MeshChangeInput,
        RolloutInput,
        TargetPage,
    )
    from meshfleet.models import RolloutProgress, TargetOutcome
    from workflows.converge_mesh import ConvergeMeshWorkflow
    from workflows.create_mesh import CreateMeshWorkflow
    from workflows.delete_mesh import DeleteMeshWorkflow
    from workflows.drift import DriftCheckWorkflow, DriftTargetPageWorkflow
    from workflows.finalize_upgrade import FinalizeUpgradeWorkflow
    from workflows.restore_mesh import RestoreMeshWorkflow
    from workflows.rollback import MeshRollbackWorkflow
    from workflows.rollout import MeshRolloutWorkflow
    from workflows.target_page import RolloutTargetPageWorkflow


@workflow.defn(name=ROLLOUT_WORKFLOW, versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class AutoUpgradingRolloutWorkflow(MeshRolloutWorkflow):
    """A rollout moves to the current build at its next workflow task."""

    @workflow.run
    async def run(self, inp: RolloutInput) -> RolloutProgress:
        """As ``MeshRolloutWorkflow.run``."""
        return await super().run(inp)


@workflow.defn(name=CREATE_MESH_WORKFLOW, versioning_behavior=VersioningBehavior.PINNED)
class PinnedCreateMeshWorkflow(CreateMeshWorkflow):
    """A target finishes on the build that started it."""

    @workflow.run
    async def run(self, inp: CreateMeshInput) -> TargetOutcome:
        """As ``CreateMeshWorkflow.run``."""
        return await super().run(inp)


@workflow.defn(name=TARGET_PAGE_WORKFLOW, versioning_behavior=VersioningBehavior.PINNED)
class PinnedTargetPageWorkflow(RolloutTargetPageWorkflow):
    """A page completes in its first workflow task, on the build that started it."""

    @workflow.run
    async def run(self, page: TargetPage) -> TargetPage:
        """As ``RolloutTargetPageWorkflow.run``."""
        return await super().run(page)


@workflow.defn(name=ROLLBACK_WORKFLOW, versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class AutoUpgradingRollbackWorkflow(MeshRollbackWorkflow):
    """A rollback, like a rollout, moves to the current build at its next workflow task."""

    @workflow.run
    async def run(self, inp: RollbackInput) -> RolloutProgress:  # type: ignore[override]
        """As ``MeshRollbackWorkflow.run``."""
        return await super().run(inp)


@workflow.defn(name=DELETE_MESH_WORKFLOW, versioning_behavior=VersioningBehavior.PINNED)
class PinnedDeleteMeshWorkflow(DeleteMeshWorkflow):
    """A deletion finishes on the build that started it."""

    @workflow.run
    async def run(self, inp: DeleteMeshInput) -> TargetOutcome:
        """As ``DeleteMeshWorkflow.run``."""
        return await super().run(inp)


@workflow.defn(name=DRIFT_CHECK_WORKFLOW, versioning_behavior=VersioningBehavior.PINNED)
class PinnedDriftCheckWorkflow(DriftCheckWorkflow):
    """A drift check lasts minutes: it finishes on the build that started it."""

    @workflow.run
    async def run(self, inp: DriftCheckInput) -> DriftReport:
        """As ``DriftCheckWorkflow.run``."""
        return await super().run(inp)


@workflow.defn(name=DRIFT_PAGE_WORKFLOW, versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class AutoUpgradingDriftPageWorkflow(DriftTargetPageWorkflow):
    """A drift schedule's page stays open for months: pinned, it would keep the build that
    stored it from ever draining. It has no task after its first, so moving costs nothing."""

    @workflow.run
    async def run(self, page: DriftPage) -> None:
        """As ``DriftTargetPageWorkflow.run``."""
        await super().run(page)


@workflow.defn(name=CONVERGE_MESH_WORKFLOW, versioning_behavior=VersioningBehavior.PINNED)
class PinnedConvergeMeshWorkflow(ConvergeMeshWorkflow):
    """A converging mesh finishes on the build that started it."""

    @workflow.run
    async def run(self, inp: MeshChangeInput) -> TargetOutcome:
        """As ``ConvergeMeshWorkflow.run``."""
        return await super().run(inp)


@workflow.defn(name=FINALIZE_UPGRADE_WORKFLOW, versioning_behavior=VersioningBehavior.PINNED)
class PinnedFinalizeUpgradeWorkflow(FinalizeUpgradeWorkflow):
    """A finalize finishes on the build that started it."""

    @workflow.run
    async def run(self, inp: MeshChangeInput) -> TargetOutcome:
        """As ``FinalizeUpgradeWorkflow.run``."""
        return await super().run(inp)


@workflow.defn(name=RESTORE_MESH_WORKFLOW, versioning_behavior=VersioningBehavior.PINNED)
class PinnedRestoreMeshWorkflow(RestoreMeshWorkflow):
    """A restore finishes on the build that started it."""

    @workflow.run
    async def run(self, inp: MeshChangeInput) -> TargetOutcome:
        """As ``RestoreMeshWorkflow.run``."""
        return await super().run(inp)
