"""Inputs and results of the activities that judge a mesh against its target and change its
configuration in place (``judge_mesh``, ``update_mesh``, ``wait_for_config``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from meshfleet.contract.payloads import Contract
from meshfleet.models import MeshTarget

MeshVerdict = Literal[
    "create",
    "in_sync",
    "update",
    "upgrade",
    "downgrade",
    "name_conflict",
    "cluster_conflict",
    "without_uid",
]
"""A target against the meshes of its project: missing; the mesh of its name on its cluster in
sync, differing in configuration, at an older or a newer version; or something in its way."""


class JudgeMeshInput(Contract):
    """Input of ``judge_mesh``."""

    target: MeshTarget
    rollout_id: str | None = None


class JudgedMesh(Contract):
    """What ``judge_mesh`` found: the verdict, and the mesh it rests on."""

    verdict: MeshVerdict
    uid: str | None = None
    phase: str | None = None
    mesh_name: str | None = Field(
        default=None, description="The mesh in the way, for a cluster conflict."
    )
    cluster_ids: list[str] = Field(default_factory=list)
    mesh_version: str | None = None
    changes: list[str] = Field(
        default_factory=list, description="Each differing field, ``config.a.b: 1 -> 10``."
    )
    config: dict[str, Any] | None = Field(
        default=None, description="The mesh's configuration as echoed now."
    )
    updated_at: str | None = Field(
        default=None, description="The mesh's status.updateTimestamp as read."
    )
    attempts: int = 1


class UpdateMeshActivityInput(Contract):
    """Input of ``update_mesh``: the configuration to send, and the mesh as it was judged, so a
    retry can tell whether an earlier PUT of this change landed."""

    project_id: str
    region: str
    mesh_name: str
    uid: str
    rollout_id: str | None = None
    config: dict[str, Any] | None = Field(description="The whole configuration to put.")
    config_before: dict[str, Any] | None = None
    updated_at: str | None = Field(
        default=None, description="status.updateTimestamp when the mesh was judged."
    )


class UpdateMeshResult(Contract):
    """Result of ``update_mesh``."""

    sent: bool = Field(description="This attempt sent the PUT; False: an earlier one landed.")
    attempts: int


class WaitForConfigInput(Contract):
    """Input of ``wait_for_config``: read the mesh until its configuration reads as sent."""

    project_id: str
    region: str
    mesh_name: str
    uid: str
    rollout_id: str | None = None
    config: dict[str, Any] | None
    first_poll_s: float
    poll_interval_s: float
    deadline: str = Field(description="Absolute deadline (ISO 8601, UTC): retries never extend it.")


class WaitForConfigResult(Contract):
    """The mesh reads the configuration sent, and is Running."""

    phase: str
    polls: int
