"""Upgrades at their edges: a cancel lets the running step end and starts no other; meshes a
rollout must not upgrade are refused with nothing sent; a mesh whose configuration differs too is
upgraded only.

Real dev server, the production worker, and the simulator over loopback HTTP.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from temporalio.client import Client

from meshfleet import rollouts
from meshfleet.asm.auth import StaticTokenAuth
from meshfleet.asm.client import AsmClient
from meshfleet.models import MeshTarget, RolloutProgress, RolloutState
from meshfleet.rollback import read_records, start_rollback
from meshfleet.simulator.config import FaultConfig, SimulatorConfig
from meshfleet.simulator.testing import RunningSimulator, serve
from tests.helpers.eventually import eventually
from tests.helpers.fleet import SIM_TOKEN, running_worker, spec, unique_fleet

OLD = "1.15.7-r3"
NEW = "1.18.7-r5"


@asynccontextmanager
async def _stack(
    client: Client, task_queue: str, step_s: float = 0.3
) -> AsyncIterator[RunningSimulator]:
    config = SimulatorConfig(
        create_seconds=0.2, update_seconds=0.2, upgrade_step_seconds=step_s, tokens=(SIM_TOKEN,)
    )
    async with serve(config) as sim, running_worker(client, task_queue, sim.url):
        yield sim


async def _run(
    client: Client, task_queue: str, rollout_id: str, fleet: list[MeshTarget], **strategy: object
) -> RolloutProgress:
    started = await rollouts.start_rollout(
        client,
        spec(rollout_id, fleet, existing="converge", **strategy),
        task_queue=task_queue,
    )
    assert started.started
    return await asyncio.wait_for(rollouts.wait_for_report(client, rollout_id, interval_s=0.2), 60)


async def _mesh(sim: RunningSimulator, t: MeshTarget, uid: str) -> tuple[str | None, str | None]:
    async with AsmClient(StaticTokenAuth(SIM_TOKEN), endpoint=sim.url) as api:
        mesh = await api.mesh(t.project_id, t.region, uid)
    return (mesh.spec.version if mesh.spec else None, mesh.phase)


async def test_a_cancel_lets_the_running_step_end_and_starts_no_other(
    client: Client, task_queue: str
) -> None:
    fleet = [t.model_copy(update={"version": NEW}) for t in unique_fleet(2, "upgcancel")]
    rollout_id = f"upgrade-cancel-{uuid.uuid4().hex[:6]}"
    async with _stack(client, task_queue, step_s=2.0) as sim:
        stats = sim.state.stats
        uids = [
            sim.state.seed_mesh(t.project_id, t.mesh_name, [t.cluster_id], version=OLD).uid
            for t in fleet
        ]
        started = await rollouts.start_rollout(
            client, spec(rollout_id, fleet, existing="converge"), task_queue=task_queue
        )
        assert started.started

        def in_control_plane() -> bool:
            return all(stats.upgrade_puts(uid, "controlPlane") == 1 for uid in uids)

        await eventually(in_control_plane, 30, "both meshes' control planes started")
        await rollouts.cancel(client, rollout_id)
        report = await asyncio.wait_for(
            rollouts.wait_for_report(client, rollout_id, interval_s=0.2), 60
        )
        assert report.state == RolloutState.CANCELLED
        assert (report.cancelled, report.upgraded, report.finalized) == (2, 0, 0)
        # The running step ended; the next never started.
        stands = {u.mesh_name: (u.outcome, u.step, u.can_roll_back) for u in report.upgrades}
        assert stands == {t.mesh_name: ("cancelled", "control_plane", True) for t in fleet}
        assert all(stats.upgrade_puts(uid, "dataPlane") == 0 for uid in uids)
        for t, uid in zip(fleet, uids, strict=True):
            assert await _mesh(sim, t, uid) == (OLD, "Upgrading")

        # Both can still go back: the rollback rolls each task back, once.
        records = await read_records(client, rollout_id)
        assert (await start_rollback(client, records, task_queue=task_queue)).started
        undone = await asyncio.wait_for(
            rollouts.wait_for_report(client, rollout_id, interval_s=0.2, rollback=True), 60
        )
        assert (undone.restored, undone.failed) == (2, 0), undone
        assert all(stats.upgrade_puts(uid, "rollback") == 1 for uid in uids)
        for t, uid in zip(fleet, uids, strict=True):
            assert await _mesh(sim, t, uid) == (OLD, "Running")


async def test_meshes_a_rollout_must_not_upgrade_are_refused_with_nothing_sent(
    client: Client, task_queue: str
) -> None:
    behind, busy, newer, both = (
        t.model_copy(update={"version": NEW}) for t in unique_fleet(4, "upgrefuse")
    )
    config = {"telemetryConfig": {"tracing": {"randomSamplingPercentage": 10}}}
    both = both.model_copy(update={"config": config})
    rollout_id = f"upgrade-refused-{uuid.uuid4().hex[:6]}"
    async with _stack(client, task_queue) as sim:
        state = sim.state
        uid = {
            behind.mesh_name: state.seed_mesh(
                behind.project_id, behind.mesh_name, [behind.cluster_id], version="1.13.9-r1"
            ).uid,
            busy.mesh_name: state.seed_mesh(
                busy.project_id, busy.mesh_name, [busy.cluster_id], version=OLD, phase="Upgrading"
            ).uid,
            newer.mesh_name: state.seed_mesh(
                newer.project_id, newer.mesh_name, [newer.cluster_id], version="1.19.1-r1"
            ).uid,
            both.mesh_name: state.seed_mesh(
                both.project_id, both.mesh_name, [both.cluster_id], version=OLD
            ).uid,
        }
        report = await _run(
            client, task_queue, rollout_id, [behind, busy, newer, both], max_failures="100%"
        )
        stats = state.stats
        failures = {f.mesh_name: f for f in report.failures}
        assert {name: f.error_code for name, f in failures.items()} == {
            behind.mesh_name: "UpgradePathTooLong",
            busy.mesh_name: "MeshUpgrading",
            newer.mesh_name: "DowngradeRefused",
        }
        assert "1.13.9-r1 -> 1.15 -> 1.18.7-r5" in (failures[behind.mesh_name].message or "")
        assert "ASM console" in (failures[busy.mesh_name].message or "")
        for name in (behind.mesh_name, busy.mesh_name, newer.mesh_name):
            assert stats.upgrade_posts(uid[name]) == 0, name
            assert stats.updates(uid[name]) == 0, name
        # Version and configuration both differ: the version is upgraded, nothing else changed
        # during the upgrade, and the field is reported as drift.
        assert (report.upgraded, report.finalized) == (1, 1)
        assert stats.upgrade_tasks(uid[both.mesh_name]) == 1
        assert stats.updates(uid[both.mesh_name]) == 0
        [drifted] = [d for d in report.drift if d.mesh_name == both.mesh_name]
        assert drifted.outcome == "upgraded"
        assert drifted.fields[0] == f"version: '{OLD}' -> '{NEW}'"
        assert any("randomSamplingPercentage" in field for field in drifted.fields[1:])
        assert await _mesh(sim, busy, uid[busy.mesh_name]) == (OLD, "Upgrading")


async def test_a_rollback_asm_fails_is_a_failure_with_its_message(
    client: Client, task_queue: str
) -> None:
    [mesh] = [t.model_copy(update={"version": NEW}) for t in unique_fleet(1, "upgrbfail")]
    rollout_id = f"upgrade-rbfail-{uuid.uuid4().hex[:6]}"
    async with _stack(client, task_queue) as sim:
        sim.state.set_faults(
            FaultConfig.model_validate({"rules": [f"{mesh.mesh_name}=upgrade-rollback-failed"]})
        )
        uid = sim.state.seed_mesh(
            mesh.project_id, mesh.mesh_name, [mesh.cluster_id], version=OLD
        ).uid
        started = await rollouts.start_rollout(
            client,
            spec(rollout_id, [mesh], existing="converge", upgrade={"finalize": "manual"}),
            task_queue=task_queue,
        )
        assert started.started
        waiting = await asyncio.wait_for(
            rollouts.wait_for_report(
                client, rollout_id, interval_s=0.2, stop_when=rollouts.waits_for_a_person
            ),
            60,
        )
        assert waiting.state == RolloutState.AWAITING_FINALIZE
        await rollouts.cancel(client, rollout_id)
        await asyncio.wait_for(rollouts.wait_for_report(client, rollout_id, interval_s=0.2), 60)
        records = await read_records(client, rollout_id)
        assert (await start_rollback(client, records, task_queue=task_queue)).started
        undone = await asyncio.wait_for(
            rollouts.wait_for_report(client, rollout_id, interval_s=0.2, rollback=True), 60
        )
        assert (undone.restored, undone.failed) == (0, 1)
        [failure] = undone.failures
        assert failure.error_code == "UpgradeRollbackFailed"
        assert "rollback" in (failure.message or "") and "RollbackFailed" in (failure.message or "")
        assert sim.state.stats.upgrade_puts(uid, "rollback") == 1
        assert await _mesh(sim, mesh, uid) == (NEW, "RollbackFailed")


async def test_a_step_past_its_timeout_keeps_the_task_for_a_rollback(
    client: Client, task_queue: str
) -> None:
    [mesh] = [t.model_copy(update={"version": NEW}) for t in unique_fleet(1, "upgslow")]
    rollout_id = f"upgrade-slow-{uuid.uuid4().hex[:6]}"
    async with _stack(client, task_queue, step_s=30.0) as sim:
        stats = sim.state.stats
        uid = sim.state.seed_mesh(
            mesh.project_id, mesh.mesh_name, [mesh.cluster_id], version=OLD
        ).uid
        report = await _run(client, task_queue, rollout_id, [mesh], timeout_s=2)
        [failure] = report.failures
        assert failure.error_code == "Timeout"
        assert "pre_check" in (failure.message or "")
        # The task exists, and the rollout knows it: it is listed, and can be rolled back.
        [stands] = report.upgrades
        assert (stands.outcome, stands.step, stands.can_roll_back) == ("failed", None, True)
        assert stats.upgrade_tasks(uid) == 1
        # ASM's rollback of it takes a usual time (within the rollout's short timeout).
        sim.state.config = dataclasses.replace(sim.state.config, upgrade_step_seconds=0.3)
        records = await read_records(client, rollout_id)
        assert (await start_rollback(client, records, task_queue=task_queue)).started
        undone = await asyncio.wait_for(
            rollouts.wait_for_report(client, rollout_id, interval_s=0.2, rollback=True), 60
        )
        assert (undone.restored, undone.failed) == (1, 0), undone
        assert stats.upgrade_puts(uid, "rollback") == 1
        assert await _mesh(sim, mesh, uid) == (OLD, "Running")
