"""The fleets the drift tests judge, the simulator holding them, and a worker that checks them.

``FLEET`` holds a target in each judgement a drift check meets: two meshes as the manifest
wants them (in sync), one created with another configuration (update), one running an older
version (upgrade) and one that does not exist (missing).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from temporalio.client import Client
from temporalio.worker import Worker

from activities.drift import NOTIFY_TOKEN_ENV, notify_hook
from meshfleet.asm.auth import StaticTokenAuth
from meshfleet.asm.client import AsmClient
from meshfleet.models import MeshTarget
from meshfleet.settings import Settings
from meshfleet.simulator.state import SimulatorState
from meshfleet.webhook_allowlist import ALLOWED_URLS_ENV
from tests.helpers.cli_run import manifest_target
from tests.helpers.fleet import SIM_TOKEN
from worker import build_worker

P1 = "0123456789abcdef0123456789abcdef"
P2 = "fedcba9876543210fedcba9876543210"
REGION = "ap-southeast-3"
VERSION = "1.18.7-r5"
OLDER = "1.15.7-r1"
SAMPLED = {"telemetryConfig": {"tracing": {"randomSamplingPercentage": 10}}}
SAMPLED_LESS = {"telemetryConfig": {"tracing": {"randomSamplingPercentage": 1}}}
SAMPLING = "config.telemetryConfig.tracing.randomSamplingPercentage"
NOTIFY_TOKEN = "drift-notify-token-7d21"


def tagged(name: str, tag: str) -> str:
    """``name`` of this test's fleet: the meshes of one test never meet another's."""
    return f"{name}-{tag}"


def fleet(tag: str) -> list[dict[str, Any]]:
    """Manifest entries: two in sync, an update, an upgrade and a missing mesh, over two
    projects."""
    entries = [
        manifest_target(P1, tagged("same", tag)),
        {**manifest_target(P2, tagged("sampled", tag)), "config": SAMPLED},
        {**manifest_target(P1, tagged("drift", tag)), "config": SAMPLED},
        manifest_target(P2, tagged("old", tag)),
        manifest_target(P1, tagged("new", tag)),
    ]
    return entries


def in_sync_fleet(tag: str) -> list[dict[str, Any]]:
    """Manifest entries of the two meshes ``seed`` puts in place as they are wanted."""
    return fleet(tag)[:2]


def _put_in_place(state: SimulatorState, entry: dict[str, Any], **changed: Any) -> None:
    """The mesh a rollout of ``entry`` would have created, with ``changed`` fields of its own."""
    target = MeshTarget.model_validate({"region": REGION, "version": VERSION, **entry, **changed})
    state.create_mesh(target.project_id, target.to_request())


def seed(state: SimulatorState, tag: str) -> None:
    """The meshes of ``fleet(tag)`` that exist: all but the missing one."""
    same, sampled, drift, old, _missing = fleet(tag)
    _put_in_place(state, same)
    _put_in_place(state, sampled)
    _put_in_place(state, drift, config=SAMPLED_LESS)
    state.seed_mesh(P2, old["mesh_name"], [old["cluster_id"]], version=OLDER)


def new_tag() -> str:
    """A tag no other test of the session uses."""
    return uuid.uuid4().hex[:6]


async def sim_writes(http: aiohttp.ClientSession, url: str) -> dict[str, int]:
    """The simulator's POST, PUT and DELETE counts, as ``/_sim/stats`` says them."""
    async with http.get(f"{url}/_sim/stats") as resp:
        resp.raise_for_status()
        stats = await resp.json()
    return {key: stats[key] for key in ("posts", "puts", "deletes")}


@asynccontextmanager
async def drift_worker(
    client: Client,
    task_queue: str,
    asm_url: str,
    *,
    allowed: str = "",
    environ: Mapping[str, str] | None = None,
) -> AsyncIterator[Worker]:
    """The production worker against the simulator, its notify poster wired as ``worker.py``
    wires it: ``allowed`` prefixes (``MESHFLEET_VERIFY_ALLOWED_URLS``), the token of
    ``environ`` (``MESHFLEET_NOTIFY_TOKEN``)."""
    settings = Settings.model_validate(
        {"MESHFLEET_TASK_QUEUE": task_queue, ALLOWED_URLS_ENV: allowed}
    )
    env = {NOTIFY_TOKEN_ENV: NOTIFY_TOKEN} if environ is None else environ
    async with AsmClient(StaticTokenAuth(SIM_TOKEN), endpoint=asm_url) as api:
        worker = build_worker(
            client, settings, api, notify=notify_hook(settings.verify_allowed_urls, env)
        )
        async with worker:
            yield worker
