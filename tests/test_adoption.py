"""``judge``: the one adopt-or-conflict rule behind ``meshfleet plan`` and ``create_mesh``; the
plan then judges a mesh it may adopt against the target (in sync, upgrade, downgrade, ...)."""

from __future__ import annotations

from typing import Any

import pytest

from meshfleet.adoption import Verdict, judge
from meshfleet.asm.models import Mesh
from meshfleet.plan import classify
from tests.helpers.fleet import SAMPLE_TARGET

TARGET = SAMPLE_TARGET


def _mesh(
    name: str,
    *clusters: str,
    uid: str | None = "uid-1",
    phase: str = "Running",
    version: str | None = None,
) -> Mesh:
    spec: dict[str, Any] = {"extendParams": {"clusters": [{"clusterID": c} for c in clusters]}}
    if version is not None:
        spec["version"] = version
    return Mesh.model_validate(
        {"metadata": {"name": name, "uid": uid}, "spec": spec, "status": {"phase": phase}}
    )


@pytest.mark.parametrize(
    ("meshes", "verdict", "mesh_name"),
    [
        ([], "create", None),
        ([_mesh("mesh-other", "cluster-b")], "create", None),
        ([_mesh("mesh-a", "cluster-a")], "adopt", "mesh-a"),
        # ASM echoes no clusters: nothing says the mesh is elsewhere, so it is ours to adopt.
        ([_mesh("mesh-a")], "adopt", "mesh-a"),
        ([_mesh("mesh-a", "cluster-b", "cluster-c")], "name_conflict", "mesh-a"),
        ([_mesh("mesh-other", "cluster-a")], "cluster_conflict", "mesh-other"),
        # Ours to adopt but for its uid: nothing could poll it, or later delete it by uid.
        ([_mesh("mesh-a", "cluster-a", uid=None)], "without_uid", "mesh-a"),
        ([_mesh("mesh-a", uid=None)], "without_uid", "mesh-a"),
        ([_mesh("mesh-a", "cluster-a", uid="")], "without_uid", "mesh-a"),
        # Elsewhere, a uid or not, it is the name that is in the way.
        ([_mesh("mesh-a", "cluster-b", uid=None)], "name_conflict", "mesh-a"),
        # The name decides before the cluster: a mesh of our name on our cluster is adopted even
        # when listed after another mesh that also names the cluster.
        (
            [_mesh("mesh-other", "cluster-a"), _mesh("mesh-a", "cluster-a")],
            "adopt",
            "mesh-a",
        ),
    ],
)
def test_judge(meshes: list[Mesh], verdict: Verdict, mesh_name: str | None) -> None:
    judged = judge(TARGET, meshes)
    assert judged.verdict == verdict
    assert (judged.mesh.metadata.name if judged.mesh else None) == mesh_name


@pytest.mark.parametrize(
    ("meshes", "described"),
    [
        ([], "create"),
        # The target's own mesh, judged against it: the same version, no configuration either.
        ([_mesh("mesh-a", "cluster-a", phase="Creating")], "in_sync (exists, phase Creating)"),
        (
            [_mesh("mesh-a", "cluster-a", version="1.15.7-r1")],
            "upgrade (1.15.7-r1 -> 1.18.7-r5, phase Running)",
        ),
        (
            [_mesh("mesh-a", "cluster-a", version="1.18.9-r1")],
            "downgrade (1.18.9-r1 -> 1.18.7-r5, phase Running)",
        ),
        (
            [_mesh("mesh-a", "cluster-b", "cluster-c")],
            "conflict (name used by a mesh on cluster cluster-b, cluster-c)",
        ),
        ([_mesh("mesh-other", "cluster-a")], "conflict (cluster in mesh mesh-other)"),
        (
            [_mesh("mesh-a", "cluster-a", uid=None)],
            "conflict (the API lists the mesh without a uid: it cannot be adopted)",
        ),
    ],
)
def test_the_plan_says_what_judge_decided(meshes: list[Mesh], described: str) -> None:
    assert classify(TARGET, meshes).describe() == described
