"""``create_mesh`` after a 409: adopt or conflict, by the same rule as ``meshfleet plan``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.mesh import MeshActivities
from meshfleet.asm.errors import status_error
from meshfleet.asm.models import CreateMeshRequest, Mesh
from meshfleet.contract import failures as errors
from meshfleet.contract.payloads import CreateMeshActivityInput
from meshfleet.plan import classify
from tests.helpers.fleet import SAMPLE_TARGET

TARGET = SAMPLE_TARGET


def _mesh(name: str, *clusters: str, uid: str | None = "uid-1") -> Mesh:
    spec: dict[str, Any] = {"extendParams": {"clusters": [{"clusterID": c} for c in clusters]}}
    metadata = {"name": name, "uid": uid, "creationTimestamp": "2020-01-01T00:00:00Z"}
    return Mesh.model_validate({"metadata": metadata, "spec": spec, "status": {"phase": "Running"}})


class _Taken:
    """Answers every create with 409 and lists the meshes it was given."""

    def __init__(self, meshes: list[Mesh]) -> None:
        self._meshes = meshes

    async def create_mesh(self, project_id: str, region: str, request: CreateMeshRequest) -> Mesh:
        raise status_error(409, "ASM.01010003", "already exists", "req-409")

    async def mesh(self, project_id: str, region: str, mesh_id: str) -> Mesh:
        raise AssertionError("create_mesh never shows a mesh")

    async def meshes(self, project_id: str, region: str) -> list[Mesh]:
        return self._meshes


async def _create(meshes: list[Mesh]) -> Any:
    activities = MeshActivities(_Taken(meshes))
    started = datetime.now(UTC).isoformat()
    inp = CreateMeshActivityInput(target=TARGET, started_at=started)
    return await ActivityEnvironment().run(activities.create_mesh, inp)


@pytest.mark.parametrize(
    ("meshes", "failure_type"),
    [
        ([], errors.CLUSTER_CONFLICT),
        ([_mesh("mesh-other", "cluster-a")], errors.CLUSTER_CONFLICT),
        ([_mesh("mesh-a", "cluster-b")], errors.NAME_CONFLICT),
        # A mesh of our name without a uid gives nothing to poll: not adoptable.
        ([_mesh("mesh-a", "cluster-a", uid=None)], errors.CLUSTER_CONFLICT),
    ],
)
async def test_a_conflict_the_plan_predicts_fails_the_target(
    meshes: list[Mesh], failure_type: str
) -> None:
    with pytest.raises(ApplicationError) as failed:
        await _create(meshes)
    assert (failed.value.type, failed.value.non_retryable) == (failure_type, True)
    if meshes and meshes[0].uid:
        assert classify(TARGET, meshes).action == "conflict"


@pytest.mark.parametrize("meshes", [[_mesh("mesh-a", "cluster-a")], [_mesh("mesh-a")]])
async def test_a_mesh_the_plan_would_adopt_is_adopted(meshes: list[Mesh]) -> None:
    result = await _create(meshes)
    assert (result.uid, result.adopted) == ("uid-1", True)
    assert classify(TARGET, meshes).action == "adopt"
