"""The Temporal contract of deleting a mesh a rollout created: names and payloads.

A mesh is deleted by the uid recorded when the rollout created it, never by name: a mesh
deleted and created again under the same name since then is another mesh, and is kept.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from meshfleet.contract.payloads import ActionKind, Contract, MeshChangeInput, RolloutInput

DELETE_MESH = "delete_mesh"
WAIT_FOR_MESH_GONE = "wait_for_mesh_gone"
DELETE_MESH_WORKFLOW = "DeleteMeshWorkflow"
ROLLBACK_WORKFLOW = "MeshRollbackWorkflow"


def rollback_workflow_id(rollout_id: str) -> str:
    """Workflow id of a rollout's rollback: rolling the same rollout back twice finds the first."""
    return f"rollback/{rollout_id}"


def rollback_page_workflow_id(rollout_id: str, page: int) -> str:
    """Workflow id of one stored page of a rollback's targets."""
    return f"rollback/{rollout_id}/targets/{page}"


DeleteMeshInput = MeshChangeInput
"""Input of ``DeleteMeshWorkflow``: its target carries the uid recorded when the rollout
created the mesh."""


DeleteVerdict = Literal["deleting", "gone", "kept"]
"""What ``delete_mesh`` found: the deletion started; the mesh was gone already (a 404, which
is success); or a mesh of that name with another uid stands there now, which is left alone."""


class DeleteMeshActivityInput(Contract):
    """Input of the ``delete_mesh`` activity."""

    rollout_id: str
    project_id: str
    region: str
    mesh_name: str
    uid: str = Field(min_length=1, description="The uid recorded when the mesh was created.")
    cluster_id: str | None = None


class DeleteMeshResult(Contract):
    """Result of ``delete_mesh``."""

    verdict: DeleteVerdict
    reason: str | None = Field(default=None, description="Why a mesh was kept.")
    phase: str | None = None
    attempts: int = 1


class WaitGoneInput(Contract):
    """Input of ``wait_for_mesh_gone``."""

    rollout_id: str
    project_id: str
    region: str
    mesh_name: str
    uid: str
    first_poll_s: float
    poll_interval_s: float
    deadline: str = Field(description="Absolute deadline (ISO 8601, UTC): retries never extend it.")


class WaitGoneResult(Contract):
    """Result of ``wait_for_mesh_gone``: the mesh answered 404 after this many polls."""

    polls: int


class RollbackInput(RolloutInput):
    """Input of ``MeshRollbackWorkflow``: a rollout's created meshes, each with its uid, in the
    order they are deleted (the rollout's last wave first), walked as a rollout walks its
    targets. ``rollout_id`` is the rolled-back rollout's."""

    action: ActionKind = "delete"

    not_rolled_back: dict[str, int] = Field(
        default_factory=dict,
        description="The rollout's other targets, by why they are left alone: adopted, failed, "
        "cancelled, not_started.",
    )
