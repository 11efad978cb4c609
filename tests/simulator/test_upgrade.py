"""The simulator's canary upgrade task: the mesh's phases and version across the steps, rollback,
the fault rules, refusals, the counters and ``/_sim/upgrades``, on the wire."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from meshfleet.asm.models import MeshPhase
from meshfleet.asm.upgrade import UpgradeStep, UpgradeTaskRequest
from meshfleet.simulator import FaultConfig, NameRule, SimulatorConfig
from meshfleet.simulator.__main__ import build_parser, config_from_args
from meshfleet.simulator.config import DEFAULT_UPGRADE_STEP_SECONDS, FaultAction
from meshfleet.simulator.testing import ManualClock, RunningSimulator, serve
from tests.helpers.eventually import eventually, eventually_value

PROJECT = "0123456789abcdef0123456789abcdef"
OTHER_PROJECT = "fedcba9876543210fedcba9876543210"
TOKEN = "tok-simulator-upgrade-tests"
AUTH = {"X-Auth-Token": TOKEN}
STEP_S = 3.0
OLD = "1.15.7-r3"
NEW = "1.18.7-r5"
UNKNOWN_ID = "a1efdc3e-0000-4000-8000-94bef433347e"
PROXY = {"proxyConfig": {"excludeOutboundPorts": "8080"}}


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    headers: Mapping[str, str]


@pytest.fixture
async def sim(clock: ManualClock) -> AsyncIterator[RunningSimulator]:
    config = SimulatorConfig(
        create_seconds=1.0, update_seconds=1.0, upgrade_step_seconds=STEP_S, tokens=(TOKEN,)
    )
    async with serve(config, clock=clock) as running:
        yield running


async def call(
    http: aiohttp.ClientSession, method: str, url: str, body: Any = None, raw: bytes | None = None
) -> Answer:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    headers = AUTH | {"Content-Type": "application/json"}
    async with http.request(method, url, data=data, headers=headers) as response:
        text = await response.read()
        assert uuid.UUID(response.headers["X-Request-Id"])
        return Answer(response.status, json.loads(text) if text else None, response.headers)


def body(
    mesh_uid: str, step: UpgradeStep = UpgradeStep.PRE_CHECK, version: str = NEW
) -> dict[str, Any]:
    return UpgradeTaskRequest.for_step(mesh_uid, "mesh-a", version, step).to_wire()


def seed(
    sim: RunningSimulator, name: str = "mesh-a", version: str = OLD, project: str = PROJECT
) -> str:
    return sim.state.seed_mesh(project, name, [f"cluster-{name}"], version=version).uid


async def create(
    http: aiohttp.ClientSession, sim: RunningSimulator, mesh_uid: str, version: str = NEW
) -> Answer:
    return await call(http, "POST", sim.upgrade_url(PROJECT), body(mesh_uid, version=version))


async def move(
    http: aiohttp.ClientSession,
    sim: RunningSimulator,
    task_id: str,
    mesh_uid: str,
    step: UpgradeStep,
    version: str = NEW,
) -> Answer:
    return await call(http, "PUT", sim.upgrade_url(PROJECT, task_id), body(mesh_uid, step, version))


async def task_now(http: aiohttp.ClientSession, sim: RunningSimulator, task_id: str) -> Any:
    answer = await call(http, "GET", sim.upgrade_url(PROJECT, task_id))
    assert answer.status == 200
    return answer.body


async def mesh_now(http: aiohttp.ClientSession, sim: RunningSimulator, uid: str) -> Any:
    answer = await call(http, "GET", sim.mesh_url(PROJECT, uid))
    assert answer.status == 200
    return answer.body


async def phase_and_version(
    http: aiohttp.ClientSession, sim: RunningSimulator, uid: str
) -> tuple[str, str]:
    mesh = await mesh_now(http, sim, uid)
    return mesh["status"]["phase"], mesh["spec"]["version"]


async def step_of(http: aiohttp.ClientSession, sim: RunningSimulator, task_id: str) -> Any:
    status = (await task_now(http, sim, task_id))["status"]
    return status["step"], status["phase"]


async def run_to(
    http: aiohttp.ClientSession,
    sim: RunningSimulator,
    clock: ManualClock,
    task_id: str,
    mesh_uid: str,
    last: UpgradeStep,
) -> None:
    """Let preCheck end, then start and end each step up to ``last``."""
    clock.advance(STEP_S)
    for step in (UpgradeStep.CONTROL_PLANE, UpgradeStep.DATA_PLANE, UpgradeStep.FINISH):
        if step is UpgradeStep.FINISH and last is not UpgradeStep.FINISH:
            return
        assert (await move(http, sim, task_id, mesh_uid, step)).status == 200
        clock.advance(STEP_S)
        assert await step_of(http, sim, task_id) == (step, "Succeeded")
        if step is last:
            return


# --- a canary upgrade, step by step --------------------------------------------------------


async def test_a_canary_upgrade_moves_the_mesh_through_its_phases(
    http: aiohttp.ClientSession, sim: RunningSimulator, clock: ManualClock
) -> None:
    mesh_uid = seed(sim)
    created = await create(http, sim, mesh_uid)
    assert created.status == 201
    task = created.body
    assert (task["kind"], task["apiVersion"]) == ("MeshUpgrade", "v1")
    assert task["metadata"]["name"] == f"mesh-a-to-{NEW}"
    assert uuid.UUID(task["metadata"]["uid"])
    assert task["metadata"]["creationTimestamp"].endswith("Z")
    assert task["spec"] == body(mesh_uid)["spec"]
    assert set(task["status"]) == {"phase", "step", "jobId", "message"}
    assert (task["status"]["phase"], task["status"]["step"], task["status"]["message"]) == (
        "Running",
        "preCheck",
        "",
    )
    task_id = task["metadata"]["uid"]
    jobs = {task["status"]["jobId"]}
    assert await phase_and_version(http, sim, mesh_uid) == ("Upgrading", OLD)

    clock.advance(STEP_S - 0.5)
    assert await step_of(http, sim, task_id) == ("preCheck", "Running")
    clock.advance(0.5)
    assert await step_of(http, sim, task_id) == ("preCheck", "Succeeded")
    # Between steps the mesh reads Upgrading, and refuses a configuration change.
    assert await phase_and_version(http, sim, mesh_uid) == ("Upgrading", OLD)
    refused = await call(
        http, "PUT", sim.update_url(PROJECT, mesh_uid), {"action": "update", "meshConfig": PROXY}
    )
    assert (refused.status, refused.body["errorCode"]) == (409, "ASM.01010004")

    for step in (UpgradeStep.CONTROL_PLANE, UpgradeStep.DATA_PLANE):
        started = await move(http, sim, task_id, mesh_uid, step)
        assert started.status == 200
        assert (started.body["status"]["step"], started.body["status"]["phase"]) == (
            step,
            "Running",
        )
        jobs.add(started.body["status"]["jobId"])
        assert await phase_and_version(http, sim, mesh_uid) == ("Upgrading", OLD)
        clock.advance(STEP_S)
        assert await step_of(http, sim, task_id) == (step, "Succeeded")

    # Both control planes are installed and the data plane is on the target: Running at the
    # new version, waiting for finish, and open to a configuration change.
    assert await phase_and_version(http, sim, mesh_uid) == ("Running", NEW)
    accepted = await call(
        http, "PUT", sim.update_url(PROJECT, mesh_uid), {"action": "update", "meshConfig": PROXY}
    )
    assert accepted.status == 200
    # The task still holds the mesh: no second task.
    assert (await create(http, sim, mesh_uid)).status == 409

    finishing = await move(http, sim, task_id, mesh_uid, UpgradeStep.FINISH)
    assert finishing.status == 200
    jobs.add(finishing.body["status"]["jobId"])
    assert len(jobs) == 4
    assert await phase_and_version(http, sim, mesh_uid) == ("Upgrading", NEW)
    clock.advance(STEP_S)
    assert await step_of(http, sim, task_id) == ("finish", "Succeeded")
    mesh = await mesh_now(http, sim, mesh_uid)
    assert (mesh["status"]["phase"], mesh["spec"]["version"]) == ("Running", NEW)
    assert mesh["spec"]["config"] == PROXY
    assert [(t["id"], t["step"], t["phase"], t["open"]) for t in sim.upgrades()] == [
        (task_id, "finish", "Succeeded", False)
    ]
    # Nothing is left to roll back once finish has uninstalled the old version.
    late = await move(http, sim, task_id, mesh_uid, UpgradeStep.ROLLBACK)
    assert (late.status, late.body["errorCode"]) == (409, "ASM.01010005")
    assert await phase_and_version(http, sim, mesh_uid) == ("Running", NEW)


async def test_a_closed_task_lets_the_mesh_take_its_next_upgrade(
    http: aiohttp.ClientSession, sim: RunningSimulator, clock: ManualClock
) -> None:
    mesh_uid = seed(sim, version="1.13.9-r2")
    first = await create(http, sim, mesh_uid, "1.15.7-r3")
    assert first.status == 201
    task_id = first.body["metadata"]["uid"]
    clock.advance(STEP_S)
    for step in (UpgradeStep.CONTROL_PLANE, UpgradeStep.DATA_PLANE, UpgradeStep.FINISH):
        assert (await move(http, sim, task_id, mesh_uid, step, "1.15.7-r3")).status == 200
        clock.advance(STEP_S)
    assert await phase_and_version(http, sim, mesh_uid) == ("Running", "1.15.7-r3")

    second = await create(http, sim, mesh_uid, NEW)
    assert second.status == 201
    assert second.body["metadata"]["uid"] != task_id
    assert [t["from_version"] for t in sim.upgrades(mesh_uid)] == ["1.13.9-r2", "1.15.7-r3"]
    assert sim.state.stats.upgrade_tasks(mesh_uid) == 2


async def test_each_step_has_a_job(
    http: aiohttp.ClientSession, sim: RunningSimulator, clock: ManualClock
) -> None:
    mesh_uid = seed(sim)
    created = await create(http, sim, mesh_uid)
    task_id, pre_job = created.body["metadata"]["uid"], created.body["status"]["jobId"]
    job = await call(http, "GET", sim.job_url(PROJECT, pre_job))
    assert job.status == 200
    assert job.body == {
        "kind": "Job",
        "apiVersion": "v3",
        "metadata": {"uid": pre_job},
        "spec": {
            "type": "preCheck",
            "subjobs": [
                {
                    "type": "preCheck",
                    "clusterID": "cluster-mesh-a",
                    "status": {"phase": "Running", "message": ""},
                }
            ],
        },
        "status": {"phase": "Running", "message": ""},
    }
    clock.advance(STEP_S)
    cp = await move(http, sim, task_id, mesh_uid, UpgradeStep.CONTROL_PLANE)
    cp_job = cp.body["status"]["jobId"]
    pre = await call(http, "GET", sim.job_url(PROJECT, pre_job))
    assert (pre.body["spec"]["type"], pre.body["status"]["phase"]) == ("preCheck", "Succeeded")
    now = await call(http, "GET", sim.job_url(PROJECT, cp_job))
    assert (now.body["spec"]["type"], now.body["status"]["phase"]) == ("controlPlane", "Running")
    # A job is its project's: another project, or an unknown id, is a 404.
    for url in (sim.job_url(OTHER_PROJECT, cp_job), sim.job_url(PROJECT, UNKNOWN_ID)):
        async with http.get(url, headers=AUTH) as answer:
            assert answer.status == 404
            assert (await answer.json())["errorCode"] == "ASM.01010002"


# --- rollback ------------------------------------------------------------------------------


async def test_rollback_returns_the_mesh_to_its_old_version(
    http: aiohttp.ClientSession, sim: RunningSimulator, clock: ManualClock
) -> None:
    mesh_uid = seed(sim)
    task_id = (await create(http, sim, mesh_uid)).body["metadata"]["uid"]
    await run_to(http, sim, clock, task_id, mesh_uid, UpgradeStep.DATA_PLANE)
    assert await phase_and_version(http, sim, mesh_uid) == ("Running", NEW)

    rolling = await move(http, sim, task_id, mesh_uid, UpgradeStep.ROLLBACK)
    assert rolling.status == 200
    assert (rolling.body["status"]["step"], rolling.body["status"]["phase"]) == (
        "rollback",
        "Running",
    )
    assert (await mesh_now(http, sim, mesh_uid))["status"]["phase"] == "RollingBack"
    clock.advance(STEP_S)
    assert await step_of(http, sim, task_id) == ("rollback", "Succeeded")
    assert await phase_and_version(http, sim, mesh_uid) == ("Running", OLD)
    assert sim.upgrades(mesh_uid)[0]["open"] is False
    # The task is closed: no step starts on it, and the mesh may be upgraded again.
    again = await move(http, sim, task_id, mesh_uid, UpgradeStep.CONTROL_PLANE)
    assert (again.status, again.body["errorCode"]) == (409, "ASM.01010005")
    assert (await create(http, sim, mesh_uid)).status == 201
    assert sim.state.stats.upgrade_puts(mesh_uid, "rollback") == 1


async def test_rollback_may_start_while_a_step_runs(
    http: aiohttp.ClientSession, sim: RunningSimulator, clock: ManualClock
) -> None:
    mesh_uid = seed(sim)
    task_id = (await create(http, sim, mesh_uid)).body["metadata"]["uid"]
    clock.advance(STEP_S)
    assert (await move(http, sim, task_id, mesh_uid, UpgradeStep.CONTROL_PLANE)).status == 200
    assert (await move(http, sim, task_id, mesh_uid, UpgradeStep.ROLLBACK)).status == 200
    assert await phase_and_version(http, sim, mesh_uid) == ("RollingBack", OLD)
    clock.advance(STEP_S)
    assert await phase_and_version(http, sim, mesh_uid) == ("Running", OLD)


# --- fault rules ---------------------------------------------------------------------------


async def test_precheck_failed_changes_nothing_and_counts_tasks(
    http: aiohttp.ClientSession, sim: RunningSimulator, clock: ManualClock
) -> None:
    sim.state.update_faults(rules=["mesh-a=upgrade-precheck-failed:1"])
    mesh_uid = seed(sim)
    task_id = (await create(http, sim, mesh_uid)).body["metadata"]["uid"]
    clock.advance(STEP_S)
    status = (await task_now(http, sim, task_id))["status"]
    assert (status["step"], status["phase"]) == ("preCheck", "Failed")
    assert status["message"].startswith("pre-upgrade check failed: cluster version 1.23")
    assert "1.18" in status["message"]
    assert await phase_and_version(http, sim, mesh_uid) == ("Running", OLD)
    job = await call(http, "GET", sim.job_url(PROJECT, status["jobId"]))
    assert job.body["status"] == {"phase": "Failed", "message": status["message"]}

    # No step follows a failed one; a rollback closes the task.
    refused = await move(http, sim, task_id, mesh_uid, UpgradeStep.CONTROL_PLANE)
    assert (refused.status, refused.body["errorCode"]) == (409, "ASM.01010005")
    assert "preCheck" in refused.body["errorMsg"]
    assert (await create(http, sim, mesh_uid)).status == 409
    assert (await move(http, sim, task_id, mesh_uid, UpgradeStep.ROLLBACK)).status == 200
    clock.advance(STEP_S)
    assert await phase_and_version(http, sim, mesh_uid) == ("Running", OLD)

    # TIMES counts the mesh's tasks: its second passes the check.
    second = (await create(http, sim, mesh_uid)).body["metadata"]["uid"]
    clock.advance(STEP_S)
    assert await step_of(http, sim, second) == ("preCheck", "Succeeded")
    assert sim.state.stats.faults["upgrade-precheck-failed"] == 1


async def test_dataplane_failed_leaves_the_mesh_upgrade_failed_until_rollback(
    http: aiohttp.ClientSession, sim: RunningSimulator, clock: ManualClock
) -> None:
    sim.state.update_faults(rules=["mesh-*=upgrade-dataplane-failed"])
    mesh_uid = seed(sim)
    task_id = (await create(http, sim, mesh_uid)).body["metadata"]["uid"]
    clock.advance(STEP_S)
    assert (await move(http, sim, task_id, mesh_uid, UpgradeStep.CONTROL_PLANE)).status == 200
    clock.advance(STEP_S)
    assert (await move(http, sim, task_id, mesh_uid, UpgradeStep.DATA_PLANE)).status == 200
    assert await phase_and_version(http, sim, mesh_uid) == ("Upgrading", OLD)
    clock.advance(STEP_S)
    status = (await task_now(http, sim, task_id))["status"]
    assert (status["step"], status["phase"]) == ("dataPlane", "Failed")
    assert "pods" in status["message"] and "ready" in status["message"]
    assert await phase_and_version(http, sim, mesh_uid) == ("UpgradeFailed", OLD)

    # A failed step is not started again by naming it; finish cannot follow it.
    for step in (UpgradeStep.DATA_PLANE, UpgradeStep.FINISH):
        refused = await move(http, sim, task_id, mesh_uid, step)
        assert (refused.status, refused.body["errorCode"]) == (409, "ASM.01010005")
    assert (await move(http, sim, task_id, mesh_uid, UpgradeStep.ROLLBACK)).status == 200
    assert (await mesh_now(http, sim, mesh_uid))["status"]["phase"] == "RollingBack"
    clock.advance(STEP_S)
    assert await phase_and_version(http, sim, mesh_uid) == ("Running", OLD)
    assert sim.state.stats.faults["upgrade-dataplane-failed"] == 1


async def test_rollback_failed_leaves_the_mesh_rollback_failed(
    http: aiohttp.ClientSession, sim: RunningSimulator, clock: ManualClock
) -> None:
    sim.state.update_faults(rules=["mesh-a=upgrade-rollback-failed"])
    mesh_uid = seed(sim)
    task_id = (await create(http, sim, mesh_uid)).body["metadata"]["uid"]
    await run_to(http, sim, clock, task_id, mesh_uid, UpgradeStep.DATA_PLANE)
    assert (await move(http, sim, task_id, mesh_uid, UpgradeStep.ROLLBACK)).status == 200
    clock.advance(STEP_S)
    status = (await task_now(http, sim, task_id))["status"]
    assert (status["step"], status["phase"]) == ("rollback", "Failed")
    assert status["message"].startswith("rollback failed")
    mesh = await mesh_now(http, sim, mesh_uid)
    assert mesh["status"]["phase"] == "RollbackFailed"
    assert (await create(http, sim, mesh_uid)).status == 409
    assert sim.upgrades(mesh_uid)[0]["open"] is True

    # A rollback may be asked for again; it fails again while the rule holds, and succeeds
    # once it is lifted.
    assert (await move(http, sim, task_id, mesh_uid, UpgradeStep.ROLLBACK)).status == 200
    assert (await mesh_now(http, sim, mesh_uid))["status"]["phase"] == "RollingBack"
    sim.state.update_faults(rules=[])
    clock.advance(STEP_S)
    assert (await mesh_now(http, sim, mesh_uid))["status"]["phase"] == "RollbackFailed"
    assert (await move(http, sim, task_id, mesh_uid, UpgradeStep.ROLLBACK)).status == 200
    clock.advance(STEP_S)
    assert await phase_and_version(http, sim, mesh_uid) == ("Running", OLD)
    assert sim.state.stats.upgrade_puts(mesh_uid, "rollback") == 3
    assert sim.state.stats.faults["upgrade-rollback-failed"] == 2


async def test_upgrade_lost_creates_the_task_but_answers_500(
    http: aiohttp.ClientSession, sim: RunningSimulator, clock: ManualClock
) -> None:
    sim.state.update_faults(rules=["mesh-a=upgrade-lost:1"])
    mesh_uid = seed(sim)
    lost = await create(http, sim, mesh_uid)
    assert (lost.status, lost.body["errorCode"]) == (500, "ASM.01040001")
    [task] = sim.upgrades(mesh_uid)
    assert (task["step"], task["phase"], task["open"]) == ("preCheck", "Running", True)
    assert (await task_now(http, sim, task["id"]))["metadata"]["uid"] == task["id"]
    assert (await mesh_now(http, sim, mesh_uid))["status"]["phase"] == "Upgrading"
    # A retried POST meets the task its lost answer created.
    retried = await create(http, sim, mesh_uid)
    assert (retried.status, retried.body["errorCode"]) == (409, "ASM.01010005")
    assert task["id"] in retried.body["errorMsg"]
    assert sim.state.stats.upgrade_posts(mesh_uid) == 2
    assert sim.state.stats.upgrade_tasks(mesh_uid) == 1
    assert sim.state.stats.faults["upgrade-lost"] == 1


async def test_upgrade_slow_creates_the_task_before_it_answers(
    http: aiohttp.ClientSession, clock: ManualClock
) -> None:
    faults = FaultConfig(rules=["mesh-a=upgrade-slow"], slow_upgrade_seconds=0.5)
    config = SimulatorConfig(upgrade_step_seconds=STEP_S, tokens=(TOKEN,), faults=faults)
    async with serve(config, clock=clock) as sim:
        mesh_uid = seed(sim)
        posting = asyncio.create_task(create(http, sim, mesh_uid))
        [task] = await eventually_value(
            lambda: sim.upgrades(mesh_uid), bool, 5, "the slow POST's task to exist"
        )
        assert not posting.done()  # the task exists while its creator still waits
        assert (task["step"], task["phase"]) == ("preCheck", "Running")
        answer = await posting
        assert answer.status == 201
        assert answer.body["metadata"]["uid"] == task["id"]
        assert sim.state.stats.faults["upgrade-slow"] == 1


async def test_step_times_run_on_the_real_clock(http: aiohttp.ClientSession) -> None:
    config = SimulatorConfig(upgrade_step_seconds=0.05, tokens=(TOKEN,))
    async with serve(config) as sim:
        mesh_uid = seed(sim)
        task_id = (await create(http, sim, mesh_uid)).body["metadata"]["uid"]
        for step in (UpgradeStep.CONTROL_PLANE, UpgradeStep.DATA_PLANE, UpgradeStep.FINISH):
            await eventually(
                lambda: sim.upgrades(mesh_uid)[0]["phase"] == "Succeeded", 5, "the step to end"
            )
            assert (await move(http, sim, task_id, mesh_uid, step)).status == 200
        await eventually(
            lambda: not sim.upgrades(mesh_uid)[0]["open"], 5, "the task to close after finish"
        )
        assert await phase_and_version(http, sim, mesh_uid) == ("Running", NEW)


# --- retries and order ---------------------------------------------------------------------


async def test_a_put_naming_the_step_the_task_is_at_changes_nothing(
    http: aiohttp.ClientSession, sim: RunningSimulator, clock: ManualClock
) -> None:
    mesh_uid = seed(sim)
    created = (await create(http, sim, mesh_uid)).body
    task_id = created["metadata"]["uid"]
    repeat = await move(http, sim, task_id, mesh_uid, UpgradeStep.PRE_CHECK)
    assert repeat.status == 200
    assert repeat.body["status"]["jobId"] == created["status"]["jobId"]

    clock.advance(STEP_S)
    started = (await move(http, sim, task_id, mesh_uid, UpgradeStep.CONTROL_PLANE)).body
    clock.advance(STEP_S - 1)
    again = await move(http, sim, task_id, mesh_uid, UpgradeStep.CONTROL_PLANE)
    assert again.status == 200
    assert again.body["status"] == started["status"]  # same job, still running
    clock.advance(1)
    # The step ends when the first PUT said: the repeat did not start it over.
    assert await step_of(http, sim, task_id) == ("controlPlane", "Succeeded")
    done = await move(http, sim, task_id, mesh_uid, UpgradeStep.CONTROL_PLANE)
    assert done.status == 200
    assert (done.body["status"]["phase"], done.body["status"]["jobId"]) == (
        "Succeeded",
        started["status"]["jobId"],
    )
    assert sim.state.stats.upgrade_puts(mesh_uid, "controlPlane") == 3
    assert sim.state.stats.upgrade_puts(mesh_uid, "preCheck") == 1
    assert len(sim.state.get_upgrade(PROJECT, task_id).runs) == 2  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("advance", "step"),
    [
        (0.0, UpgradeStep.CONTROL_PLANE),  # preCheck still running
        (STEP_S, UpgradeStep.DATA_PLANE),  # skips controlPlane
        (STEP_S, UpgradeStep.FINISH),
    ],
)
async def test_a_step_out_of_order_is_409_naming_where_the_task_is(
    http: aiohttp.ClientSession,
    sim: RunningSimulator,
    clock: ManualClock,
    advance: float,
    step: UpgradeStep,
) -> None:
    mesh_uid = seed(sim)
    task_id = (await create(http, sim, mesh_uid)).body["metadata"]["uid"]
    clock.advance(advance)
    before = await task_now(http, sim, task_id)
    refused = await move(http, sim, task_id, mesh_uid, step)
    assert refused.status == 409
    assert set(refused.body) == {"errorCode", "errorMsg"}
    assert refused.body["errorCode"] == "ASM.01010005"
    assert "at step preCheck" in refused.body["errorMsg"]
    assert await task_now(http, sim, task_id) == before


# --- refusals ------------------------------------------------------------------------------


def _without(data: dict[str, Any], *path: str) -> dict[str, Any]:
    data = json.loads(json.dumps(data))
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    del parent[path[-1]]
    return data


def _with(data: dict[str, Any], value: Any, *path: str) -> dict[str, Any]:
    data = json.loads(json.dumps(data))
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    return data


GOOD = body("uid-placeholder")


@pytest.mark.parametrize(
    ("sent", "field"),
    [
        (_with(GOOD, "Upgrade", "kind"), "kind"),
        (_without(GOOD, "kind"), "kind"),
        (_without(GOOD, "apiVersion"), "apiVersion"),
        (_with(GOOD, "v2", "apiVersion"), "apiVersion"),
        (_without(GOOD, "metadata", "name"), "metadata.name"),
        (_with(GOOD, "", "metadata", "name"), "metadata.name"),
        (_without(GOOD, "spec", "meshId"), "spec.meshId"),
        (_with(GOOD, "../x", "spec", "meshId"), "spec.meshId"),
        (_without(GOOD, "spec", "upgradeStrategy"), "spec.upgradeStrategy"),
        (_with(GOOD, "rolling", "spec", "upgradeStrategy"), "spec.upgradeStrategy"),
        (_without(GOOD, "spec", "targetType"), "spec.targetType"),
        (_with(GOOD, "Dedicated", "spec", "targetType"), "spec.targetType"),
        (_without(GOOD, "spec", "targetVersion"), "spec.targetVersion"),
        (_without(GOOD, "spec", "currentStep"), "spec.currentStep"),
        (_with(GOOD, {"name": "warp"}, "spec", "currentStep"), "spec.currentStep.name"),
        (_with(GOOD, {"name": "controlPlane"}, "spec", "currentStep"), "spec.currentStep.name"),
        (_with(GOOD, 1, "spec", "extra"), "spec.extra"),
    ],
)
async def test_a_bad_create_body_is_400_naming_the_field(
    http: aiohttp.ClientSession, sim: RunningSimulator, sent: dict[str, Any], field: str
) -> None:
    mesh_uid = seed(sim)
    if "meshId" in sent["spec"] and sent["spec"]["meshId"] == "uid-placeholder":
        sent["spec"]["meshId"] = mesh_uid
    answer = await call(http, "POST", sim.upgrade_url(PROJECT), sent)
    assert (answer.status, answer.body["errorCode"]) == (400, "ASM.01010001")
    assert field in answer.body["errorMsg"]
    assert sim.upgrades() == []
    assert sim.state.stats.upgrade_posts(mesh_uid) == 0


async def test_a_body_that_is_not_json_is_400(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    for raw in (b"{not json", b"[]"):
        answer = await call(http, "POST", sim.upgrade_url(PROJECT), raw=raw)
        assert (answer.status, answer.body["errorCode"]) == (400, "ASM.01010001")


async def test_a_put_for_another_mesh_or_version_is_400(
    http: aiohttp.ClientSession, sim: RunningSimulator, clock: ManualClock
) -> None:
    mesh_uid = seed(sim)
    task_id = (await create(http, sim, mesh_uid)).body["metadata"]["uid"]
    clock.advance(STEP_S)
    other = await move(http, sim, task_id, UNKNOWN_ID, UpgradeStep.CONTROL_PLANE)
    assert (other.status, other.body["errorCode"]) == (400, "ASM.01010001")
    assert "spec.meshId" in other.body["errorMsg"]
    version = await move(http, sim, task_id, mesh_uid, UpgradeStep.CONTROL_PLANE, "1.18.8-r1")
    assert version.status == 400
    assert "spec.targetVersion" in version.body["errorMsg"]
    assert await step_of(http, sim, task_id) == ("preCheck", "Succeeded")


async def test_unknown_mesh_task_or_project_is_404(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    theirs = seed(sim, "mesh-theirs", project=OTHER_PROJECT)
    for mesh_uid in (UNKNOWN_ID, theirs):
        answer = await create(http, sim, mesh_uid)
        assert (answer.status, answer.body["errorCode"]) == (404, "ASM.01010002")
    mine = seed(sim)
    task_id = (await create(http, sim, mine)).body["metadata"]["uid"]
    for url in (sim.upgrade_url(OTHER_PROJECT, task_id), sim.upgrade_url(PROJECT, UNKNOWN_ID)):
        for method, sent in (("GET", None), ("PUT", body(mine, UpgradeStep.ROLLBACK))):
            answer = await call(http, method, url, sent)
            assert (answer.status, answer.body["errorCode"]) == (404, "ASM.01010002")
    assert sim.state.stats.upgrade_puts(mine, "rollback") == 0


async def test_a_mesh_that_is_not_running_is_409(
    http: aiohttp.ClientSession, sim: RunningSimulator, clock: ManualClock
) -> None:
    for phase in (MeshPhase.CREATING, MeshPhase.UPGRADE_FAILED, MeshPhase.DELETING):
        uid = sim.state.seed_mesh(
            PROJECT, f"mesh-{phase.lower()}", [f"c-{phase}"], phase, version=OLD
        ).uid
        answer = await create(http, sim, uid)
        assert (answer.status, answer.body["errorCode"]) == (409, "ASM.01010004")
        assert str(phase) in answer.body["errorMsg"]
    assert sim.upgrades() == []


@pytest.mark.parametrize(
    ("current", "target", "says"),
    [
        ("1.18.7-r5", "1.15.7-r3", "no upgrade path"),  # a downgrade
        ("1.18.1-r1", "1.18.7-r5", "already on the line"),
        ("1.13.9-r2", "1.18.7-r5", "1.13 → 1.15 → 1.18"),  # two lines in one go
        ("1.8.6-r1", "1.18.7-r5", "1.8 → 1.15 → 1.18"),
        ("1.15.7-r3", "1.20.1-r1", "no upgrade path"),  # a line ASM does not offer
        ("1.15.7-r3", "1.18", "no upgrade path"),
    ],
)
async def test_a_target_off_the_upgrade_path_is_400_naming_the_path(
    http: aiohttp.ClientSession, sim: RunningSimulator, current: str, target: str, says: str
) -> None:
    mesh_uid = seed(sim, version=current)
    answer = await create(http, sim, mesh_uid, target)
    assert (answer.status, answer.body["errorCode"]) == (400, "ASM.01010001")
    assert says in answer.body["errorMsg"]
    assert "1.13 → 1.15, 1.15 → 1.18" in answer.body["errorMsg"]
    assert sim.upgrades() == []
    assert await phase_and_version(http, sim, mesh_uid) == ("Running", current)


async def test_upgrade_calls_need_authentication(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    mesh_uid = seed(sim)
    async with http.post(
        sim.upgrade_url(PROJECT), json=body(mesh_uid), headers={"X-Auth-Token": "no"}
    ) as answer:
        assert answer.status == 401
    assert sim.upgrades() == []
    assert sim.state.stats.by_operation["create_upgrade"] == {401: 1}


# --- counters, listing and reset -----------------------------------------------------------


async def test_stats_upgrades_listing_and_reset(
    http: aiohttp.ClientSession, sim: RunningSimulator, clock: ManualClock
) -> None:
    a, b = seed(sim, "mesh-a"), seed(sim, "mesh-b")
    task_a = (await create(http, sim, a)).body["metadata"]["uid"]
    assert (await create(http, sim, a)).status == 409
    task_b = (await create(http, sim, b)).body["metadata"]["uid"]
    clock.advance(STEP_S)
    assert (await move(http, sim, task_a, a, UpgradeStep.CONTROL_PLANE)).status == 200
    assert (await move(http, sim, task_b, b, UpgradeStep.ROLLBACK)).status == 200
    assert (await call(http, "GET", sim.upgrade_url(PROJECT, task_a))).status == 200

    stats = (await call(http, "GET", f"{sim.url}/_sim/stats")).body
    assert stats["upgrade_posts"] == 3
    assert stats["upgrade_posts_by_uid"] == dict(sorted({a: 2, b: 1}.items()))
    assert stats["upgrade_tasks_by_uid"] == dict(sorted({a: 1, b: 1}.items()))
    assert stats["upgrade_puts"] == 2
    assert stats["upgrade_puts_by_uid"] == {a: {"controlPlane": 1}, b: {"rollback": 1}}
    assert stats["upgrade_shows"] == 1
    assert stats["upgrade_job_shows"] == 0
    assert stats["by_operation"]["create_upgrade"] == {"201": 2, "409": 1}
    assert stats["meshes"] == {"RollingBack": 1, "Upgrading": 1}

    listed = (await call(http, "GET", f"{sim.url}/_sim/upgrades")).body
    assert listed["items"] == sim.upgrades()
    first = listed["items"][0]
    assert {k: v for k, v in first.items() if k != "job_id"} == {
        "project_id": PROJECT,
        "mesh_uid": a,
        "mesh_name": "mesh-a",
        "id": task_a,
        "from_version": OLD,
        "target_version": NEW,
        "step": "controlPlane",
        "phase": "Running",
        "message": "",
        "open": True,
    }
    assert [t["id"] for t in listed["items"]] == [task_a, task_b]

    assert (await call(http, "POST", f"{sim.url}/_sim/reset")).status == 200
    assert (await call(http, "GET", f"{sim.url}/_sim/upgrades")).body == {"items": []}
    assert (await call(http, "GET", sim.upgrade_url(PROJECT, task_a))).status == 404
    assert sim.state.stats.upgrade_tasks(a) == 0


async def test_update_timestamp_moves_with_the_upgrade(
    http: aiohttp.ClientSession, sim: RunningSimulator, clock: ManualClock
) -> None:
    mesh_uid = seed(sim)
    before = (await mesh_now(http, sim, mesh_uid))["status"]["updateTimestamp"]
    clock.advance(5)
    await create(http, sim, mesh_uid)
    upgrading = (await mesh_now(http, sim, mesh_uid))["status"]["updateTimestamp"]
    assert upgrading > before
    clock.advance(STEP_S + 2)
    assert (await mesh_now(http, sim, mesh_uid))["status"]["updateTimestamp"] > upgrading


# --- configuration -------------------------------------------------------------------------


def test_upgrade_step_seconds_default_flag_and_bounds() -> None:
    assert SimulatorConfig().upgrade_step_seconds == DEFAULT_UPGRADE_STEP_SECONDS == 1.0
    parser = build_parser()
    args = parser.parse_args(
        ["--upgrade-step-seconds", "0.25", "--rule", "m-*=upgrade-lost:2", "--token", "T"]
    )
    cfg = config_from_args(args, {}, parser)
    assert cfg.upgrade_step_seconds == 0.25
    assert cfg.faults == FaultConfig(rules=[NameRule.parse("m-*=upgrade-lost:2")])
    assert parser.parse_args([]).upgrade_step_seconds == DEFAULT_UPGRADE_STEP_SECONDS
    with pytest.raises(ValueError, match="upgrade_step_seconds"):
        SimulatorConfig(upgrade_step_seconds=-1)
    with pytest.raises(SystemExit):
        parser.parse_args(["--upgrade-step-seconds", "-1"])
    assert FaultConfig().slow_upgrade_seconds == 10.0


def test_upgrade_rule_actions_parse_and_are_listed() -> None:
    for action in (
        FaultAction.UPGRADE_PRECHECK_FAILED,
        FaultAction.UPGRADE_DATAPLANE_FAILED,
        FaultAction.UPGRADE_ROLLBACK_FAILED,
        FaultAction.UPGRADE_SLOW,
        FaultAction.UPGRADE_LOST,
    ):
        assert NameRule.parse(f"mesh-*={action.value}:1").action is action
    with pytest.raises(ValueError) as info:
        NameRule.parse("x=upgrade-never")
    for action in FaultAction:
        assert action.value in str(info.value)
    # argparse wraps the help at hyphens: compare without the white space it adds.
    help_text = "".join(build_parser().format_help().split())
    for action in FaultAction:
        assert action.value in help_text
