"""meshfleet's Prometheus metrics: what the worker records and what a scraper reads."""

from __future__ import annotations

import urllib.request

import pytest
from prometheus_client import REGISTRY, CollectorRegistry

from meshfleet import metrics
from meshfleet.asm.calls import MeshApi
from meshfleet.asm.client import AsmClient
from meshfleet.asm.errors import AsmConnectionError, status_error
from meshfleet.asm.models import CreateMeshRequest, Mesh, UpdateMeshRequest
from meshfleet.asm.upgrade import UpgradeJob, UpgradeTask, UpgradeTaskRequest


def _wraps_the_real_client(api: AsmClient) -> MeshApi:
    # Checked by mypy, never run: the wrapper takes an AsmClient and is what the activities need.
    return metrics.InstrumentedMeshApi(api)


@pytest.fixture
def registry() -> CollectorRegistry:
    """A registry of this test's own: it sees exactly the calls the test made."""
    return CollectorRegistry()


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


class _Api:
    """Answers like ASM would: one mesh by id, a 409 on create, nothing else."""

    def __init__(self, mesh: Mesh) -> None:
        self._mesh = mesh

    async def create_mesh(self, project_id: str, region: str, request: CreateMeshRequest) -> Mesh:
        raise status_error(409, "ASM.01020002", "mesh name already exists", "req-1")

    async def mesh(self, project_id: str, region: str, mesh_id: str) -> Mesh:
        if mesh_id == "gone":
            raise AsmConnectionError("connection refused")
        return self._mesh

    async def meshes(self, project_id: str, region: str) -> list[Mesh]:
        return []

    async def delete_mesh(self, project_id: str, region: str, mesh_id: str) -> None:
        raise status_error(404, "ASM.01010002", "mesh not found", "req-2")

    async def update_mesh(
        self, project_id: str, region: str, mesh_id: str, request: UpdateMeshRequest
    ) -> None:
        raise status_error(409, "ASM.01010004", "mesh is not running", "req-3")

    async def create_upgrade(
        self, project_id: str, region: str, request: UpgradeTaskRequest
    ) -> UpgradeTask:
        raise status_error(409, "ASM.01010005", "an upgrade task holds the mesh", "req-4")

    async def upgrade_task(self, project_id: str, region: str, task_id: str) -> UpgradeTask:
        return UpgradeTask()

    async def move_upgrade(
        self, project_id: str, region: str, task_id: str, request: UpgradeTaskRequest
    ) -> None:
        return None

    async def upgrade_job(self, project_id: str, region: str, job_id: str) -> UpgradeJob:
        return UpgradeJob()


@pytest.fixture
def mesh() -> Mesh:
    return Mesh.model_validate(
        {"metadata": {"name": "mesh-a", "uid": "u-1"}, "status": {"phase": "Running"}}
    )


async def test_asm_calls_are_counted_by_operation_and_status(
    mesh: Mesh, registry: CollectorRegistry
) -> None:
    api = metrics.InstrumentedMeshApi(_Api(mesh), metrics.AsmCallMetrics(registry))

    assert await api.mesh("p", "r", "u-1") == mesh
    with pytest.raises(AsmConnectionError):
        await api.mesh("p", "r", "gone")
    with pytest.raises(Exception, match="409"):
        await api.create_mesh("p", "r", None)  # type: ignore[arg-type]
    assert await api.meshes("p", "r") == []
    with pytest.raises(Exception, match="404"):
        await api.delete_mesh("p", "r", "u-1")
    with pytest.raises(Exception, match="409"):
        await api.update_mesh("p", "r", "u-1", None)  # type: ignore[arg-type]
    with pytest.raises(Exception, match="409"):
        await api.create_upgrade("p", "r", None)  # type: ignore[arg-type]
    await api.upgrade_task("p", "r", "t-1")
    await api.move_upgrade("p", "r", "t-1", None)  # type: ignore[arg-type]
    await api.upgrade_job("p", "r", "j-1")

    calls = "meshfleet_asm_calls_total"
    assert _value(registry, calls, operation="show", status="200") == 1
    assert _value(registry, calls, operation="show", status="connection") == 1
    assert _value(registry, calls, operation="create", status="409") == 1
    assert _value(registry, calls, operation="list", status="200") == 1
    assert _value(registry, calls, operation="delete", status="404") == 1
    assert _value(registry, calls, operation="update", status="409") == 1
    assert _value(registry, calls, operation="create_upgrade", status="409") == 1
    assert _value(registry, calls, operation="show_upgrade", status="200") == 1
    assert _value(registry, calls, operation="move_upgrade", status="200") == 1
    assert _value(registry, calls, operation="show_upgrade_job", status="200") == 1
    assert _value(registry, "meshfleet_asm_call_seconds_count", operation="show") == 2
    assert _value(registry, "meshfleet_asm_call_seconds_count", operation="create") == 1


def test_served_over_http_for_a_scraper(registry: CollectorRegistry) -> None:
    metrics.record_asm_call("create", 201, 0.2, into=metrics.AsmCallMetrics(registry))
    server = metrics.serve(0, addr="127.0.0.1", registry=registry)
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            body = resp.read().decode()
    finally:
        server.shutdown()
        server.server_close()

    assert 'meshfleet_asm_calls_total{operation="create",status="201"} 1.0' in body
    assert 'meshfleet_asm_call_seconds_bucket{le="0.25",operation="create"} 1.0' in body
    assert 'meshfleet_asm_call_seconds_bucket{le="0.1",operation="create"} 0.0' in body


def test_the_worker_registry_holds_no_outcome_family() -> None:
    # Outcomes come from the SDK's exporter; a second, always-empty family on our port (which
    # serves the default registry) would mislead a dashboard.
    families = {family.name for family in REGISTRY.collect()}
    assert "meshfleet_asm_calls" in families
    assert not [name for name in families if name.startswith("meshfleet_meshes")]


def test_a_taken_port_is_an_error_not_a_silent_success() -> None:
    server = metrics.serve(0, addr="127.0.0.1")
    try:
        with pytest.raises(OSError):
            metrics.serve(server.server_port, addr="127.0.0.1")
    finally:
        server.shutdown()
        server.server_close()
