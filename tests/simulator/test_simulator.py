"""The ASM simulator over loopback HTTP: shapes, phases, conflicts, faults, stats, admin, CLI."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict

from meshfleet.asm.models import Mesh, MeshList, MeshPhase
from meshfleet.simulator import FaultConfig, LeaveRule, NameRule, SimulatorConfig
from meshfleet.simulator.__main__ import build_parser, config_from_args, main
from meshfleet.simulator.testing import ManualClock, RunningSimulator, serve
from tests.helpers.paths import REPO

PROJECT = "0123456789abcdef0123456789abcdef"
OTHER_PROJECT = "fedcba9876543210fedcba9876543210"
TOKEN = "tok-simulator-tests"
AUTH = {"X-Auth-Token": TOKEN}
CREATE_S = 5.0
DELETE_S = 2.0
TIMESTAMP_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def mesh_body(name: str = "mesh-a", clusters: Sequence[str] = ("cluster-a",)) -> dict[str, Any]:
    """A create body in the shape of the seed's example request."""
    return {
        "apiVersion": "v1",
        "kind": "Mesh",
        "metadata": {"name": name},
        "spec": {
            "type": "InCluster",
            "version": "1.18.7-r5",
            "extendParams": {
                "clusters": [
                    {
                        "clusterID": cluster,
                        "installation": {
                            "nodes": {
                                "fieldSelector": {"key": "UID", "operator": "In", "values": ["n1"]}
                            }
                        },
                        "injection": {
                            "namespaces": {
                                "fieldSelector": {
                                    "key": "Name",
                                    "operator": "In",
                                    "values": ["default"],
                                }
                            }
                        },
                    }
                    for cluster in clusters
                ]
            },
            "config": {
                "proxyConfig": {"includeIPRanges": "10.247.0.0/16"},
                "telemetryConfig": {
                    "tracing": {
                        "randomSamplingPercentage": 1,
                        "defaultProviders": ["zipkin"],
                        "extensionProviders": [
                            {"name": "zipkin", "zipkin": {"service": "zipkin.svc", "port": 9411}}
                        ],
                    }
                },
            },
        },
    }


@dataclass(frozen=True)
class Answer:
    """One HTTP answer, read whole."""

    status: int
    body: Any
    headers: Mapping[str, str]

    @property
    def code(self) -> str:
        """``errorCode`` of an error body."""
        return str(self.body["errorCode"])

    @property
    def message(self) -> str:
        """``errorMsg`` of an error body."""
        return str(self.body["errorMsg"])


