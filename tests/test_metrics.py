"""meshfleet's Prometheus metrics: what the worker records and what a scraper reads."""

from __future__ import annotations

import urllib.request

import pytest
from prometheus_client import REGISTRY

from activities.mesh import MeshApi
from meshfleet import metrics
from meshfleet.asm.client import AsmClient
from meshfleet.asm.errors import AsmConnectionError, status_error
from meshfleet.asm.models import CreateMeshRequest, Mesh


def _wraps_the_real_client(api: AsmClient) -> MeshApi:
    # Checked by mypy, never run: the wrapper takes an AsmClient and is what the activities need.
    return metrics.InstrumentedMeshApi(api)


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


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

    async def find_mesh(self, project_id: str, region: str, name: str) -> Mesh | None:
        return None


@pytest.fixture
def mesh() -> Mesh:
    return Mesh.model_validate(
        {"metadata": {"name": "mesh-a", "uid": "u-1"}, "status": {"phase": "Running"}}
    )


async def test_asm_calls_are_counted_by_operation_and_status(mesh: Mesh) -> None:
    api = metrics.InstrumentedMeshApi(_Api(mesh))
    before = {
        "show_ok": _value("meshfleet_asm_calls_total", operation="show", status="200"),
        "show_conn": _value("meshfleet_asm_calls_total", operation="show", status="connection"),
        "create_409": _value("meshfleet_asm_calls_total", operation="create", status="409"),
        "list_ok": _value("meshfleet_asm_calls_total", operation="list", status="200"),
        "show_n": _value("meshfleet_asm_call_seconds_count", operation="show"),
    }

    assert await api.mesh("p", "r", "u-1") == mesh
    with pytest.raises(AsmConnectionError):
        await api.mesh("p", "r", "gone")
    with pytest.raises(Exception, match="409"):
        await api.create_mesh("p", "r", None)  # type: ignore[arg-type]
    assert await api.find_mesh("p", "r", "mesh-a") is None

    assert _value("meshfleet_asm_calls_total", operation="show", status="200") == (
        before["show_ok"] + 1
    )
    assert _value("meshfleet_asm_calls_total", operation="show", status="connection") == (
        before["show_conn"] + 1
    )
    assert _value("meshfleet_asm_calls_total", operation="create", status="409") == (
        before["create_409"] + 1
    )
    assert _value("meshfleet_asm_calls_total", operation="list", status="200") == (
        before["list_ok"] + 1
    )
    assert _value("meshfleet_asm_call_seconds_count", operation="show") == before["show_n"] + 2


def test_served_over_http_for_a_scraper() -> None:
    metrics.record_asm_call("create", 201, 0.2)
    server = metrics.serve(0, addr="127.0.0.1")
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as resp:
            body = resp.read().decode()
    finally:
        server.shutdown()
        server.server_close()

    assert 'meshfleet_asm_calls_total{operation="create",status="201"}' in body
    assert 'meshfleet_asm_call_seconds_bucket{le="0.25",operation="create"}' in body
    # Outcomes come from the SDK's exporter; a second, always-empty family here would mislead.
    assert "meshfleet_meshes" not in body


def test_a_taken_port_is_an_error_not_a_silent_success() -> None:
    server = metrics.serve(0, addr="127.0.0.1")
    try:
        with pytest.raises(OSError):
            metrics.serve(server.server_port, addr="127.0.0.1")
    finally:
        server.shutdown()
        server.server_close()
