"""The manifest as the fleet's desired state, on a fleet of 30 targets: plan predicts, converge
updates exactly what drifted (judged at run time), creates what is missing, sends nothing to the
in-sync meshes; a second converge writes nothing; rollback restores and deletes; adopt reports
the drift; require_match fails exactly the drifted.

Real dev server, the production worker, and the simulator over loopback HTTP.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from temporalio.client import Client

from meshfleet import rollouts
from meshfleet.asm.auth import StaticTokenAuth
from meshfleet.asm.client import AsmClient
from meshfleet.asm.models import MeshConfig, UpdateMeshRequest
from meshfleet.drift import config_changes, wanted_config
from meshfleet.models import MeshTarget, RolloutProgress, RolloutState
from meshfleet.plan import plan_rollout
from meshfleet.rollback import plan_rollback, read_records, rollback_input, start_rollback
from meshfleet.simulator.config import SimulatorConfig
from meshfleet.simulator.testing import RunningSimulator, serve
from tests.helpers.eventually import eventually
from tests.helpers.fleet import SIM_TOKEN, running_worker, spec, target

OLD_VERSION = "1.15.7-r3"


def _config(sampling: int, port: str = "8080") -> dict[str, Any]:
    return {
        "proxyConfig": {"excludeInboundPorts": port},
        "telemetryConfig": {"tracing": {"randomSamplingPercentage": sampling}},
    }


WANTED = _config(10)
OTHER = _config(1, "8080,9090")
BY_HAND = _config(50)


@dataclass
class Fleet:
    in_sync: list[MeshTarget]
    other_config: list[MeshTarget]
    missing: list[MeshTarget]
    older: list[MeshTarget]
    conflicts: list[MeshTarget]
    by_hand: list[MeshTarget]

    @property
    def targets(self) -> list[MeshTarget]:
        return (
            self.in_sync
            + self.other_config
            + self.missing
            + self.older
            + self.conflicts
            + self.by_hand
        )


def _fleet() -> Fleet:
    tag = uuid.uuid4().hex[:6]

    def group(first: int, size: int, name: str) -> list[MeshTarget]:
        return [
            target(first + i, f"{name}-{tag}-{i:02d}").model_copy(update={"config": WANTED})
            for i in range(size)
        ]

    return Fleet(
        in_sync=group(0, 10, "sync"),
        other_config=group(10, 8, "other"),
        missing=group(18, 6, "missing"),
        older=group(24, 2, "older"),
        conflicts=group(26, 2, "conflict"),
        by_hand=group(28, 2, "hand"),
    )


def _seed(sim: RunningSimulator, fleet: Fleet) -> dict[str, str]:
    """Every mesh that exists before the rollout; mesh name -> uid."""
    uids: dict[str, str] = {}
    state = sim.state

    def seed(t: MeshTarget, config: dict[str, Any], version: str = "1.18.7-r5") -> None:
        record = state.seed_mesh(
            t.project_id, t.mesh_name, [t.cluster_id], version=version, config=config
        )
        uids[t.mesh_name] = record.uid

    for t in fleet.in_sync + fleet.by_hand:
        seed(t, wanted_config(t) or {})
    for t in fleet.other_config:
        seed(t, OTHER)
    for t in fleet.older:
        seed(t, wanted_config(t) or {}, OLD_VERSION)
    if not fleet.conflicts:
        return uids
    name_taken, cluster_taken = fleet.conflicts
    # The same name on another cluster, and the target's cluster in another mesh.
    state.seed_mesh(name_taken.project_id, name_taken.mesh_name, ["cluster-elsewhere"])
    state.seed_mesh(
        cluster_taken.project_id, f"holder-{uuid.uuid4().hex[:6]}", [cluster_taken.cluster_id]
    )
    return uids


def _config_of(sim: RunningSimulator, t: MeshTarget) -> dict[str, Any] | None:
    record = sim.state.find_mesh(t.project_id, t.mesh_name)
    assert record is not None, t.mesh_name
    config = record.spec_at(sim.state.now()).get("config")
    return copy.deepcopy(config) if config is not None else None


def _reads(sim: RunningSimulator, t: MeshTarget, config: dict[str, Any] | None) -> bool:
    """The mesh echoes ``config``, by the equality drift is judged by."""
    return not config_changes(config, _config_of(sim, t))


def _writes(sim: RunningSimulator) -> dict[str, int]:
    stats = sim.state.stats.to_json()
    return {"posts": stats["posts"], "puts": stats["puts"], "deletes": stats["deletes"]}


@asynccontextmanager
async def _stack(client: Client, task_queue: str) -> AsyncIterator[RunningSimulator]:
    config = SimulatorConfig(
        create_seconds=0.2, delete_seconds=0.2, update_seconds=0.3, tokens=(SIM_TOKEN,)
    )
    async with serve(config) as sim, running_worker(client, task_queue, sim.url):
        yield sim


async def _rollout(
    client: Client, task_queue: str, rollout_id: str, fleet: Fleet, existing: str
) -> RolloutProgress:
    started = await rollouts.start_rollout(
        client, spec(rollout_id, fleet.targets, existing=existing), task_queue=task_queue
    )
    assert started.started
    return await asyncio.wait_for(rollouts.wait_for_report(client, rollout_id, interval_s=0.2), 120)


async def _change_by_hand(
    sim: RunningSimulator, targets: list[MeshTarget], uids: dict[str, str]
) -> None:
    """A console edit between plan and start: a real PUT, as the console sends it."""
    async with AsmClient(StaticTokenAuth(SIM_TOKEN), endpoint=sim.url) as api:
        for t in targets:
            await api.update_mesh(
                t.project_id,
                t.region,
                uids[t.mesh_name],
                UpdateMeshRequest(mesh_config=MeshConfig.model_validate(BY_HAND)),
            )

    await eventually(
        lambda: all(_reads(sim, t, BY_HAND) for t in targets), 10, "the hand change applied"
    )


async def test_converge_a_fleet_of_thirty_then_again_then_roll_back(
    client: Client, task_queue: str
) -> None:
    fleet = _fleet()
    async with _stack(client, task_queue) as sim:
        uids = _seed(sim, fleet)
        async with AsmClient(StaticTokenAuth(SIM_TOKEN), endpoint=sim.url) as api:
            planned = {p.target.mesh_name: p for p in await plan_rollout(api, fleet.targets)}
        judged = {name: p.action for name, p in planned.items()}
        assert all(judged[t.mesh_name] == "in_sync" for t in fleet.in_sync + fleet.by_hand)
        assert all(judged[t.mesh_name] == "update" for t in fleet.other_config)
        assert all(judged[t.mesh_name] == "create" for t in fleet.missing)
        assert all(judged[t.mesh_name] == "upgrade" for t in fleet.older)
        assert all(judged[t.mesh_name] == "conflict" for t in fleet.conflicts)
        sample = planned[fleet.other_config[0].mesh_name]
        assert [c.text() for c in sample.changes] == [
            "config.proxyConfig.excludeInboundPorts: '8080,9090' -> '8080'",
            "config.telemetryConfig.tracing.randomSamplingPercentage: 1 -> 10",
        ]

        await _change_by_hand(sim, fleet.by_hand, uids)
        before = _writes(sim)
        hand_puts = before["puts"]

        report = await _rollout(
            client, task_queue, f"converge-{uuid.uuid4().hex[:6]}", fleet, "converge"
        )
        writes = _writes(sim)
        stats = sim.state.stats
        drifted = fleet.other_config + fleet.by_hand
        assert report.state == RolloutState.COMPLETED
        assert (report.updated, report.in_sync, report.created) == (10, 10, 6)
        # The older meshes are upgraded through their canary upgrade task, then finalized.
        assert (report.upgraded, report.finalized, report.failed) == (2, 2, 2)
        failed = {f.mesh_name: f.error_code for f in report.failures}
        assert set(failed) == {t.mesh_name for t in fleet.conflicts}
        assert all(stats.upgrade_tasks(uids[t.mesh_name]) == 1 for t in fleet.older)
        # One PUT for each drifted mesh, the hand-changed ones judged when the rollout ran.
        assert writes["puts"] - hand_puts == len(drifted)
        assert all(stats.updates(uids[t.mesh_name]) == 1 for t in fleet.other_config)
        assert all(stats.updates(uids[t.mesh_name]) == 2 for t in fleet.by_hand)
        assert all(stats.updates(uids[t.mesh_name]) == 0 for t in fleet.in_sync + fleet.older)
        assert writes["posts"] == len(fleet.missing)
        assert all(stats.creations(t.project_id, t.mesh_name) == 1 for t in fleet.missing)
        assert all(stats.creations(t.project_id, t.mesh_name) == 0 for t in fleet.in_sync)
        assert all(_reads(sim, t, wanted_config(t)) for t in drifted)
        assert {d.mesh_name for d in report.drift} >= {t.mesh_name for t in drifted}

        again = await _rollout(
            client, task_queue, f"again-{uuid.uuid4().hex[:6]}", fleet, "converge"
        )
        assert (again.in_sync, again.updated, again.created, again.upgraded) == (28, 0, 0, 0)
        assert _writes(sim) == writes  # not a single write

        # Someone edits one updated mesh after the rollout: its rollback keeps it.
        edited = fleet.other_config[0]
        await _change_by_hand(sim, [edited], uids)
        rollout_id = report.rollout_id
        records = await read_records(client, rollout_id)
        async with AsmClient(StaticTokenAuth(SIM_TOKEN), endpoint=sim.url) as api:
            foreseen = await plan_rollback(api, records)
        assert len(foreseen) == len(fleet.targets)  # each target once
        by_action: dict[str, set[str]] = {}
        for p in foreseen:
            by_action.setdefault(p.action, set()).add(p.target.mesh_name)
        assert by_action["restore"] == {t.mesh_name for t in drifted if t != edited}
        # A finalized upgrade cannot go back: kept, as is the mesh edited since.
        assert by_action["keep"] == {edited.mesh_name} | {t.mesh_name for t in fleet.older}
        assert by_action["delete"] == {t.mesh_name for t in fleet.missing}
        # A worker before 0.3.0 reads a rollback target by its uid alone and deletes: a target
        # to restore carries its uid only where such a worker does not look.
        to_undo, _ = rollback_input(records)
        restores = [t for t in to_undo if t.restore is not None]
        assert len(restores) == len(drifted) + len(fleet.older)
        assert all(t.uid is None and t.restore and t.restore.uid for t in restores)
        started = await start_rollback(client, records, task_queue=task_queue)
        assert started.started
        undone = await asyncio.wait_for(
            rollouts.wait_for_report(client, rollout_id, interval_s=0.2, rollback=True), 120
        )
        assert undone.state == RolloutState.COMPLETED
        assert (undone.restored, undone.deleted, undone.kept) == (len(drifted) - 1, 6, 3)
        reasons = {k.mesh_name: k.reason for k in undone.kept_reasons}
        assert "changed since" in reasons[edited.mesh_name]
        assert all("finalized" in reasons[t.mesh_name] for t in fleet.older)
        for t in fleet.other_config[1:]:
            assert _reads(sim, t, OTHER)
        for t in fleet.by_hand:
            assert _reads(sim, t, BY_HAND)
        assert _reads(sim, edited, BY_HAND)
        names = {r.name for r in sim.state.all_meshes()}
        assert not names & {t.mesh_name for t in fleet.missing}
        assert all(stats.updates(uids[t.mesh_name]) == 0 for t in fleet.in_sync)


@pytest.mark.parametrize("existing", ["adopt", "require_match"])
async def test_adopt_reports_drift_and_require_match_fails_exactly_the_drifted(
    client: Client, task_queue: str, existing: str
) -> None:
    fleet = _fleet()
    fleet.conflicts = []
    async with _stack(client, task_queue) as sim:
        _seed(sim, fleet)
        before = _writes(sim)
        report = await _rollout(
            client,
            task_queue,
            f"{existing.replace('_', '-')}-{uuid.uuid4().hex[:6]}",
            fleet,
            existing,
        )
        drifted = {t.mesh_name for t in fleet.other_config + fleet.older}
        assert _writes(sim)["puts"] == before["puts"]
        if existing == "adopt":
            assert report.state == RolloutState.COMPLETED and report.failed == 0
            assert report.drifted == len(drifted)
            assert {d.mesh_name for d in report.drift} == drifted
            older = next(d for d in report.drift if d.mesh_name == fleet.older[0].mesh_name)
            assert older.fields[0] == f"version: '{OLD_VERSION}' -> '1.18.7-r5'"
        else:
            assert {f.mesh_name for f in report.failures} == drifted
            assert {f.error_code for f in report.failures} == {"MeshDrifted"}
            sample = next(
                f for f in report.failures if f.mesh_name == fleet.other_config[0].mesh_name
            )
            assert "randomSamplingPercentage: 1 -> 10" in (sample.message or "")
            assert report.in_sync == len(fleet.in_sync + fleet.by_hand)
            assert report.created == len(fleet.missing)
