"""Our Prometheus metrics of ASM calls, and the buckets of the SDK-side seconds to Running."""

# ASM calls are counted here, in prometheus_client's default registry, served by ``serve(port)``
# on MESHFLEET_METRICS_PORT. Outcomes and seconds to Running are recorded by CreateMeshWorkflow
# through the SDK's replay-safe workflow meter, so they come out of the SDK's own exporter
# (MESHFLEET_SDK_METRICS_PORT), whose registry Python cannot add to: hence two ports.

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar
from wsgiref.simple_server import WSGIServer

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server

from meshfleet.asm.calls import MeshWriteApi
from meshfleet.asm.errors import AsmConnectionError, AsmError, AsmStatusError, AsmValidationError
from meshfleet.asm.models import CreateMeshRequest, Mesh, UpdateMeshRequest
from meshfleet.asm.upgrade import UpgradeJob, UpgradeTask, UpgradeTaskRequest

_T = TypeVar("_T")

# Mesh creation takes minutes against the real API and seconds against the simulator: buckets
# span both so one dashboard serves the demo and production. The SDK's default buckets (50, 100,
# 500, ...) are meant for milliseconds: worker.py hands these to PrometheusConfig as the
# histogram_bucket_overrides of ``SECONDS_TO_RUNNING_METRIC``.
SECONDS_TO_RUNNING_METRIC: Final = "meshfleet_seconds_to_running"
SECONDS_TO_RUNNING_BUCKETS: Final = (
    1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1200.0, 1800.0, 3600.0,
)  # fmt: skip
ASM_CALL_BUCKETS: Final = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# The statuses a successful call answers with (docs/asm-api.md, "Calls and paths"), so success
# and failure share a label.
_SUCCESS_STATUS: Final = {
    "create": "201",
    "show": "200",
    "list": "200",
    "update": "200",
    "delete": "200",
    "create_upgrade": "201",
    "show_upgrade": "200",
    "move_upgrade": "200",
    "show_upgrade_job": "200",
}


class AsmCallMetrics:
    """The counter and histogram of ASM calls, registered in one registry.

    The worker uses ``DEFAULT_ASM_METRICS`` (prometheus_client's default registry, what
    ``serve`` exposes); a test passes its own registry and reads exactly the calls it made.
    """

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry = registry
        self.calls = Counter(
            "meshfleet_asm_calls",
            "ASM API calls by operation (create, show, list, delete) and HTTP status; "
            "'connection' when no answer came, 'invalid' when a value was refused before sending.",
            ["operation", "status"],
            registry=registry,
        )
        self.seconds = Histogram(
            "meshfleet_asm_call_seconds",
            "Duration of ASM API calls by operation, answered or not.",
            ["operation"],
            buckets=ASM_CALL_BUCKETS,
            registry=registry,
        )

    def record(self, operation: str, status: int | str, seconds: float | None = None) -> None:
        """Count one ASM call (see ``record_asm_call``)."""
        self.calls.labels(operation=operation, status=str(status)).inc()
        if seconds is not None:
            self.seconds.labels(operation=operation).observe(seconds)


DEFAULT_ASM_METRICS: Final = AsmCallMetrics()
ASM_CALLS: Final = DEFAULT_ASM_METRICS.calls
ASM_CALL_SECONDS: Final = DEFAULT_ASM_METRICS.seconds


def record_asm_call(
    operation: str,
    status: int | str,
    seconds: float | None = None,
    into: AsmCallMetrics = DEFAULT_ASM_METRICS,
) -> None:
    """Count one ASM call.

    Args:
        operation: ``create``, ``show``, ``list`` or ``delete``.
        status: The HTTP status, or ``connection`` / ``invalid`` when there was none.
        seconds: How long the call took, when known.
        into: Where to count it (the default registry's metrics unless given).
    """
    into.record(operation, status, seconds)


def status_of(exc: AsmError) -> str:
    """The ``status`` label of a failed ASM call."""
    if isinstance(exc, AsmStatusError):
        return str(exc.status)
    if isinstance(exc, AsmConnectionError):
        return "connection"
    if isinstance(exc, AsmValidationError):
        return "invalid"
    return "error"


