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
    from meshfleet.contract.payloads import (
        CREATE_MESH_WORKFLOW,
        ROLLOUT_WORKFLOW,
        TARGET_PAGE_WORKFLOW,
        CreateMeshInput,
        RolloutInput,
        TargetPage,
    )
    from meshfleet.models import RolloutProgress, TargetOutcome
    from workflows.create_mesh import CreateMeshWorkflow
    from workflows.delete_mesh import DeleteMeshWorkflow
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
