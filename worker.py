"""The worker process: settings -> logging -> Temporal client -> Worker(workflows, activities)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Mapping
from datetime import timedelta
from typing import NoReturn

import structlog
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    PrometheusConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)
from temporalio.worker import Worker, WorkerDeploymentConfig

from activities.deletion import DeletionActivities
from activities.drift import DriftActivities, notify_hook
from activities.mesh import MeshActivities
from activities.pages import TargetPageActivities
from activities.targets import TargetWatchActivities
from activities.update import UpdateActivities
from activities.upgrade import UpgradeActivities
from activities.verify import VerifyActivities
from meshfleet import __version__, logs, metrics
from meshfleet.asm.auth import auth_from_env
from meshfleet.asm.calls import MeshWriteApi
from meshfleet.asm.client import AsmClient
from meshfleet.process_exit import flush_and_exit
from meshfleet.settings import Settings
from meshfleet.temporal import connect
from meshfleet.webhook import VerifyHook
from workflows.registry import ALL_WORKFLOWS, VERSIONED_WORKFLOWS

log = structlog.get_logger("meshfleet.worker")

UNVERSIONED_DEPLOYMENT = "meshfleet"
"""The deployment an unversioned worker names in history (the server creates none for it)."""


def deployment_config(settings: Settings) -> WorkerDeploymentConfig:
    """Worker Versioning on when a deployment name is set; the build id recorded either way.

    Without versioning the worker still tells the server its build (meshfleet's version), which
    every workflow task records in history, instead of the SDK's default: a hash of the loaded
    modules' bytecode that names no release (and takes the SDK a walk of every module).
    """
    if settings.deployment_name is None:
        return WorkerDeploymentConfig(
            version=WorkerDeploymentVersion(UNVERSIONED_DEPLOYMENT, settings.build_id),
            use_worker_versioning=False,
        )
    return WorkerDeploymentConfig(
        version=WorkerDeploymentVersion(settings.deployment_name, settings.build_id),
        use_worker_versioning=True,
        # No default on purpose: every workflow type declares its behaviour
        # (workflows/versioned.py), and the SDK refuses to start a versioned worker with a
        # workflow that declares none, rather than guessing one for it.
        default_versioning_behavior=VersioningBehavior.UNSPECIFIED,
    )


VERIFY_TOKEN_ENV = "MESHFLEET_VERIFY_TOKEN"  # noqa: S105 (a variable name, not a secret)
"""The verify webhook's bearer token: read by the worker alone, so it never enters a manifest,
a workflow input or the history."""


def verify_hook(settings: Settings, environ: Mapping[str, str]) -> VerifyHook:
    """The verify webhook poster: the token of ``environ``, sent only under the prefixes of
    ``MESHFLEET_VERIFY_ALLOWED_URLS`` (none set: no webhook at all)."""
    token = environ.get(VERIFY_TOKEN_ENV, "").strip() or None
    return VerifyHook(token, allowed=settings.verify_allowed_urls)


def build_worker(
    client: Client,
    settings: Settings,
    api: MeshWriteApi,
    hook: VerifyHook | None = None,
    notify: VerifyHook | None = None,
) -> Worker:
    """A worker for every meshfleet workflow and activity on ``settings.task_queue``.

    ``notify`` posts a drift check's report (``activities.drift.notify_hook``); None: a poster
    without a token, under the same allowed URLs as the verify webhook.
    """
    mesh = MeshActivities(api, creates_per_second=settings.max_creates_per_second)
    pages = TargetPageActivities(client)
    watch = TargetWatchActivities(client)
    verify = VerifyActivities(api, client, hook or VerifyHook(allowed=settings.verify_allowed_urls))
    deletion = DeletionActivities(api)
    update = UpdateActivities(api)
    upgrade = UpgradeActivities(api)
    # A drift check holds the client as a lister of meshes only (meshfleet.drift_check).
    drift = DriftActivities(api, client, notify or VerifyHook(allowed=settings.verify_allowed_urls))
    return Worker(
        client,
        task_queue=settings.task_queue,
        # Only a versioned worker may declare behaviours (workflows/versioned.py).
        workflows=VERSIONED_WORKFLOWS if settings.versioned else ALL_WORKFLOWS,
        deployment_config=deployment_config(settings),
        activities=[
            mesh.create_mesh,
            mesh.wait_for_mesh,
            pages.load_target_page,
            watch.await_target,
            watch.request_cancel,
            verify.verify_wave,
            deletion.delete_mesh,
            deletion.wait_for_mesh_gone,
            update.judge_mesh,
            update.update_mesh,
            update.wait_for_config,
            upgrade.create_upgrade_task,
            upgrade.upgrade_step,
            drift.check_drift,
            drift.notify_drift,
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
        worker = build_worker(
            client,
            settings,
            metrics.InstrumentedMeshApi(asm),
            verify_hook(settings, env),
            notify_hook(settings.verify_allowed_urls, env),
        )
        versioning = (
            {"deployment_name": settings.deployment_name, "build_id": settings.build_id}
            if settings.versioned
            else {"worker_versioning": "off"}
        )
        log.info(
            "worker started",
            version=__version__,
            task_queue=settings.task_queue,
            namespace=client.namespace,
            asm_endpoint=settings.asm_endpoint or "per-region default",
            verify_allowed_urls=[prefix.text for prefix in settings.verify_allowed_urls],
            **versioning,
        )
        async with worker:
            await stop.wait()
            log.info("stopping worker", grace_s=settings.graceful_shutdown_s)
    log.info("worker stopped")


def main() -> NoReturn:
    """Entry point of ``python worker.py`` and ``meshfleet worker``: ends the process."""
    try:
        asyncio.run(run_worker())
        code = 0
    except Exception as exc:  # one clear line instead of a traceback, for operators
        print(f"meshfleet worker: {type(exc).__name__}: {exc}", file=sys.stderr)
        code = 3
    flush_and_exit(code)


if __name__ == "__main__":
    main()