async def _timed(
    operation: str, call: Callable[[], Awaitable[_T]], into: AsmCallMetrics = DEFAULT_ASM_METRICS
) -> _T:
    started = time.monotonic()
    try:
        result = await call()
    except AsmError as exc:
        into.record(operation, status_of(exc), time.monotonic() - started)
        raise
    into.record(operation, _SUCCESS_STATUS[operation], time.monotonic() - started)
    return result


class InstrumentedMeshApi:
    """Wraps ``AsmClient`` (or any ``MeshApi``) and counts every call made through it.

    Wrapping at the worker keeps the activities free of metrics code and counts each HTTP call
    once, including the list call that a 409 leads to.
    """

    def __init__(self, api: MeshWriteApi, metrics: AsmCallMetrics = DEFAULT_ASM_METRICS) -> None:
        self._api = api
        self._metrics = metrics

    async def create_mesh(self, project_id: str, region: str, request: CreateMeshRequest) -> Mesh:
        """``AsmClient.create_mesh``, counted as ``create``."""
        return await _timed(
            "create", lambda: self._api.create_mesh(project_id, region, request), self._metrics
        )

    async def mesh(self, project_id: str, region: str, mesh_id: str) -> Mesh:
        """``AsmClient.mesh``, counted as ``show``."""
        return await _timed(
            "show", lambda: self._api.mesh(project_id, region, mesh_id), self._metrics
        )

    async def meshes(self, project_id: str, region: str) -> list[Mesh]:
        """``AsmClient.meshes``, counted as ``list``."""
        return await _timed("list", lambda: self._api.meshes(project_id, region), self._metrics)

    async def update_mesh(
        self, project_id: str, region: str, mesh_id: str, request: UpdateMeshRequest
    ) -> None:
        """``AsmClient.update_mesh``, counted as ``update``."""
        await _timed(
            "update",
            lambda: self._api.update_mesh(project_id, region, mesh_id, request),
            self._metrics,
        )

    async def delete_mesh(self, project_id: str, region: str, mesh_id: str) -> None:
        """``AsmClient.delete_mesh``, counted as ``delete``."""
        await _timed(
            "delete", lambda: self._api.delete_mesh(project_id, region, mesh_id), self._metrics
        )

    async def create_upgrade(
        self, project_id: str, region: str, request: UpgradeTaskRequest
    ) -> UpgradeTask:
        """``AsmClient.create_upgrade``, counted as ``create_upgrade``."""
        return await _timed(
            "create_upgrade",
            lambda: self._api.create_upgrade(project_id, region, request),
            self._metrics,
        )

    async def upgrade_task(self, project_id: str, region: str, task_id: str) -> UpgradeTask:
        """``AsmClient.upgrade_task``, counted as ``show_upgrade``."""
        return await _timed(
            "show_upgrade",
            lambda: self._api.upgrade_task(project_id, region, task_id),
            self._metrics,
        )

    async def move_upgrade(
        self, project_id: str, region: str, task_id: str, request: UpgradeTaskRequest
    ) -> None:
        """``AsmClient.move_upgrade``, counted as ``move_upgrade``."""
        await _timed(
            "move_upgrade",
            lambda: self._api.move_upgrade(project_id, region, task_id, request),
            self._metrics,
        )

    async def upgrade_job(self, project_id: str, region: str, job_id: str) -> UpgradeJob:
        """``AsmClient.upgrade_job``, counted as ``show_upgrade_job``."""
        return await _timed(
            "show_upgrade_job",
            lambda: self._api.upgrade_job(project_id, region, job_id),
            self._metrics,
        )


def serve(
    port: int,
    addr: str = "0.0.0.0",  # noqa: S104 - a scraper outside the container must reach it
    registry: CollectorRegistry = REGISTRY,
) -> WSGIServer:
    """Serve ``/metrics`` on ``addr:port`` from a daemon thread; port 0 picks a free port.

    Returns:
        The server (``server.server_port`` is the bound port; ``server.shutdown()`` stops it).

    Raises:
        OSError: the port is taken.
    """
    server, _ = start_http_server(port, addr=addr, registry=registry)
    return server
