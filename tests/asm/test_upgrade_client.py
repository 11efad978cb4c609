"""``AsmClient``'s canary upgrade calls over loopback HTTP: the wire, the answers, their error
classes, and the metrics wrapper's counts."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from meshfleet import metrics
from meshfleet.asm.auth import AkSkAuth, StaticTokenAuth
from meshfleet.asm.calls import MeshUpgradeApi, MeshWriteApi
from meshfleet.asm.client import AsmClient
from meshfleet.asm.errors import (
    AsmBadRequestError,
    AsmConflictError,
    AsmNotFoundError,
    AsmValidationError,
)
from meshfleet.asm.models import MeshPhase
from meshfleet.asm.signer import AccessKey
from meshfleet.asm.upgrade import StepPhase, UpgradeJob, UpgradeStep, UpgradeTaskRequest
from meshfleet.simulator.config import SimulatorConfig
from meshfleet.simulator.testing import ManualClock, RunningSimulator, serve

PROJECT = "0123456789abcdef0123456789abcdef"
OTHER_PROJECT = "fedcba9876543210fedcba9876543210"
REGION = "ap-southeast-3"
TOKEN = "tok-upgrade-client-tests"
AK = "AKUPGRADETEST0000001"
SK = "sk-upgrade-test-secret"
STEP_S = 2.0
OLD = "1.15.7-r3"
NEW = "1.18.7-r5"
UNKNOWN_ID = "a1efdc3e-0000-4000-8000-94bef433347e"


def _the_client_is_an_upgrade_api(api: AsmClient) -> MeshWriteApi:
    # Checked by mypy, never run: the client, and its metrics wrapper, keep the protocols.
    upgrade: MeshUpgradeApi = api
    assert upgrade
    return metrics.InstrumentedMeshApi(api)


def for_step(mesh_uid: str, step: UpgradeStep, version: str = NEW) -> UpgradeTaskRequest:
    return UpgradeTaskRequest.for_step(mesh_uid, "mesh-a", version, step)


@pytest.fixture
async def sim(clock: ManualClock) -> AsyncIterator[RunningSimulator]:
    config = SimulatorConfig(
        upgrade_step_seconds=STEP_S, tokens=(TOKEN,), access_keys=(AccessKey(AK, SK),)
    )
    async with serve(config, clock=clock) as running:
        yield running


@pytest.fixture
async def asm(sim: RunningSimulator) -> AsyncIterator[AsmClient]:
    async with AsmClient(StaticTokenAuth(TOKEN), endpoint=sim.url) as client:
        yield client


def seed(sim: RunningSimulator, version: str = OLD, name: str = "mesh-a") -> str:
    return sim.state.seed_mesh(PROJECT, name, [f"cluster-{name}"], version=version).uid


@asynccontextmanager
async def _stub(
    handler: Callable[[web.Request], Any], seen: list[tuple[web.Request, bytes]]
) -> AsyncIterator[str]:
    """A catch-all server on 127.0.0.1 that records each request with its body."""

    async def record(request: web.Request) -> web.StreamResponse:
        seen.append((request, await request.read()))
        response: web.StreamResponse = await handler(request)
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


# --- the wire ------------------------------------------------------------------------------


async def test_paths_methods_and_bodies_of_the_four_calls() -> None:
    seen: list[tuple[web.Request, bytes]] = []

    async def answer(request: web.Request) -> web.Response:
        if request.method == "PUT":
            return web.Response(status=200, body=b"not json")  # only the status counts
        if "/mesh-job/" in request.path:
            return web.json_response({"kind": "Job", "apiVersion": "v3", "metadata": {"uid": "j"}})
        status = 201 if request.method == "POST" else 200
        return web.json_response(
            {"metadata": {"uid": "t-1"}, "status": {"step": "x"}}, status=status
        )

    request = for_step(UNKNOWN_ID, UpgradeStep.PRE_CHECK)
    async with (
        _stub(answer, seen) as endpoint,
        AsmClient(StaticTokenAuth("tok-stub"), endpoint=endpoint) as client,
    ):
        created = await client.create_upgrade(PROJECT, REGION, request)
        shown = await client.upgrade_task(PROJECT, REGION, "t-1")
        await client.move_upgrade(
            PROJECT, REGION, "t-1", for_step(UNKNOWN_ID, UpgradeStep.CONTROL_PLANE)
        )
        job = await client.upgrade_job(PROJECT, REGION, "j-1")
    assert [(r.method, r.path) for r, _ in seen] == [
        ("POST", f"/v1/{PROJECT}/mesh-upgrade"),
        ("GET", f"/v1/{PROJECT}/mesh-upgrade/t-1"),
        ("PUT", f"/v1/{PROJECT}/mesh-upgrade/t-1"),
        ("GET", f"/v1/{PROJECT}/mesh-job/j-1"),
    ]
    assert json.loads(seen[0][1]) == request.to_wire()
    assert b" " not in seen[0][1]  # compact, like every body the client sends
    assert json.loads(seen[2][1])["spec"]["currentStep"] == {"name": "controlPlane"}
    assert seen[1][1] == seen[3][1] == b""
    for sent, _ in seen:
        assert sent.headers["X-Auth-Token"] == "tok-stub"
        assert sent.headers["Content-Type"] == "application/json"
    assert created.metadata.uid == shown.metadata.uid == "t-1"
    assert shown.step is None  # a step meshfleet does not know reads as none
    assert isinstance(job, UpgradeJob) and job.metadata.uid == "j"


@pytest.mark.parametrize(
    ("call", "field"),
    [
        ("create_project", "project_id"),
        ("create_mesh_id", "mesh_id"),
        ("show_task_id", "task_id"),
        ("move_task_id", "task_id"),
        ("move_mesh_id", "mesh_id"),
        ("job_id", "job_id"),
        ("show_region", "region"),
    ],
)
async def test_bad_ids_are_refused_with_nothing_sent(
    asm: AsmClient, sim: RunningSimulator, call: str, field: str
) -> None:
    good = for_step(UNKNOWN_ID, UpgradeStep.PRE_CHECK)
    bad_mesh = for_step("../../meshes", UpgradeStep.PRE_CHECK)
    with pytest.raises(AsmValidationError, match=field):
        if call == "create_project":
            await asm.create_upgrade("../v3/auth/tokens#", REGION, good)
        elif call == "create_mesh_id":
            await asm.create_upgrade(PROJECT, REGION, bad_mesh)
        elif call == "show_task_id":
            await asm.upgrade_task(PROJECT, REGION, "../meshes")
        elif call == "move_task_id":
            await asm.move_upgrade(PROJECT, REGION, "x?y=1", good)
        elif call == "move_mesh_id":
            await asm.move_upgrade(PROJECT, REGION, UNKNOWN_ID, bad_mesh)
        elif call == "job_id":
            await asm.upgrade_job(PROJECT, REGION, "a/b")
        else:
            await asm.upgrade_task(PROJECT, "evil.example.com/", UNKNOWN_ID)
    assert sum(sim.state.stats.requests.values()) == 0


# --- against the simulator -----------------------------------------------------------------


async def test_create_show_and_move_through_every_step_to_finish(
    asm: AsmClient, sim: RunningSimulator, clock: ManualClock
) -> None:
    mesh_uid = seed(sim)
    task = await asm.create_upgrade(PROJECT, REGION, for_step(mesh_uid, UpgradeStep.PRE_CHECK))
    assert task.metadata.uid and task.metadata.name == f"mesh-a-to-{NEW}"
    assert (task.step, task.status.phase) == (UpgradeStep.PRE_CHECK, StepPhase.RUNNING)
    assert task.status.job_id
    task_id = task.metadata.uid
    assert (await asm.mesh(PROJECT, REGION, mesh_uid)).phase == MeshPhase.UPGRADING

    clock.advance(STEP_S)
    shown = await asm.upgrade_task(PROJECT, REGION, task_id)
    assert (shown.step, shown.status.phase) == (UpgradeStep.PRE_CHECK, StepPhase.SUCCEEDED)
    for step in (UpgradeStep.CONTROL_PLANE, UpgradeStep.DATA_PLANE, UpgradeStep.FINISH):
        await asm.move_upgrade(PROJECT, REGION, task_id, for_step(mesh_uid, step))
        running = await asm.upgrade_task(PROJECT, REGION, task_id)
        assert (running.step, running.status.phase) == (step, StepPhase.RUNNING)
        clock.advance(STEP_S)
        done = await asm.upgrade_task(PROJECT, REGION, task_id)
        assert (done.step, done.status.phase, done.status.message) == (
            step,
            StepPhase.SUCCEEDED,
            "",
        )
    mesh = await asm.mesh(PROJECT, REGION, mesh_uid)
    assert mesh.phase == MeshPhase.RUNNING
    assert mesh.spec is not None and mesh.spec.version == NEW
    assert sim.state.stats.upgrade_tasks(mesh_uid) == 1


async def test_a_second_create_is_a_conflict(asm: AsmClient, sim: RunningSimulator) -> None:
    mesh_uid = seed(sim)
    first = await asm.create_upgrade(PROJECT, REGION, for_step(mesh_uid, UpgradeStep.PRE_CHECK))
    with pytest.raises(AsmConflictError) as info:
        await asm.create_upgrade(PROJECT, REGION, for_step(mesh_uid, UpgradeStep.PRE_CHECK))
    assert (info.value.status, info.value.error_code) == (409, "ASM.01010005")
    assert str(first.metadata.uid) in info.value.error_msg
    assert (sim.state.stats.upgrade_posts(mesh_uid), sim.state.stats.upgrade_tasks(mesh_uid)) == (
        2,
        1,
    )


async def test_a_target_off_the_path_is_a_bad_request_naming_the_path(
    asm: AsmClient, sim: RunningSimulator
) -> None:
    mesh_uid = seed(sim, "1.13.9-r2")
    with pytest.raises(AsmBadRequestError) as info:
        await asm.create_upgrade(PROJECT, REGION, for_step(mesh_uid, UpgradeStep.PRE_CHECK))
    assert info.value.error_code == "ASM.01010001"
    assert "1.13 → 1.15 → 1.18" in info.value.error_msg
    assert not info.value.retryable
    assert sim.upgrades() == []


async def test_a_step_out_of_order_is_a_conflict(
    asm: AsmClient, sim: RunningSimulator, clock: ManualClock
) -> None:
    mesh_uid = seed(sim)
    task = await asm.create_upgrade(PROJECT, REGION, for_step(mesh_uid, UpgradeStep.PRE_CHECK))
    assert task.metadata.uid
    clock.advance(STEP_S)
    with pytest.raises(AsmConflictError, match="at step preCheck"):
        await asm.move_upgrade(
            PROJECT, REGION, task.metadata.uid, for_step(mesh_uid, UpgradeStep.FINISH)
        )


async def test_unknown_task_job_or_mesh_is_not_found(asm: AsmClient, sim: RunningSimulator) -> None:
    with pytest.raises(AsmNotFoundError):
        await asm.upgrade_task(PROJECT, REGION, UNKNOWN_ID)
    with pytest.raises(AsmNotFoundError):
        await asm.upgrade_job(PROJECT, REGION, UNKNOWN_ID)
    with pytest.raises(AsmNotFoundError):
        await asm.create_upgrade(PROJECT, REGION, for_step(UNKNOWN_ID, UpgradeStep.PRE_CHECK))
    mesh_uid = seed(sim)
    task = await asm.create_upgrade(PROJECT, REGION, for_step(mesh_uid, UpgradeStep.PRE_CHECK))
    assert task.metadata.uid
    with pytest.raises(AsmNotFoundError) as info:
        await asm.upgrade_task(OTHER_PROJECT, REGION, task.metadata.uid)
    assert not info.value.retryable


async def test_the_job_of_a_step_is_shown(
    asm: AsmClient, sim: RunningSimulator, clock: ManualClock
) -> None:
    sim.state.update_faults(rules=["mesh-a=upgrade-precheck-failed"])
    mesh_uid = seed(sim)
    task = await asm.create_upgrade(PROJECT, REGION, for_step(mesh_uid, UpgradeStep.PRE_CHECK))
    assert task.status.job_id
    job = await asm.upgrade_job(PROJECT, REGION, task.status.job_id)
    assert (job.kind, job.api_version, job.metadata.uid) == ("Job", "v3", task.status.job_id)
    assert (job.spec.type, job.status.phase) == ("preCheck", "Running")
    assert [s["clusterID"] for s in job.spec.subjobs] == ["cluster-mesh-a"]
    clock.advance(STEP_S)
    failed = await asm.upgrade_job(PROJECT, REGION, task.status.job_id)
    assert failed.status.phase == StepPhase.FAILED
    assert failed.status.message and "pre-upgrade check failed" in failed.status.message


async def test_aksk_signed_upgrade_calls_are_accepted(
    sim: RunningSimulator, clock: ManualClock
) -> None:
    # The simulator checks each signature over the path and the exact body bytes.
    mesh_uid = seed(sim)
    async with AsmClient(AkSkAuth(AccessKey(AK, SK)), endpoint=sim.url) as client:
        task = await client.create_upgrade(
            PROJECT, REGION, for_step(mesh_uid, UpgradeStep.PRE_CHECK)
        )
        assert task.metadata.uid
        await client.move_upgrade(
            PROJECT, REGION, task.metadata.uid, for_step(mesh_uid, UpgradeStep.ROLLBACK)
        )
    assert sim.state.stats.by_operation["create_upgrade"] == {201: 1}
    assert sim.state.stats.by_operation["move_upgrade"] == {200: 1}


async def test_the_metrics_wrapper_counts_each_upgrade_call(
    asm: AsmClient, sim: RunningSimulator, clock: ManualClock
) -> None:
    registry = CollectorRegistry()
    api = metrics.InstrumentedMeshApi(asm, metrics.AsmCallMetrics(registry))
    mesh_uid = seed(sim)
    task = await api.create_upgrade(PROJECT, REGION, for_step(mesh_uid, UpgradeStep.PRE_CHECK))
    assert task.metadata.uid and task.status.job_id
    with pytest.raises(AsmConflictError):
        await api.create_upgrade(PROJECT, REGION, for_step(mesh_uid, UpgradeStep.PRE_CHECK))
    await api.upgrade_task(PROJECT, REGION, task.metadata.uid)
    clock.advance(STEP_S)
    await api.move_upgrade(
        PROJECT, REGION, task.metadata.uid, for_step(mesh_uid, UpgradeStep.CONTROL_PLANE)
    )
    await api.upgrade_job(PROJECT, REGION, task.status.job_id)
    with pytest.raises(AsmValidationError):
        await api.upgrade_job(PROJECT, REGION, "a/b")

    def count(operation: str, status: str) -> float:
        value = registry.get_sample_value(
            "meshfleet_asm_calls_total", {"operation": operation, "status": status}
        )
        return value or 0.0

    assert count("create_upgrade", "201") == 1
    assert count("create_upgrade", "409") == 1
    assert count("show_upgrade", "200") == 1
    assert count("move_upgrade", "200") == 1
    assert count("show_upgrade_job", "200") == 1
    assert count("show_upgrade_job", "invalid") == 1
