"""The worker process: settings -> logging -> Temporal client -> Worker(workflows, activities)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Mapping
from datetime import timedelta

import structlog
from temporalio.client import Client
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)
from temporalio.worker import Worker

from activities.mesh import MeshActivities, MeshApi
from activities.pages import TargetPageActivities
from activities.targets import TargetWatchActivities
from asm.auth import auth_from_env
from asm.client import AsmClient
from meshfleet import logs, metrics
from meshfleet.settings import Settings
from meshfleet.temporal import connect
from workflows.registry import ALL_WORKFLOWS

log = structlog.get_logger("meshfleet.worker")


def build_worker(client: Client, settings: Settings, api: MeshApi) -> Worker:
    """A worker for every meshfleet workflow and activity on ``settings.task_queue``."""
    mesh = MeshActivities(api, creates_per_second=settings.max_creates_per_second)
    pages = TargetPageActivities(client)
    watch = TargetWatchActivities(client)
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=ALL_WORKFLOWS,
        activities=[
            mesh.create_mesh,
            mesh.wait_for_mesh,
            pages.load_target_page,
            watch.await_target,
        ],
        max_concurrent_activities=settings.max_concurrent_activities,
        max_concurrent_workflow_tasks=settings.max_concurrent_workflow_tasks,
        max_concurrent_local_activities=settings.max_concurrent_local_activities,
        max_activities_per_second=settings.max_activities_per_second,
        max_task_queue_activities_per_second=settings.max_task_queue_activities_per_second,
        graceful_shutdown_timeout=timedelta(seconds=settings.graceful_shutdown_s),
    )


def _runtime(settings: Settings) -> Runtime:
    # The SDK's metrics (and the per-target outcomes its replay-safe workflow meter records)
    # come from its Rust core, which has its own exporter: a port of its own.
    prometheus = (
        PrometheusConfig(
            bind_address=f"0.0.0.0:{settings.sdk_metrics_port}",
            # The core's default buckets are for milliseconds; ours are seconds to minutes.
            histogram_bucket_overrides={
                metrics.SECONDS_TO_RUNNING_METRIC: list(metrics.SECONDS_TO_RUNNING_BUCKETS)
            },
        )
        if settings.sdk_metrics_port is not None
        else None
    )
    # The core logs to the console in its own coloured format; forwarded, its lines go through
    # structlog like ours (JSON in production).
    logging_config = LoggingConfig(
        filter=TelemetryFilter(core_level="WARN", other_level="WARN"),
        forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
    )
    return Runtime(telemetry=TelemetryConfig(metrics=prometheus, logging=logging_config))


async def run_worker(
    environ: Mapping[str, str] | None = None, stop: asyncio.Event | None = None
) -> None:
    """Run until SIGINT/SIGTERM (or ``stop``), then drain within the grace period."""
    env = dict(os.environ if environ is None else environ)
    # The workflow sandbox re-imports the workflow modules for every workflow run; without their
    # .pyc each import compiles the source again, a quarter of the worker's CPU in a profile
    # (docs/performance.md). PYTHONDONTWRITEBYTECODE must not cost that.
    sys.dont_write_bytecode = False
    settings = Settings.model_validate(env)
    logs.configure(settings.log_format, settings.log_level)
    auth = auth_from_env(env)
    client = await connect(environ, runtime=_runtime(settings))
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if settings.metrics_port is not None:
        metrics.serve(settings.metrics_port)
    async with AsmClient(
        auth, endpoint=settings.asm_endpoint, request_timeout=settings.asm_request_timeout_s
    ) as asm:
        worker = build_worker(client, settings, metrics.InstrumentedMeshApi(asm))
        log.info(
            "worker started",
            task_queue=settings.task_queue,
            namespace=client.namespace,
            asm_endpoint=settings.asm_endpoint or "per-region default",
        )
        async with worker:
            await stop.wait()
            log.info("stopping worker", grace_s=settings.graceful_shutdown_s)
    log.info("worker stopped")


def main() -> int:
    """Entry point of ``python worker.py`` and ``meshfleet worker``."""
    try:
        asyncio.run(run_worker())
        code = 0
    except Exception as exc:  # one clear line instead of a traceback, for operators
        print(f"meshfleet worker: {type(exc).__name__}: {exc}", file=sys.stderr)
        code = 3
    # The SDK can abort during interpreter shutdown (design.md, sdk-python #300): leave at once.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
