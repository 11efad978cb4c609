"""Test helpers: fleets of targets, a worker on the real ASM client, history scans."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from temporalio.client import Client
from temporalio.worker import Worker

from meshfleet.asm.auth import Auth, StaticTokenAuth
from meshfleet.asm.client import AsmClient
from meshfleet.models import MeshTarget, RetryPolicySpec, RolloutSpec, RolloutStrategy
from meshfleet.settings import Settings
from meshfleet.webhook import VerifyHook
from worker import build_worker

REGIONS = ("ap-southeast-1", "ap-southeast-3", "cn-north-4")


SAMPLE_TARGET = MeshTarget(
    project_id="0123456789abcdef0123456789abcdef",
    region="ap-southeast-3",
    cluster_id="cluster-a",
    mesh_name="mesh-a",
    node_ids=["node-1"],
)
"""One plain target, for tests about what happens to a single mesh."""


def project(i: int) -> str:
    """A valid 32-hex project id, distinct per ``i``."""
    return f"{i:032x}"


def target(
    i: int, name: str | None = None, *, cluster: str | None = None, region: str | None = None
) -> MeshTarget:
    """Target ``i``: spread over 5 projects and 3 regions (unless ``region`` says which), its
    own cluster and node."""
    return MeshTarget(
        project_id=project(i % 5 + 1),
        region=region or REGIONS[i % len(REGIONS)],
        cluster_id=cluster or f"cluster-{i:05d}",
        mesh_name=name or f"mesh-{i:05d}",
        node_ids=[f"node-{i:05d}"],
    )


def unique_fleet(
    size: int, prefix: str = "logic", *, first: int = 0, region: str | None = None
) -> list[MeshTarget]:
    """Targets ``first`` .. ``first + size - 1`` with mesh names no other test of the session
    uses (``PREFIX-TAG-NN``), so no two tests share a target's workflow id."""
    tag = uuid.uuid4().hex[:6]
    return [target(first + i, f"{prefix}-{tag}-{i:02d}", region=region) for i in range(size)]


def names(targets: Sequence[MeshTarget] | None) -> list[str]:
    """The mesh names of ``targets``, in their order (none for a paged input's ``None``)."""
    return [t.mesh_name for t in targets or []]


def fast_strategy(**overrides: object) -> RolloutStrategy:
    """Timings shrunk from Terraform's minutes to fractions of a second."""
    values: dict[str, object] = {
        "window": 10,
        "waves": ["100%"],
        "max_failures": "100%",
        "first_poll_s": 0.2,
        "poll_interval_s": 0.2,
        "timeout_s": 60,
        "heartbeat_timeout_s": 5,
        "create_retry": RetryPolicySpec(initial_s=0.1, maximum_s=0.5, max_attempts=10),
    }
    values.update(overrides)
    return RolloutStrategy.model_validate(values)


def spec(rollout_id: str, targets: list[MeshTarget], **strategy: object) -> RolloutSpec:
    """A rollout of ``targets`` with fast timings."""
    return RolloutSpec(rollout_id=rollout_id, strategy=fast_strategy(**strategy), targets=targets)


@asynccontextmanager
async def running_worker(
    client: Client,
    task_queue: str,
    asm_url: str,
    auth: Auth | None = None,
    hook: VerifyHook | None = None,
) -> AsyncIterator[Worker]:
    """The production worker (``worker.build_worker``) against the simulator at ``asm_url``."""
    settings = Settings.model_validate({"MESHFLEET_TASK_QUEUE": task_queue})
    async with AsmClient(auth or StaticTokenAuth(SIM_TOKEN), endpoint=asm_url) as api:
        worker = build_worker(client, settings, api, hook)
        async with worker:
            yield worker


SIM_TOKEN = "sim-token-3f9c2b7e41d8"


async def history_bytes(client: Client, query: str) -> bytes:
    """Every event of every workflow matching ``query``, with memo and search attributes.

    The protobuf encoding embeds payload data verbatim (JSON text), where a JSON dump of the
    history would hide it in base64: searching these bytes finds any string a payload holds.
    """
    chunks: list[bytes] = []
    async for execution in client.list_workflows(query):
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        history = await handle.fetch_history()
        chunks.extend(event.SerializeToString() for event in history.events)
        chunks.append(json.dumps(await execution.memo(), default=str).encode())
        chunks.append(repr(execution.typed_search_attributes).encode())
    return b"\n".join(chunks)
