"""What the meshes of a project mean for a target: create it, adopt one, or a conflict.

``meshfleet plan`` asks this before anything is sent, and ``create_mesh`` asks it after a 409,
so a plan predicts exactly what a rollout will do (docs/asm-api.md, "409: adopt or conflict").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from meshfleet.asm.models import Mesh
from meshfleet.models import MeshTarget

Verdict = Literal["create", "adopt", "name_conflict", "cluster_conflict", "without_uid"]


@dataclass(frozen=True)
class Judgement:
    """A verdict and the mesh it rests on.

    Attributes:
        verdict: ``create`` when nothing in the project stands in the way; ``adopt`` for a mesh
            of the target's name on its cluster (or one that echoes no clusters);
            ``name_conflict`` for that name on other clusters; ``cluster_conflict`` for the
            target's cluster in a mesh of another name; ``without_uid`` for a mesh that would be
            adopted but was listed without a uid: nothing could poll it, nor later delete it by
            uid, so it is a failure, not an adoption.
        mesh: The mesh of the target's name (adopt, name conflict, without uid) or the one
            holding its cluster (cluster conflict); None for create.
    """

    verdict: Verdict
    mesh: Mesh | None = None


def judge(target: MeshTarget, meshes: Sequence[Mesh]) -> Judgement:
    """Judge ``target`` against ``meshes``, every mesh a list call returned for its project."""
    same_name = next((m for m in meshes if m.metadata.name == target.mesh_name), None)
    if same_name is not None:
        clusters = same_name.cluster_ids
        if clusters and target.cluster_id not in clusters:
            return Judgement("name_conflict", same_name)
        if not same_name.uid:
            return Judgement("without_uid", same_name)
        return Judgement("adopt", same_name)
    holder = next((m for m in meshes if target.cluster_id in m.cluster_ids), None)
    if holder is not None:
        return Judgement("cluster_conflict", holder)
    return Judgement("create")
