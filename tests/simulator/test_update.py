"""The simulator's ``PUT /v2/projects/{project_id}/meshes/{mesh_id}``: the echo, refusals,
fault rules and the PUT counters, on the wire and on the manual clock."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from meshfleet.asm.models import MeshPhase
from meshfleet.simulator import FaultConfig, NameRule, SimulatorConfig
from meshfleet.simulator.__main__ import build_parser, config_from_args
from meshfleet.simulator.config import DEFAULT_UPDATE_SECONDS, FaultAction
from meshfleet.simulator.testing import ManualClock, RunningSimulator, serve

PROJECT = "0123456789abcdef0123456789abcdef"
OTHER_PROJECT = "fedcba9876543210fedcba9876543210"
TOKEN = "tok-simulator-update-tests"
AUTH = {"X-Auth-Token": TOKEN}
CREATE_S = 5.0
DELETE_S = 2.0
UPDATE_S = 4.0
OLD_CONFIG = {"proxyConfig": {"includeIPRanges": "10.247.0.0/16"}}
NEW_CONFIG = {"proxyConfig": {"excludeOutboundPorts": "8080,9090"}}
NEWER_CONFIG = {"telemetryConfig": {"tracing": {"randomSamplingPercentage": 5}}}


def mesh_body(name: str) -> dict[str, Any]:
    """A create body on a cluster of its own, with ``OLD_CONFIG``."""
    selector = {"fieldSelector": {"key": "UID", "operator": "In", "values": ["n1"]}}
    return {
        "apiVersion": "v1",
        "kind": "Mesh",
        "metadata": {"name": name},
        "spec": {
            "version": "1.18.7-r5",
            "extendParams": {
                "clusters": [{"clusterID": f"cluster-{name}", "installation": {"nodes": selector}}]
            },
            "config": OLD_CONFIG,
        },
    }


def update_body(config: dict[str, Any] = NEW_CONFIG) -> dict[str, Any]:
    return {"action": "update", "meshConfig": config}


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    headers: Mapping[str, str]


@pytest.fixture
async def sim(clock: ManualClock) -> AsyncIterator[RunningSimulator]:
    config = SimulatorConfig(
        create_seconds=CREATE_S,
        delete_seconds=DELETE_S,
        update_seconds=UPDATE_S,
        tokens=(TOKEN,),
        seed=1,
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


async def running_mesh(
    http: aiohttp.ClientSession, sim: RunningSimulator, clock: ManualClock, name: str = "mesh-a"
) -> str:
    created = await call(http, "POST", sim.mesh_url(PROJECT), mesh_body(name))
    assert created.status == 201
    clock.advance(CREATE_S)
    uid = str(created.body["metadata"]["uid"])
    assert (await shown(http, sim, uid))["status"]["phase"] == "Running"
    return uid


async def shown(http: aiohttp.ClientSession, sim: RunningSimulator, uid: str) -> dict[str, Any]:
    answer = await call(http, "GET", sim.mesh_url(PROJECT, uid))
    assert answer.status == 200
    body: dict[str, Any] = answer.body
    return body


async def put(
    http: aiohttp.ClientSession,
    sim: RunningSimulator,
    uid: str,
    config: dict[str, Any] = NEW_CONFIG,
) -> Answer:
    return await call(http, "PUT", sim.update_url(PROJECT, uid), update_body(config))


# --- the echo ------------------------------------------------------------------------------


async def test_echo_changes_only_after_update_seconds(
    http: aiohttp.ClientSession, sim: RunningSimulator, clock: ManualClock
) -> None:
    uid = await running_mesh(http, sim, clock)
    before = await shown(http, sim, uid)
    accepted = await put(http, sim, uid)
    assert accepted.status == 200
    # The answer is the mesh as it is now: still Running, still the old configuration.
    assert accepted.body["metadata"]["uid"] == uid
    assert accepted.body["status"]["phase"] == "Running"
    assert accepted.body["spec"]["config"] == OLD_CONFIG

    clock.advance(UPDATE_S - 0.5)
    during = await shown(http, sim, uid)
    assert during["spec"]["config"] == OLD_CONFIG
    assert during["status"]["phase"] == "Running"

    clock.advance(0.5)
    after = await shown(http, sim, uid)
    assert after["spec"]["config"] == NEW_CONFIG
    assert after["status"]["phase"] == before["status"]["phase"] == "Running"
    assert {k: v for k, v in after["spec"].items() if k != "config"} == {
        k: v for k, v in before["spec"].items() if k != "config"
    }
    listed = await call(http, "GET", sim.mesh_url(PROJECT))
    assert [m["spec"]["config"] for m in listed.body["items"]] == [NEW_CONFIG]


async def test_a_put_while_one_is_pending_replaces_it_and_starts_over(
    http: aiohttp.ClientSession, sim: RunningSimulator, clock: ManualClock
) -> None:
    uid = await running_mesh(http, sim, clock)
    assert (await put(http, sim, uid, NEW_CONFIG)).status == 200
    clock.advance(UPDATE_S - 1)
    assert (await put(http, sim, uid, NEWER_CONFIG)).status == 200
    clock.advance(1)
    assert (await shown(http, sim, uid))["spec"]["config"] == OLD_CONFIG
    clock.advance(UPDATE_S - 1)
    assert (await shown(http, sim, uid))["spec"]["config"] == NEWER_CONFIG


async def test_a_seeded_mesh_gains_a_configuration(
    http: aiohttp.ClientSession, sim: RunningSimulator, clock: ManualClock
) -> None:
    seeded = sim.state.seed_mesh(PROJECT, "legacy-mesh", ["cluster-l"])
    assert "config" not in (await shown(http, sim, seeded.uid))["spec"]
    assert (await put(http, sim, seeded.uid)).status == 200
    clock.advance(UPDATE_S)
    assert (await shown(http, sim, seeded.uid))["spec"]["config"] == NEW_CONFIG


# --- refusals ------------------------------------------------------------------------------


async def test_not_running_is_409_with_an_asm_error_body(
    http: aiohttp.ClientSession, sim: RunningSimulator, clock: ManualClock
) -> None:
    sim.state.update_faults(rules=["doomed=create-failed"], leave=["canary=Unknown@1"])
    creating = await call(http, "POST", sim.mesh_url(PROJECT), mesh_body("creating"))
    doomed = await call(http, "POST", sim.mesh_url(PROJECT), mesh_body("doomed"))
    canary = await call(http, "POST", sim.mesh_url(PROJECT), mesh_body("canary"))
    uids = {
        "Creating": creating.body["metadata"]["uid"],
        "CreateFailed": doomed.body["metadata"]["uid"],
        "Unknown": canary.body["metadata"]["uid"],
    }
    answer = await put(http, sim, uids["Creating"])
    assert answer.status == 409
    assert set(answer.body) == {"errorCode", "errorMsg"}
    assert answer.body["errorCode"] == "ASM.01010004"
    assert "Creating" in answer.body["errorMsg"]

    clock.advance(CREATE_S + 1)
    for phase in ("CreateFailed", "Unknown"):
        answer = await put(http, sim, uids[phase])
        assert (answer.status, answer.body["errorCode"]) == (409, "ASM.01010004")
        assert phase in answer.body["errorMsg"]
    for phase in (MeshPhase.UPGRADING, MeshPhase.ROLLING_BACK, MeshPhase.DELETING):
        seeded = sim.state.seed_mesh(PROJECT, f"seeded-{phase.lower()}", [f"c-{phase}"], phase)
        answer = await put(http, sim, seeded.uid)
        assert (answer.status, answer.body["errorCode"]) == (409, "ASM.01010004")
        assert str(phase) in answer.body["errorMsg"]

    # The new configuration never shows, not even once the mesh has settled.
    clock.advance(UPDATE_S)
    for uid in uids.values():
        assert (await shown(http, sim, uid))["spec"]["config"] == OLD_CONFIG
    assert sim.state.stats.by_operation["update"] == {409: 6}


async def test_unknown_or_foreign_mesh_is_404_and_not_counted(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    theirs = sim.state.seed_mesh(OTHER_PROJECT, "mesh-theirs", ["cluster-t"])
    for uid in (theirs.uid, "a1efdc3e-0000-4000-8000-94bef433347e"):
        answer = await put(http, sim, uid)
        assert (answer.status, answer.body["errorCode"]) == (404, "ASM.01010002")
    assert sim.state.stats.updates_by_uid == {}


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"{not json", "not valid JSON"),
        (json.dumps({"meshConfig": NEW_CONFIG}).encode(), "action"),
        (json.dumps({"action": "upgrade", "meshConfig": NEW_CONFIG}).encode(), "action"),
        (json.dumps({"action": "update"}).encode(), "meshConfig"),
        (json.dumps(update_body() | {"version": "1.18.7-r5"}).encode(), "version"),
        (
            json.dumps(update_body({"proxyConfig": {"includeIPRanges": 8}})).encode(),
            "meshConfig.proxyConfig.includeIPRanges",
        ),
    ],
)
async def test_bad_body_is_400_and_not_counted(
    http: aiohttp.ClientSession,
    sim: RunningSimulator,
    clock: ManualClock,
    raw: bytes,
    field: str,
) -> None:
    uid = await running_mesh(http, sim, clock)
    answer = await call(http, "PUT", sim.update_url(PROJECT, uid), raw=raw)
    assert (answer.status, answer.body["errorCode"]) == (400, "ASM.01010001")
    assert field in answer.body["errorMsg"]
    assert sim.state.stats.updates(uid) == 0


async def test_unauthenticated_put_is_401(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    seeded = sim.state.seed_mesh(PROJECT, "mesh-a", ["cluster-a"])
    async with http.put(
        sim.update_url(PROJECT, seeded.uid), json=update_body(), headers={"X-Auth-Token": "no"}
    ) as answer:
        assert answer.status == 401
        assert (await answer.json())["errorCode"] == "ASM.01000001"


async def test_the_v1_path_takes_no_put(
    http: aiohttp.ClientSession, sim: RunningSimulator, clock: ManualClock
) -> None:
    uid = await running_mesh(http, sim, clock)
    answer = await call(http, "PUT", sim.mesh_url(PROJECT, uid), update_body())
    assert (answer.status, answer.body["errorCode"]) == (405, "APIGW.0101")
    assert sim.state.stats.updates(uid) == 0


# --- faults --------------------------------------------------------------------------------


async def test_update_failed_is_accepted_but_never_takes(
    http: aiohttp.ClientSession, sim: RunningSimulator, clock: ManualClock
) -> None:
    sim.state.update_faults(rules=["stuck-*=update-failed:1"])
    uid = await running_mesh(http, sim, clock, "stuck-a")
    other = await running_mesh(http, sim, clock, "fine-a")
    assert (await put(http, sim, uid)).status == 200
    assert (await put(http, sim, other)).status == 200
    clock.advance(UPDATE_S * 10)
    stuck = await shown(http, sim, uid)
    assert (stuck["status"]["phase"], stuck["spec"]["config"]) == ("Running", OLD_CONFIG)
    assert (await shown(http, sim, other))["spec"]["config"] == NEW_CONFIG
    assert sim.state.stats.faults["update-failed"] == 1

    # TIMES counts the PUTs of that mesh: the second one takes.
    assert (await put(http, sim, uid)).status == 200
    clock.advance(UPDATE_S)
    assert (await shown(http, sim, uid))["spec"]["config"] == NEW_CONFIG
    assert sim.state.stats.faults["update-failed"] == 1


async def test_a_put_moves_update_timestamp_at_once_before_the_echo(
    http: aiohttp.ClientSession, sim: RunningSimulator, clock: ManualClock
) -> None:
    uid = await running_mesh(http, sim, clock)
    before = await shown(http, sim, uid)
    clock.advance(5)
    assert (await put(http, sim, uid)).status == 200
    during = await shown(http, sim, uid)
    # What a retried update reads to know an earlier PUT landed: the timestamp moved, the
    # echo has not yet.
    assert during["spec"]["config"] == OLD_CONFIG
    assert during["status"]["phase"] == "Running"
    assert during["status"]["updateTimestamp"] > before["status"]["updateTimestamp"]


async def test_update_lost_takes_but_answers_500(
    http: aiohttp.ClientSession, sim: RunningSimulator, clock: ManualClock
) -> None:
    sim.state.update_faults(rules=["lost-*=update-lost:1"])
    uid = await running_mesh(http, sim, clock, "lost-a")
    answer = await put(http, sim, uid)
    assert (answer.status, answer.body["errorCode"]) == (500, "ASM.01040001")
    clock.advance(UPDATE_S)
    assert (await shown(http, sim, uid))["spec"]["config"] == NEW_CONFIG
    assert sim.state.stats.faults["update-lost"] == 1


async def test_update_slow_is_echoed_after_its_own_time(
    http: aiohttp.ClientSession, sim: RunningSimulator, clock: ManualClock
) -> None:
    sim.state.update_faults(rules=["slow-*=update-slow"], slow_update_seconds=UPDATE_S * 5)
    slow = await running_mesh(http, sim, clock, "slow-a")
    other = await running_mesh(http, sim, clock, "fine-a")
    assert (await put(http, sim, slow)).status == 200
    assert (await put(http, sim, other)).status == 200
    clock.advance(UPDATE_S)
    assert (await shown(http, sim, other))["spec"]["config"] == NEW_CONFIG
    assert (await shown(http, sim, slow))["spec"]["config"] == OLD_CONFIG
    clock.advance(UPDATE_S * 4)
    assert (await shown(http, sim, slow))["spec"]["config"] == NEW_CONFIG


async def test_update_500_changes_nothing(
    http: aiohttp.ClientSession, sim: RunningSimulator, clock: ManualClock
) -> None:
    uid = await running_mesh(http, sim, clock, "flaky-a")
    patched = await call(
        http, "PATCH", f"{sim.url}/_sim/faults", {"rules": ["flaky-*=update-500:2"]}
    )
    assert patched.status == 200
    for _ in range(2):
        answer = await put(http, sim, uid)
        assert (answer.status, answer.body["errorCode"]) == (500, "ASM.01040001")
    clock.advance(UPDATE_S)
    assert (await shown(http, sim, uid))["spec"]["config"] == OLD_CONFIG
    assert (await put(http, sim, uid)).status == 200
    clock.advance(UPDATE_S)
    assert (await shown(http, sim, uid))["spec"]["config"] == NEW_CONFIG
    assert sim.state.stats.faults["update-500"] == 2
    assert sim.state.stats.updates(uid) == 3


async def test_throttling_applies_to_puts(
    http: aiohttp.ClientSession, sim: RunningSimulator, clock: ManualClock
) -> None:
    uid = await running_mesh(http, sim, clock)
    sim.state.update_faults(fail_429=1.0, retry_after=3)
    answer = await put(http, sim, uid)
    assert (answer.status, answer.body["errorCode"]) == (429, "ASM.01429001")
    assert answer.headers["Retry-After"] == "3"
    clock.advance(UPDATE_S)
    assert (await shown(http, sim, uid))["spec"]["config"] == OLD_CONFIG


def test_rule_actions_parse() -> None:
    assert NameRule.parse("stuck-*=update-failed").action is FaultAction.UPDATE_FAILED
    assert NameRule.parse("flaky-*=update-500:2").times == 2
    assert str(NameRule.parse("flaky-*=update-500:2")) == "flaky-*=update-500:2"
    assert NameRule.parse("slow-*=update-slow").action is FaultAction.UPDATE_SLOW
    assert NameRule.parse("lost-*=update-lost:1").action is FaultAction.UPDATE_LOST
    with pytest.raises(ValueError, match="update-lost"):
        NameRule.parse("x=update-never")  # the listed actions include the update ones


# --- counters and configuration ------------------------------------------------------------


async def test_one_put_each_is_counted_per_mesh(
    http: aiohttp.ClientSession, sim: RunningSimulator, clock: ManualClock
) -> None:
    uids = [await running_mesh(http, sim, clock, f"mesh-{i}") for i in range(3)]
    for uid in uids:
        assert (await put(http, sim, uid)).status == 200
    assert all(sim.state.stats.updates(uid) == 1 for uid in uids)
    stats = (await call(http, "GET", f"{sim.url}/_sim/stats")).body
    assert stats["puts"] == 3
    assert stats["puts_by_uid"] == dict.fromkeys(sorted(uids), 1)
    assert stats["by_operation"]["update"] == {"200": 3}
    assert stats["by_status"]["200"] >= 3  # the PUTs count among the mesh API's answers
    reset = await call(http, "POST", f"{sim.url}/_sim/reset")
    assert reset.status == 200
    assert sim.state.stats.updates(uids[0]) == 0


def test_update_seconds_default_flag_and_bounds() -> None:
    assert SimulatorConfig().update_seconds == DEFAULT_UPDATE_SECONDS
    parser = build_parser()
    args = parser.parse_args(
        ["--update-seconds", "0.75", "--rule", "stuck-*=update-failed", "--token", "T"]
    )
    cfg = config_from_args(args, {}, parser)
    assert cfg.update_seconds == 0.75
    assert cfg.faults == FaultConfig(rules=[NameRule.parse("stuck-*=update-failed")])
    assert parser.parse_args([]).update_seconds == DEFAULT_UPDATE_SECONDS
    with pytest.raises(ValueError, match="update_seconds"):
        SimulatorConfig(update_seconds=-1)
