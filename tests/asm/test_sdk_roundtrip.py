"""Huawei's own Python SDK (huaweicloudsdkasm) against the simulator: the simulator speaks real ASM.

The SDK (3.1.x) sends ``/v1/{project_id}/meshes`` with the project from ``BasicCredentials``,
signs with SDK-HMAC-SHA256 and adds a signed ``X-Project-Id``. It is synchronous, so each call
runs in a thread while the simulator serves on the test's event loop; the simulator's clock is
a ``ManualClock`` advanced between calls, so no call waits.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import pytest
import urllib3.util.connection
from huaweicloudsdkasm.v1 import (
    Aom,
    AsmClient,
    CreateMeshRequest,
    DeleteMeshRequest,
    FieldSelector,
    InjectionConfig,
    InstallationConfig,
    ListMeshesRequest,
    Mesh,
    MeshCluster,
    MeshConfig,
    MeshExtendParams,
    MeshMetadata,
    MeshSpec,
    Metric,
    ProxyConfig,
    Selector,
    ShowMeshRequest,
    TelemetryConfig,
    Tracing,
    TracingExtensionProvider,
    ZipkinTracingProvider,
)
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkcore.http.http_config import HttpConfig

from meshfleet.asm.signer import AccessKey
from meshfleet.simulator import SimulatorConfig
from meshfleet.simulator.testing import ManualClock, RunningSimulator, serve

PROJECT = "0123456789abcdef0123456789abcdef"
AK = "AKSDKROUNDTRIP000001"
SK = "sk-sdk-roundtrip-secret"
CREATE_S = 5.0
DELETE_S = 2.0
_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")

T = TypeVar("T")


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every address the SDK connects to; anything but 127.0.0.1 is refused and recorded."""
    seen: list[tuple[str, int]] = []
    real = urllib3.util.connection.create_connection

    def loopback_only(address: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
        seen.append(address)
        if address[0] != "127.0.0.1":
            raise ConnectionRefusedError(f"the SDK tried to reach {address}")
        return real(address, *args, **kwargs)

    # requests (under the SDK) connects through urllib3; a proxy from the environment would
    # turn loopback calls into calls to the proxy.
    monkeypatch.setattr(urllib3.util.connection, "create_connection", loopback_only)
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return seen


@pytest.fixture
async def sim(clock: ManualClock) -> AsyncIterator[RunningSimulator]:
    """A simulator that accepts only the AK/SK pair of these tests."""
    config = SimulatorConfig(
        create_seconds=CREATE_S, delete_seconds=DELETE_S, access_keys=(AccessKey(AK, SK),)
    )
    async with serve(config, clock=clock) as running:
        yield running


def sdk_client(url: str, sk: str = SK) -> Any:
    """The SDK's client with an explicit project id and endpoint: no region, no IAM lookup."""
    config = HttpConfig.get_default_config()
    config.timeout = (5, 10)
    return (
        AsmClient.new_builder()
        .with_http_config(config)
        .with_credentials(BasicCredentials(AK, sk, PROJECT))
        .with_endpoints([url])
        .build()
    )


def seed_example(name: str, cluster_id: str) -> Any:
    """The seed's example request, built from the SDK's own models."""

    def selector(key: str, value: str) -> Any:
        return Selector(field_selector=FieldSelector(key=key, operator="In", values=[value]))

    cluster = MeshCluster(
        cluster_id=cluster_id,
        installation=InstallationConfig(nodes=selector("UID", "1c531b0c-node")),
        injection=InjectionConfig(namespaces=selector("Name", "default")),
    )
    tracing = Tracing(
        random_sampling_percentage=1,
        default_providers=["zipkin"],
        extension_providers=[
            TracingExtensionProvider(
                name="zipkin",
                zipkin=ZipkinTracingProvider(service="zipkin.monitoring.svc", port=9411),
            )
        ],
    )
    config = MeshConfig(
        proxy_config=ProxyConfig(include_ip_ranges="10.247.0.0/16"),
        telemetry_config=TelemetryConfig(
            metrics=Metric(aom=[Aom(instance_id="602a5b7e-aom")]), tracing=tracing
        ),
    )
    spec = MeshSpec(
        type="InCluster",
        version="1.18.7-r5",
        extend_params=MeshExtendParams(clusters=[cluster]),
        config=config,
    )
    return Mesh(api_version="v1", kind="Mesh", metadata=MeshMetadata(name=name), spec=spec)


async def in_thread(call: Callable[..., T], *args: Any) -> T:
    """Run one blocking SDK call off the event loop that serves the simulator."""
    return await asyncio.to_thread(call, *args)


async def test_sdk_create_show_list_delete_round_trip(
    sim: RunningSimulator, clock: ManualClock, connections: list[tuple[str, int]]
) -> None:
    client = sdk_client(sim.url)
    try:
        request = CreateMeshRequest(body=seed_example("sdk-mesh", "cluster-sdk"))
        created = await in_thread(client.create_mesh, request)
        assert created.status_code == 201
        assert (created.metadata.name, created.status.phase) == ("sdk-mesh", "Creating")
        uid = created.metadata.uid
        assert uuid.UUID(uid)
        assert [c.cluster_id for c in created.spec.extend_params.clusters] == ["cluster-sdk"]
        assert created.spec.extend_params.clusters[0].installation is None  # not echoed

        shown = await in_thread(client.show_mesh, ShowMeshRequest(mesh_id=uid))
        assert (shown.metadata.uid, shown.status.phase) == (uid, "Creating")
        clock.advance(CREATE_S)
        shown = await in_thread(client.show_mesh, ShowMeshRequest(mesh_id=uid))
        assert shown.status.phase == "Running"

        listed = await in_thread(client.list_meshes, ListMeshesRequest())
        assert (listed.api_version, listed.kind) == ("v1", "MeshList")
        assert [(m.metadata.uid, m.status.phase) for m in listed.items] == [(uid, "Running")]

        with pytest.raises(ClientRequestException) as conflict:
            await in_thread(client.create_mesh, request)
        assert (conflict.value.status_code, conflict.value.error_code) == (409, "ASM.01010003")
        assert uuid.UUID(conflict.value.request_id)

        deleted = await in_thread(client.delete_mesh, DeleteMeshRequest(mesh_id=uid))
        assert (deleted.status_code, deleted.status.phase) == (200, "Deleting")
        clock.advance(DELETE_S)
        with pytest.raises(ClientRequestException) as gone:
            await in_thread(client.show_mesh, ShowMeshRequest(mesh_id=uid))
        assert (gone.value.status_code, gone.value.error_code) == (404, "ASM.01010002")
        assert (await in_thread(client.list_meshes, ListMeshesRequest())).items == []
    finally:
        client.close()

    stats = sim.state.stats
    assert stats.creations(PROJECT, "sdk-mesh") == 1
    # Counted under the create/show/list/delete routes: the SDK used /v1/{project_id}/meshes.
    assert stats.by_operation == {
        "create": {201: 1, 409: 1},
        "show": {200: 2, 404: 1},
        "list": {200: 2},
        "delete": {200: 1},
    }
    assert connections
    assert {address for address in connections} == {("127.0.0.1", sim.port)}


async def test_sdk_with_a_wrong_secret_key_gets_401(
    sim: RunningSimulator, connections: list[tuple[str, int]]
) -> None:
    client = sdk_client(sim.url, sk=SK + "-wrong")
    try:
        with pytest.raises(ClientRequestException) as info:
            await in_thread(client.list_meshes, ListMeshesRequest())
        with pytest.raises(ClientRequestException) as create_info:
            request = CreateMeshRequest(body=seed_example("sdk-mesh", "cluster-sdk"))
            await in_thread(client.create_mesh, request)
    finally:
        client.close()
    for raised in (info.value, create_info.value):
        assert (raised.status_code, raised.error_code) == (401, "ASM.01000001")
        assert "signature does not match" in raised.error_msg
        assert uuid.UUID(raised.request_id)
        assert SK not in raised.error_msg
    assert sim.state.all_meshes() == []
    assert dict(sim.state.stats.by_status) == {401: 2}
    assert {address for address in connections} == {("127.0.0.1", sim.port)}