async def call(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    body: Any = None,
    data: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> Answer:
    """Send one request; every answer must carry a uuid ``X-Request-Id``, whatever its status."""
    payload = data if data is not None else (None if body is None else json.dumps(body).encode())
    sent = dict(AUTH if headers is None else headers)
    if payload is not None:
        sent.setdefault("Content-Type", "application/json")
    async with http.request(method, url, data=payload, headers=sent) as response:
        raw = await response.read()
        request_id = response.headers.get("X-Request-Id")
        assert request_id is not None, f"{method} {url} -> {response.status} lacks X-Request-Id"
        assert uuid.UUID(request_id)
        return Answer(
            response.status, json.loads(raw) if raw else None, CIMultiDict(response.headers)
        )


def config(**changes: Any) -> SimulatorConfig:
    """The tests' default simulator: one static token, 5 s creating, 2 s deleting, seed 1."""
    values: dict[str, Any] = {
        "create_seconds": CREATE_S,
        "delete_seconds": DELETE_S,
        "tokens": (TOKEN,),
        "seed": 1,
    }
    return SimulatorConfig(**(values | changes))


@pytest.fixture
async def sim(clock: ManualClock) -> AsyncIterator[RunningSimulator]:
    """A fresh simulator on the manual clock."""
    async with serve(config(), clock=clock) as running:
        yield running


async def create(
    http: aiohttp.ClientSession, sim: RunningSimulator, name: str = "mesh-a", **kwargs: Any
) -> Answer:
    """POST a seed-shaped body; ``project`` and ``clusters`` may be given."""
    project = kwargs.pop("project", PROJECT)
    return await call(http, "POST", sim.mesh_url(project), body=mesh_body(name, **kwargs))


# --- shapes and phases -----------------------------------------------------------------------


async def test_create_answers_201_in_the_seed_shape(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    answer = await create(http, sim)
    assert answer.status == 201
    body = answer.body
    assert (body["apiVersion"], body["kind"]) == ("v1", "Mesh")
    assert set(body["metadata"]) == {"name", "uid", "creationTimestamp"}
    assert body["metadata"]["name"] == "mesh-a"
    assert uuid.UUID(body["metadata"]["uid"])
    assert TIMESTAMP_RE.fullmatch(body["metadata"]["creationTimestamp"])
    # Clusters come back as clusterID only; the rest of the spec is echoed as sent.
    assert body["spec"]["extendParams"] == {"clusters": [{"clusterID": "cluster-a"}]}
    sent = mesh_body()["spec"]
    assert body["spec"]["config"] == sent["config"]
    assert (body["spec"]["type"], body["spec"]["version"]) == ("InCluster", "1.18.7-r5")
    assert body["status"] == {"phase": "Creating"}
    mesh = Mesh.model_validate(body)
    assert (mesh.phase, mesh.cluster_ids) == (MeshPhase.CREATING, ["cluster-a"])


async def test_phase_creating_then_running_on_the_simulators_clock(
    http: aiohttp.ClientSession, sim: RunningSimulator, clock: ManualClock
) -> None:
    uid = (await create(http, sim)).body["metadata"]["uid"]
    clock.advance(CREATE_S - 0.01)
    shown = await call(http, "GET", sim.mesh_url(PROJECT, uid))
    assert (shown.status, shown.body["status"]["phase"]) == (200, "Creating")
    clock.advance(0.01)
    shown = await call(http, "GET", sim.mesh_url(PROJECT, uid))
    assert shown.body["status"]["phase"] == "Running"
    assert TIMESTAMP_RE.fullmatch(shown.body["status"]["updateTimestamp"])
    listed = await call(http, "GET", sim.mesh_url(PROJECT))
    assert listed.status == 200
    assert (listed.body["apiVersion"], listed.body["kind"]) == ("v1", "MeshList")
    meshes = MeshList.model_validate(listed.body).items
    assert [(m.uid, m.phase) for m in meshes] == [(uid, "Running")]


async def test_phase_moves_on_the_real_clock_too(http: aiohttp.ClientSession) -> None:
    async with serve(config(create_seconds=0.05)) as sim:
        uid = (await create(http, sim)).body["metadata"]["uid"]
        await asyncio.sleep(0.06)
        shown = await call(http, "GET", sim.mesh_url(PROJECT, uid))
    assert shown.body["status"]["phase"] == "Running"


async def test_list_is_per_project_in_creation_order(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    await create(http, sim, "mesh-a", clusters=["c-a"])
    await create(http, sim, "mesh-b", clusters=["c-b"])
    await create(http, sim, "mesh-a", clusters=["c-o"], project=OTHER_PROJECT)
    mine = (await call(http, "GET", sim.mesh_url(PROJECT))).body["items"]
    theirs = (await call(http, "GET", sim.mesh_url(OTHER_PROJECT))).body["items"]
    assert [m["metadata"]["name"] for m in mine] == ["mesh-a", "mesh-b"]
    assert [m["spec"]["extendParams"]["clusters"] for m in theirs] == [[{"clusterID": "c-o"}]]


async def test_delete_goes_through_deleting_then_is_gone_and_frees_name_and_cluster(
    http: aiohttp.ClientSession, sim: RunningSimulator, clock: ManualClock
) -> None:
    uid = (await create(http, sim)).body["metadata"]["uid"]
    clock.advance(CREATE_S)
    deleted = await call(http, "DELETE", sim.mesh_url(PROJECT, uid))
    assert (deleted.status, deleted.body["status"]["phase"]) == (200, "Deleting")
    shown = await call(http, "GET", sim.mesh_url(PROJECT, uid))
    assert shown.body["status"]["phase"] == "Deleting"
    # Still there while deleting: name and cluster are taken until it is gone.
    assert (await create(http, sim)).status == 409
    again = await call(http, "DELETE", sim.mesh_url(PROJECT, uid))
    assert (again.status, again.body["status"]["phase"]) == (200, "Deleting")

    clock.advance(DELETE_S)
    gone = await call(http, "GET", sim.mesh_url(PROJECT, uid))
    assert (gone.status, gone.code) == (404, "ASM.01010002")
    assert (await call(http, "GET", sim.mesh_url(PROJECT))).body["items"] == []
    assert (await call(http, "DELETE", sim.mesh_url(PROJECT, uid))).status == 404
    recreated = await create(http, sim)
    assert recreated.status == 201
    assert recreated.body["metadata"]["uid"] != uid
    assert sim.state.stats.creations(PROJECT, "mesh-a") == 2


async def test_unknown_or_foreign_mesh_is_404(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    uid = (await create(http, sim)).body["metadata"]["uid"]
    for url in (
        sim.mesh_url(PROJECT, str(uuid.uuid4())),
        sim.mesh_url(OTHER_PROJECT, uid),  # the id exists, but in another project
        sim.mesh_url(PROJECT, "no..such..mesh"),
    ):
        for method in ("GET", "DELETE"):
            answer = await call(http, method, url)
            assert (answer.status, answer.code) == (404, "ASM.01010002"), (method, url)
    assert (await call(http, "GET", sim.mesh_url(PROJECT, uid))).status == 200


# --- conflicts -----------------------------------------------------------------------------


async def test_duplicate_name_is_409_and_nothing_more_is_created(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    assert (await create(http, sim, clusters=["c-1"])).status == 201
    duplicate = await create(http, sim, clusters=["c-2"])
    assert (duplicate.status, duplicate.code) == (409, "ASM.01010003")
    assert "'mesh-a'" in duplicate.message
    # The same name in another project is another mesh.
    assert (await create(http, sim, clusters=["c-3"], project=OTHER_PROJECT)).status == 201
    assert sim.state.stats.creations(PROJECT, "mesh-a") == 1
    assert sim.state.stats.posts(PROJECT, "mesh-a") == 2
    assert len((await call(http, "GET", sim.mesh_url(PROJECT))).body["items"]) == 1


async def test_cluster_of_another_mesh_is_409_naming_the_cluster(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    assert (await create(http, sim, "mesh-a", clusters=["c-1"])).status == 201
    same_project = await create(http, sim, "mesh-b", clusters=["c-9", "c-1"])
    assert (same_project.status, same_project.code) == (409, "ASM.01010003")
    assert "cluster c-1" in same_project.message
    assert "'mesh-a'" in same_project.message
    assert "c-9" not in same_project.message
    other_project = await create(http, sim, "mesh-c", clusters=["c-1"], project=OTHER_PROJECT)
    assert (other_project.status, other_project.code) == (409, "ASM.01010003")
    assert "cluster c-1" in other_project.message
    assert "another project" in other_project.message
    assert "mesh-a" not in other_project.message  # another project's names are not revealed
    assert sim.state.stats.creations(PROJECT, "mesh-b") == 0


# --- request validation ----------------------------------------------------------------------


def _with(path: str, value: Any) -> dict[str, Any]:
    body = mesh_body()
    node: Any = body
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if key.isdigit() else node[key]
    if value is _DROP:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return body


_DROP = object()
_CLUSTER = "spec.extendParams.clusters.0"

BAD_BODIES = [
    ("metadata.name", "mesh-", "metadata.name: must not end with '-'"),
    ("metadata.name", "abc", "metadata.name: must be 4 to 64 characters"),
    ("metadata.name", "Mesh-a", "metadata.name: must start with a lower-case letter"),
    ("metadata.name", "mesh_a", "metadata.name: may contain only"),
    ("apiVersion", "v2", "apiVersion: "),
    ("kind", "Deployment", "kind: "),
    ("spec.type", "Dedicated", "spec.type: "),
    ("spec.version", "1.3.0-r1", "spec.version: '1.3.0-r1': mesh lines 1.3 and older"),
    ("spec.version", "latest", "spec.version: 'latest' is not an ASM version"),
    (f"{_CLUSTER}.installation", _DROP, "spec.extendParams.clusters[0].installation: Field"),
    (
        f"{_CLUSTER}.installation.nodes.fieldSelector.operator",
        "NotIn",
        "spec.extendParams.clusters[0].installation.nodes.fieldSelector.operator: ",
    ),
    ("spec.extendParams.clusters", [], "spec.extendParams.clusters: "),
    ("spec.tags", [{"key": "a", "value": "b"}], "spec.tags: Extra inputs are not permitted"),
    (
        "spec.config.telemetryConfig.tracing.defaultProviders",
        ["jaeger"],
        "spec.config.telemetryConfig.tracing: defaultProviders names 'jaeger'",
    ),
]


@pytest.mark.parametrize(("path", "value", "expected"), BAD_BODIES, ids=[b[2] for b in BAD_BODIES])
async def test_invalid_body_is_400_naming_the_field(
    http: aiohttp.ClientSession, sim: RunningSimulator, path: str, value: Any, expected: str
) -> None:
    answer = await call(http, "POST", sim.mesh_url(PROJECT), body=_with(path, value))
    assert (answer.status, answer.code) == (400, "ASM.01010001")
    assert expected in answer.message
    assert sim.state.all_meshes() == []
    assert sim.state.stats.names == {}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "request body: "),
    ],
)
async def test_unparsable_body_is_400(
    http: aiohttp.ClientSession, sim: RunningSimulator, data: bytes, expected: str
) -> None:
    answer = await call(http, "POST", sim.mesh_url(PROJECT), data=data)
    assert (answer.status, answer.code) == (400, "ASM.01010001")
    assert expected in answer.message
    assert sim.state.all_meshes() == []


@pytest.mark.parametrize(
    "project",
    [
        "0123456789ABCDEF0123456789ABCDEF",
        "0123456789abcdef",
        "0123456789abcdef0123456789abcdeg",
        "0123456789abcdef0123456789abcdef0",
    ],
)
async def test_project_id_must_be_32_lower_case_hex(
    http: aiohttp.ClientSession, sim: RunningSimulator, project: str
) -> None:
    for method, url, body in (
        ("POST", sim.mesh_url(project), mesh_body()),
        ("GET", sim.mesh_url(project), None),
        ("GET", sim.mesh_url(project, "a-mesh"), None),
        ("DELETE", sim.mesh_url(project, "a-mesh"), None),
    ):
        answer = await call(http, method, url, body=body)
        assert (answer.status, answer.code) == (400, "ASM.01010001"), (method, url)
        assert "project_id" in answer.message
    assert sim.state.all_meshes() == []


async def test_unknown_routes_and_methods_answer_json_with_request_id(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    # The obsolete path form (project in X-Apply-ProjectID) is not served.
    obsolete = await call(
        http, "GET", f"{sim.url}/v1/meshes", headers=AUTH | {"X-Apply-ProjectID": PROJECT}
    )
    assert (obsolete.status, obsolete.code) == (404, "APIGW.0101")
    wrong_method = await call(http, "PUT", sim.mesh_url(PROJECT, "x"), body={})
    assert (wrong_method.status, wrong_method.code) == (405, "APIGW.0101")
    assert sum(sim.state.stats.requests.values()) == 0


async def test_every_answer_has_its_own_request_id(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    ids = set()
    for method, url, body, headers in [
        ("POST", sim.mesh_url(PROJECT), mesh_body(), AUTH),  # 201
        ("POST", sim.mesh_url(PROJECT), mesh_body(), AUTH),  # 409
        ("POST", sim.mesh_url(PROJECT), {"kind": "Mesh"}, AUTH),  # 400
        ("GET", sim.mesh_url(PROJECT), None, {}),  # 401
        ("GET", sim.mesh_url(PROJECT, "nope"), None, AUTH),  # 404
        ("GET", f"{sim.url}/nowhere", None, AUTH),  # 404 route
        ("GET", f"{sim.url}/_sim/stats", None, {}),  # admin
        ("POST", f"{sim.url}/v3/auth/tokens", {}, {}),  # IAM 400
    ]:
        answer = await call(http, method, url, body=body, headers=headers)
        ids.add(answer.headers["X-Request-Id"])
    assert len(ids) == 8


async def test_unexpected_error_is_500_with_request_id(
    http: aiohttp.ClientSession, sim: RunningSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(project_id: str) -> list[Any]:
        raise RuntimeError("boom")

    monkeypatch.setattr(sim.state, "list_meshes", broken)
    answer = await call(http, "GET", sim.mesh_url(PROJECT))
    assert (answer.status, answer.code, answer.message) == (500, "ASM.01040001", "internal error")
    assert sim.state.stats.by_operation["list"] == {500: 1}


# --- fault injection -------------------------------------------------------------------------


async def test_500_before_create_creates_nothing(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    sim.state.update_faults(fail_500_before=1.0)
    answer = await create(http, sim)
    assert (answer.status, answer.code) == (500, "ASM.01040001")
    assert sim.state.all_meshes() == []
    assert sim.state.stats.faults["500-before"] == 1
    assert (
        sim.state.stats.posts(PROJECT, "mesh-a"),
        sim.state.stats.creations(PROJECT, "mesh-a"),
    ) == (1, 0)


async def test_500_after_create_leaves_exactly_one_mesh(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    sim.state.update_faults(fail_500_after=1.0)
    first = await create(http, sim)
    assert (first.status, first.code) == (500, "ASM.01040001")
    # The retry a client makes meets the mesh its failed attempt created: 409, then adoption.
    retry = await create(http, sim)
    assert (retry.status, retry.code) == (409, "ASM.01010003")
    items = (await call(http, "GET", sim.mesh_url(PROJECT))).body["items"]
    assert [m["metadata"]["name"] for m in items] == ["mesh-a"]
    assert sim.state.stats.creations(PROJECT, "mesh-a") == 1
    assert sim.state.stats.posts(PROJECT, "mesh-a") == 2
    assert sim.state.stats.faults["500-after"] == 1


async def test_429_with_retry_after_on_create_and_delete(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    uid = (await create(http, sim, "mesh-old", clusters=["c-old"])).body["metadata"]["uid"]
    sim.state.update_faults(fail_429=1.0, retry_after=0.5)
    throttled = await create(http, sim)
    assert (throttled.status, throttled.code) == (429, "ASM.01429001")
    assert throttled.headers["Retry-After"] == "0.5"
    locked = await call(http, "DELETE", sim.mesh_url(PROJECT, uid))
    assert (locked.status, locked.code) == (429, "ASM.01429001")
    # Reads are not locked.
    shown = await call(http, "GET", sim.mesh_url(PROJECT, uid))
    assert (shown.status, shown.body["status"]["phase"]) == (200, "Creating")
    sim.state.update_faults(retry_after=None)
    assert "Retry-After" not in (await create(http, sim)).headers
    assert sim.state.stats.creations(PROJECT, "mesh-a") == 0
    assert sim.state.stats.faults["429"] == 3
    assert sim.state.stats.by_status[429] == 3


async def test_create_failed_probability_ends_create_failed(
    http: aiohttp.ClientSession, sim: RunningSimulator, clock: ManualClock
) -> None:
    sim.state.update_faults(create_failed=1.0)
    created = await create(http, sim)
    assert (created.status, created.body["status"]["phase"]) == (201, "Creating")
    clock.advance(CREATE_S)
    shown = await call(http, "GET", sim.mesh_url(PROJECT, created.body["metadata"]["uid"]))
    assert shown.body["status"]["phase"] == "CreateFailed"
    assert sim.state.stats.faults["create-failed"] == 1
    assert sim.state.stats.creations(PROJECT, "mesh-a") == 1


async def test_latency_and_jitter_delay_mesh_calls_only(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    sim.state.update_faults(latency=0.05, latency_jitter=0.05)
    started = time.monotonic()
    assert (await call(http, "GET", sim.mesh_url(PROJECT))).status == 200
    assert 0.05 <= time.monotonic() - started < 1.0
    started = time.monotonic()
    await call(http, "GET", f"{sim.url}/_sim/stats")
    assert time.monotonic() - started < 0.05
    assert sim.state.stats.faults["latency"] == 1


async def test_name_rules_hit_matching_names_only(
    http: aiohttp.ClientSession, sim: RunningSimulator, clock: ManualClock
) -> None:
    sim.state.update_faults(rules=["fail-*=create-failed", "flaky-*=500-before:2"])
    outcomes = [(await create(http, sim, "flaky-one", clusters=["c-f"])).status for _ in range(4)]
    assert outcomes == [500, 500, 201, 409]
    doomed = await create(http, sim, "fail-one", clusters=["c-d"])
    fine = await create(http, sim, "good-one", clusters=["c-g"])
    clock.advance(CREATE_S)
    phases = {
        m["metadata"]["name"]: m["status"]["phase"]
        for m in (await call(http, "GET", sim.mesh_url(PROJECT))).body["items"]
    }
    assert phases == {"flaky-one": "Running", "fail-one": "CreateFailed", "good-one": "Running"}
    assert (doomed.status, fine.status) == (201, 201)
    stats = sim.state.stats
    assert (stats.posts(PROJECT, "flaky-one"), stats.creations(PROJECT, "flaky-one")) == (4, 1)
    assert dict(stats.faults) == {"500-before": 2, "create-failed": 1}


async def test_rule_counts_are_per_project(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    sim.state.update_faults(rules=["flaky-*=429:1"])
    mine = [(await create(http, sim, "flaky-x", clusters=["c-1"])).status for _ in range(2)]
    theirs = [
        (await create(http, sim, "flaky-x", clusters=["c-2"], project=OTHER_PROJECT)).status
        for _ in range(2)
    ]
    assert (mine, theirs) == ([429, 201], [429, 201])


async def test_leave_rules_move_a_running_mesh_on_or_make_it_vanish(
    http: aiohttp.ClientSession, sim: RunningSimulator, clock: ManualClock
) -> None:
    sim.state.update_faults(leave=["canary-*=Unknown@10", "gone-*=gone@10"])
    broken = (await create(http, sim, "canary-a", clusters=["c-1"])).body["metadata"]["uid"]
    vanished = (await create(http, sim, "gone-a", clusters=["c-2"])).body["metadata"]["uid"]
    kept = (await create(http, sim, "mesh-a", clusters=["c-3"])).body["metadata"]["uid"]

    async def phases() -> dict[str, str]:
        listed = (await call(http, "GET", sim.mesh_url(PROJECT))).body["items"]
        return {m["metadata"]["uid"]: m["status"]["phase"] for m in listed}

    # Created as usual, Running for the rule's seconds after create_seconds.
    clock.advance(CREATE_S + 9.9)
    assert await phases() == {broken: "Running", vanished: "Running", kept: "Running"}
    clock.advance(0.1)
    assert await phases() == {broken: "Unknown", kept: "Running"}
    shown = await call(http, "GET", sim.mesh_url(PROJECT, vanished))
    assert shown.status == 404
    assert (await call(http, "GET", sim.mesh_url(PROJECT, broken))).body["status"][
        "phase"
    ] == "Unknown"
    assert sim.state.stats.faults["leave-running"] == 2


async def test_a_delete_failed_rule_leaves_the_mesh_delete_failed_until_deleted_again(
    http: aiohttp.ClientSession, sim: RunningSimulator, clock: ManualClock
) -> None:
    sim.state.update_faults(rules=["stubborn-*=delete-failed:1"])
    uid = (await create(http, sim, "stubborn-a", clusters=["c-1"])).body["metadata"]["uid"]
    clock.advance(CREATE_S)
    first = await call(http, "DELETE", sim.mesh_url(PROJECT, uid))
    assert (first.status, first.body["status"]["phase"]) == (200, "Deleting")
    clock.advance(DELETE_S)
    shown = await call(http, "GET", sim.mesh_url(PROJECT, uid))
    assert (shown.status, shown.body["status"]["phase"]) == (200, "DeleteFailed")
    # The rule hit the first DELETE only: the second deletes it.
    again = await call(http, "DELETE", sim.mesh_url(PROJECT, uid))
    assert (again.status, again.body["status"]["phase"]) == (200, "Deleting")
    clock.advance(DELETE_S)
    assert (await call(http, "GET", sim.mesh_url(PROJECT, uid))).status == 404
    assert (await call(http, "DELETE", sim.mesh_url(PROJECT, uid))).status == 404
    assert sim.state.stats.deletes(uid) == 2  # the 404 is not counted
    assert sim.state.stats.faults["delete-failed"] == 1


def test_leave_rule_parsing() -> None:
    assert LeaveRule.parse("canary-*=Unknown@2.5") == LeaveRule(
        pattern="canary-*", to="Unknown", after_s=2.5
    )
    assert str(LeaveRule.parse("a-*=gone")) == "a-*=gone@0"
    for bad in ("nonsense", "a-*=", "a-*=Unknown@soon", "=gone", "a-*=Not Running"):
        with pytest.raises(ValueError, match=r"rule|pattern"):
            LeaveRule.parse(bad)


async def _outcomes(http: aiohttp.ClientSession, seed: int) -> list[int]:
    faults = FaultConfig(fail_500_before=0.3, fail_500_after=0.2, fail_429=0.2)
    async with serve(config(seed=seed, faults=faults)) as sim:
        return [
            (await create(http, sim, f"mesh-{i:02d}", clusters=[f"c-{i}"])).status
            for i in range(30)
        ]


async def test_seeded_faults_are_reproducible(http: aiohttp.ClientSession) -> None:
    first, second, other = [await _outcomes(http, s) for s in (7, 7, 8)]
    assert first == second
    assert first != other
    assert {201, 429, 500} <= set(first)


# --- admin endpoints and stats ---------------------------------------------------------------


async def test_stats_endpoint_counts_requests_statuses_and_names(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    uid = (await create(http, sim)).body["metadata"]["uid"]
    await create(http, sim)  # 409
    await call(http, "GET", sim.mesh_url(PROJECT, uid))
    await call(http, "GET", sim.mesh_url(PROJECT))
    await call(http, "GET", sim.mesh_url(PROJECT), headers={})  # 401
    await call(http, "DELETE", sim.mesh_url(PROJECT, uid))
    stats = (await call(http, "GET", f"{sim.url}/_sim/stats", headers={})).body
    assert (stats["posts"], stats["shows"], stats["lists"], stats["deletes"]) == (2, 1, 2, 1)
    assert stats["by_status"] == {"200": 3, "201": 1, "401": 1, "409": 1}
    assert stats["by_operation"]["create"] == {"201": 1, "409": 1}
    assert stats["names"] == [{"project_id": PROJECT, "name": "mesh-a", "posts": 2, "creations": 1}]
    assert stats["faults"] == {}
    assert stats["meshes"] == {"Deleting": 1}
    assert stats["iam_tokens"] == 0


async def test_reset_forgets_meshes_and_counters(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    await create(http, sim)
    reset = await call(http, "POST", f"{sim.url}/_sim/reset", headers={})
    assert reset.status == 200
    stats = (await call(http, "GET", f"{sim.url}/_sim/stats", headers={})).body
    assert (stats["posts"], stats["names"], stats["meshes"], stats["by_status"]) == (0, [], {}, {})
    assert (await create(http, sim)).status == 201


async def test_patch_faults_changes_behaviour_at_runtime(
    http: aiohttp.ClientSession, sim: RunningSimulator
) -> None:
    url = f"{sim.url}/_sim/faults"
    patched = await call(
        http, "PATCH", url, body={"fail_500_before": 1, "rules": ["x-*=429:1"]}, headers={}
    )
    assert patched.status == 200
    assert patched.body["fail_500_before"] == 1
    assert patched.body["rules"] == [{"pattern": "x-*", "action": "429", "times": 1}]
    assert (await create(http, sim)).status == 500
    assert (await call(http, "PATCH", url, body={"fail_500_before": 0}, headers={})).status == 200
    assert (await create(http, sim)).status == 201
    current = await call(http, "GET", url, headers={})
    assert current.body["rules"] == [{"pattern": "x-*", "action": "429", "times": 1}]

    for bad, field in [
        ({"fail_429": 2}, "fail_429"),
        ({"no_such_fault": 1}, "no_such_fault"),
        ({"rules": ["nonsense"]}, "rules"),
        ({"latency": -1}, "latency"),
    ]:
        refused = await call(http, "PATCH", url, body=bad, headers={})
        assert (refused.status, refused.code) == (400, "ASM.01010001"), bad
        assert field in refused.message
    assert (await call(http, "PATCH", url, data=b"[]", headers={})).status == 400
    assert sim.state.faults.fail_429 == 0  # a refused patch changes nothing


async def test_seeded_mesh_exists_without_counting_as_a_creation(
    http: aiohttp.ClientSession, sim: RunningSimulator, clock: ManualClock
) -> None:
    url = f"{sim.url}/_sim/meshes"
    seeded = await call(
        http,
        "POST",
        url,
        body={"project_id": PROJECT, "name": "mesh-a", "cluster_ids": ["c-1"]},
        headers={},
    )
    assert (seeded.status, seeded.body["status"]["phase"]) == (201, "Running")
    creating = await call(
        http,
        "POST",
        url,
        body={"project_id": PROJECT, "name": "mesh-new", "phase": "Creating"},
        headers={},
    )
    assert creating.body["status"]["phase"] == "Creating"
    sim.state.seed_mesh(OTHER_PROJECT, "broken-mesh", ["c-2"], phase=MeshPhase.CREATE_FAILED)

    assert (await create(http, sim, "mesh-a", clusters=["c-9"])).status == 409
    assert (await create(http, sim, "mesh-b", clusters=["c-1"])).status == 409
    clock.advance(CREATE_S)
    phases = [
        (m["metadata"]["name"], m["status"]["phase"])
        for m in (await call(http, "GET", sim.mesh_url(PROJECT))).body["items"]
    ]
    assert phases == [("mesh-a", "Running"), ("mesh-new", "Running")]
    everywhere = (await call(http, "GET", url, headers={})).body["items"]
    assert {(m["project_id"], m["mesh"]["status"]["phase"]) for m in everywhere} == {
        (PROJECT, "Running"),
        (OTHER_PROJECT, "CreateFailed"),
    }
    assert sim.state.stats.creations(PROJECT, "mesh-a") == 0

    again = await call(
        http, "POST", url, body={"project_id": PROJECT, "name": "mesh-a"}, headers={}
    )
    assert (again.status, again.code) == (409, "ASM.01010003")
    for bad, field in [
        ({"project_id": "nope", "name": "mesh-x"}, "project_id"),
        ({"project_id": PROJECT, "name": "x-"}, "name"),
        ({"project_id": PROJECT, "name": "mesh-x", "phase": "Sleeping"}, "phase"),
    ]:
        refused = await call(http, "POST", url, body=bad, headers={})
        assert (refused.status, refused.code) == (400, "ASM.01010001"), bad
        assert field in refused.message


async def test_seeded_deleting_mesh_disappears(sim: RunningSimulator, clock: ManualClock) -> None:
    sim.state.seed_mesh(PROJECT, "going-mesh", ["c-1"], phase="Deleting")
    assert [r.phase(clock.monotonic()) for r in sim.state.list_meshes(PROJECT)] == [
        MeshPhase.DELETING
    ]
    clock.advance(DELETE_S)
    assert sim.state.list_meshes(PROJECT) == []
    assert sim.state.conflict(PROJECT, "going-mesh", ["c-1"]) is None


# --- configuration and command line ----------------------------------------------------------


def test_name_rule_parsing() -> None:
    assert NameRule.parse("flaky-*=500-before:2") == NameRule(
        pattern="flaky-*", action="500-before", times=2
    )
    assert str(NameRule.parse("fail-*=create-failed")) == "fail-*=create-failed"
    assert NameRule.parse("fail-*=create-failed").matches("fail-7")
    assert not NameRule.parse("fail-*=create-failed").matches("mesh-fail-7")
    for bad in ["fail-*", "=429", "x=explode", "x=429:0", "x=429:two"]:
        with pytest.raises(ValueError, match="rule"):
            NameRule.parse(bad)


def test_cli_flags_become_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    parser = build_parser()
    args = parser.parse_args(
        [
            "--port", "0", "--create-seconds", "0.5", "--delete-seconds", "0.25",
            "--token", "T1", "--token", "T2", "--ak", "AK1", "--sk", "SK1",
            "--iam-user", "ops:pw:with:colons", "--iam-domain", "acme", "--token-ttl", "60",
            "--fail-500-before", "0.1", "--fail-500-after", "0.2", "--fail-429", "0.3",
            "--retry-after", "2", "--create-failed", "0.4", "--latency", "0.01",
            "--latency-jitter", "0.02", "--rule", "fail-*=create-failed", "--seed", "9",
        ]
    )  # fmt: skip
    cfg = config_from_args(args, {}, parser)
    assert (cfg.create_seconds, cfg.delete_seconds, cfg.token_ttl_seconds) == (0.5, 0.25, 60)
    assert cfg.tokens == ("T1", "T2")
    assert [(k.ak, k.sk) for k in cfg.access_keys] == [("AK1", "SK1")]
    assert (dict(cfg.iam_users), cfg.iam_domain) == ({"ops": "pw:with:colons"}, "acme")
    assert cfg.faults == FaultConfig(
        fail_500_before=0.1,
        fail_500_after=0.2,
        fail_429=0.3,
        retry_after=2,
        create_failed=0.4,
        latency=0.01,
        latency_jitter=0.02,
        rules=["fail-*=create-failed"],
    )
    assert (cfg.seed, cfg.auth_enabled) == (9, True)
    for secret in ("T1", "SK1", "pw:with:colons"):
        assert secret not in repr(cfg)
        assert secret not in cfg.auth_summary()

    env = {"HUAWEICLOUD_SDK_AK": "ENVAK", "HUAWEICLOUD_SDK_SK": "ENVSK"}
    from_env = config_from_args(parser.parse_args(["--no-auth"]), env, parser)
    assert [(k.ak, k.sk) for k in from_env.access_keys] == [("ENVAK", "ENVSK")]
    assert from_env.auth_enabled is False

    # A token from the environment stays off the command line; one that starts with "-"
    # (as secrets.token_urlsafe gives one run in 64) must not be read as an option.
    token_env = {"ASM_AUTH_TOKEN": "-dash-first-token "}
    assert config_from_args(parser.parse_args([]), token_env, parser).tokens == (
        "-dash-first-token",
    )
    flagged = config_from_args(parser.parse_args(["--token", "T9"]), token_env, parser)
    assert flagged.tokens == ("T9",)


@pytest.mark.parametrize(
    "argv",
    [
        ["--fail-429", "1.5"],
        ["--latency", "-1"],
        ["--rule", "nonsense"],
        ["--ak", "A"],
        ["--iam-user", "no-password"],
        ["--port", "http"],
    ],
)
def test_cli_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "usage:" in capsys.readouterr().err


def test_cli_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for flag in ("--create-seconds", "--fail-500-after", "--rule", "--no-auth", "--iam-user"):
        assert flag in out


@pytest.fixture
def cli_process() -> Iterator[subprocess.Popen[str]]:
    """``python -m simulator`` on a free port, killed if a test leaves it running."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUAWEICLOUD_", "ASM_"))}
    env["ASM_AUTH_TOKEN"] = TOKEN
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "meshfleet.simulator"),
            *("--port", "0", "--create-seconds", "0", "--seed", "1"),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_cli_serves_then_exits_cleanly_on_signal(
    http: aiohttp.ClientSession, cli_process: subprocess.Popen[str], signum: signal.Signals
) -> None:
    assert cli_process.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(cli_process.stdout.readline), timeout=15)
    match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
    assert match, line
    assert TOKEN not in line
    url = match.group(1)
    created = await call(http, "POST", f"{url}/v1/{PROJECT}/meshes", body=mesh_body())
    assert (created.status, created.body["status"]["phase"]) == (201, "Creating")
    listed = await call(http, "GET", f"{url}/v1/{PROJECT}/meshes")
    assert listed.body["items"][0]["status"]["phase"] == "Running"  # --create-seconds 0

    cli_process.send_signal(signum)
    code = await asyncio.to_thread(cli_process.wait, 10)
    assert code == 0
    assert cli_process.stdout.read() == ""  # the listening line was the only one
    assert cli_process.stderr is not None
    errors = cli_process.stderr.read()
    assert "stopped" in errors
    assert "Traceback" not in errors
