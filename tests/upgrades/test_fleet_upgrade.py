"""A fleet's version upgraded through ASM's canary upgrade, in waves: the canary first, a gate,
the rest, then every mesh finalized once the last wave passed its checks; a canary whose data
plane fails halts the rollout; a rollback before finalize returns every mesh to its old version,
after finalize keeps them with the reason.

Real dev server, the production worker, and the simulator over loopback HTTP.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from temporalio.client import Client

from meshfleet import rollouts
from meshfleet.asm.auth import StaticTokenAuth
from meshfleet.asm.client import AsmClient
from meshfleet.models import MeshTarget, RolloutProgress, RolloutState
from meshfleet.rollback import plan_rollback, read_records, start_rollback
from meshfleet.simulator.config import FaultConfig, SimulatorConfig
from meshfleet.simulator.testing import RunningSimulator, serve
from tests.helpers.fleet import SIM_TOKEN, running_worker, spec, unique_fleet

OLD = "1.15.7-r3"
NEW = "1.18.7-r5"
WAVES: list[int | str] = [1, "50%", "100%"]


@asynccontextmanager
async def _stack(
    client: Client, task_queue: str, faults: FaultConfig | None = None
) -> AsyncIterator[RunningSimulator]:
    config = SimulatorConfig(
        create_seconds=0.2,
        delete_seconds=0.2,
        upgrade_step_seconds=0.3,
        tokens=(SIM_TOKEN,),
        faults=faults or FaultConfig(),
    )
    async with serve(config) as sim, running_worker(client, task_queue, sim.url):
        yield sim


def _seed(sim: RunningSimulator, fleet: list[MeshTarget]) -> dict[str, str]:
    """Every mesh at the old version; mesh name -> uid."""
    return {
        t.mesh_name: sim.state.seed_mesh(t.project_id, t.mesh_name, [t.cluster_id], version=OLD).uid
        for t in fleet
    }


async def _versions(
    sim: RunningSimulator, fleet: list[MeshTarget], uids: dict[str, str]
) -> dict[str, tuple[str | None, str | None]]:
    """Each mesh's version and phase, as ASM's show answers them."""
    seen: dict[str, tuple[str | None, str | None]] = {}
    async with AsmClient(StaticTokenAuth(SIM_TOKEN), endpoint=sim.url) as api:
        for t in fleet:
            mesh = await api.mesh(t.project_id, t.region, uids[t.mesh_name])
            seen[t.mesh_name] = (mesh.spec.version if mesh.spec else None, mesh.phase)
    return seen


async def _start(
    client: Client, task_queue: str, rollout_id: str, fleet: list[MeshTarget], **strategy: object
) -> None:
    values: dict[str, object] = {
        "existing": "converge",
        "waves": WAVES,
        "verify": {},
        "approve_after": [1],
        "max_failures": 0,
    }
    values.update(strategy)
    started = await rollouts.start_rollout(
        client, spec(rollout_id, fleet, **values), task_queue=task_queue
    )
    assert started.started


async def _until(
    client: Client, rollout_id: str, seen: list[RolloutProgress] | None = None
) -> RolloutProgress:
    """Progress until the rollout ends or waits for a person."""
    return await asyncio.wait_for(
        rollouts.wait_for_report(
            client,
            rollout_id,
            on_progress=seen.append if seen is not None else None,
            interval_s=0.2,
            stop_when=rollouts.waits_for_a_person,
        ),
        120,
    )


async def test_a_fleet_is_upgraded_canary_first_then_finalized_after_the_last_wave(
    client: Client, task_queue: str
) -> None:
    fleet = [t.model_copy(update={"version": NEW}) for t in unique_fleet(12, "upg")]
    canary = fleet[0]
    rollout_id = f"upgrade-{uuid.uuid4().hex[:6]}"
    async with _stack(client, task_queue) as sim:
        uids = _seed(sim, fleet)
        stats = sim.state.stats
        await _start(client, task_queue, rollout_id, fleet)

        gate = await _until(client, rollout_id)
        assert gate.state == RolloutState.AWAITING_APPROVAL
        assert (gate.upgraded, gate.finalized, gate.wave) == (1, 0, 1)
        versions = await _versions(sim, fleet, uids)
        assert versions[canary.mesh_name] == (NEW, "Running")
        assert all(versions[t.mesh_name] == (OLD, "Running") for t in fleet[1:])
        assert stats.upgrade_tasks(uids[canary.mesh_name]) == 1
        assert all(stats.upgrade_posts(uids[t.mesh_name]) == 0 for t in fleet[1:])
        # Upgraded, not finalized: the old control plane is still there.
        assert stats.upgrade_puts(uids[canary.mesh_name], "finish") == 0
        [stands] = gate.upgrades
        assert (stands.mesh_name, stands.step, stands.finalized) == (
            canary.mesh_name,
            "data_plane",
            False,
        )

        await rollouts.approve(client, rollout_id, "test", gate)
        seen: list[RolloutProgress] = []
        report = await _until(client, rollout_id, seen)
        assert report.state == RolloutState.COMPLETED, report
        assert (report.upgraded, report.finalized, report.failed) == (12, 12, 0)
        # Nothing was finalized before every mesh had been upgraded and verified.
        assert all(p.finalized == 0 for p in seen if p.upgraded < 12)
        assert any(p.state == RolloutState.FINALIZING for p in seen)
        versions = await _versions(sim, fleet, uids)
        assert set(versions.values()) == {(NEW, "Running")}
        for t in fleet:
            uid = uids[t.mesh_name]
            assert stats.upgrade_tasks(uid) == 1, t.mesh_name
            assert stats.upgrade_posts(uid) == 1, t.mesh_name
            assert stats.upgrade_puts(uid, "finish") == 1, t.mesh_name
        assert all(u.finalized and not u.can_roll_back for u in report.upgrades)

        # After finalize ASM cannot go back: the rollback keeps every mesh, saying why.
        records = await read_records(client, rollout_id)
        async with AsmClient(StaticTokenAuth(SIM_TOKEN), endpoint=sim.url) as api:
            foreseen = await plan_rollback(api, records)
        assert {p.action for p in foreseen} == {"keep"}
        assert all("finalized" in p.reason for p in foreseen)
        assert (await start_rollback(client, records, task_queue=task_queue)).started
        undone = await asyncio.wait_for(
            rollouts.wait_for_report(client, rollout_id, interval_s=0.2, rollback=True), 120
        )
        assert (undone.kept, undone.restored, undone.failed) == (12, 0, 0)
        assert all("finalized" in k.reason for k in undone.kept_reasons)
        assert set((await _versions(sim, fleet, uids)).values()) == {(NEW, "Running")}
        assert all(stats.upgrade_puts(uids[t.mesh_name], "rollback") == 0 for t in fleet)


async def test_a_canary_whose_data_plane_fails_halts_the_rollout_before_wave_two(
    client: Client, task_queue: str
) -> None:
    fleet = [t.model_copy(update={"version": NEW}) for t in unique_fleet(12, "upgfail")]
    canary = fleet[0]
    faults = FaultConfig.model_validate({"rules": [f"{canary.mesh_name}=upgrade-dataplane-failed"]})
    rollout_id = f"upgrade-fail-{uuid.uuid4().hex[:6]}"
    async with _stack(client, task_queue, faults) as sim:
        uids = _seed(sim, fleet)
        stats = sim.state.stats
        await _start(client, task_queue, rollout_id, fleet)
        halted = await _until(client, rollout_id)
        assert halted.state == RolloutState.HALTED
        assert (halted.wave, halted.failed, halted.upgraded, halted.pending) == (1, 1, 0, 11)
        [failure] = halted.failures
        assert failure.mesh_name == canary.mesh_name
        assert failure.error_code == "UpgradeStepFailed"
        assert "data_plane failed" in (failure.message or "")
        assert all(stats.upgrade_posts(uids[t.mesh_name]) == 0 for t in fleet[1:])
        [stands] = halted.upgrades
        assert (stands.step, stands.outcome, stands.can_roll_back) == (
            "control_plane",
            "failed",
            True,
        )

        # Cancelled, then rolled back: the canary's task goes back, once.
        await rollouts.cancel(client, rollout_id)
        ended = await asyncio.wait_for(
            rollouts.wait_for_report(client, rollout_id, interval_s=0.2), 60
        )
        assert ended.state == RolloutState.CANCELLED
        records = await read_records(client, rollout_id)
        assert (await start_rollback(client, records, task_queue=task_queue)).started
        undone = await asyncio.wait_for(
            rollouts.wait_for_report(client, rollout_id, interval_s=0.2, rollback=True), 120
        )
        assert (undone.restored, undone.failed) == (1, 0), undone
        assert stats.upgrade_puts(uids[canary.mesh_name], "rollback") == 1
        assert set((await _versions(sim, fleet, uids)).values()) == {(OLD, "Running")}


async def test_a_rollback_before_finalize_returns_every_mesh_to_its_old_version(
    client: Client, task_queue: str
) -> None:
    fleet = [t.model_copy(update={"version": NEW}) for t in unique_fleet(12, "upgback")]
    rollout_id = f"upgrade-back-{uuid.uuid4().hex[:6]}"
    async with _stack(client, task_queue) as sim:
        uids = _seed(sim, fleet)
        stats = sim.state.stats
        await _start(
            client, task_queue, rollout_id, fleet, approve_after=[], upgrade={"finalize": "manual"}
        )
        waiting = await _until(client, rollout_id)
        assert waiting.state == RolloutState.AWAITING_FINALIZE
        assert (waiting.upgraded, waiting.finalized) == (12, 0)
        assert set((await _versions(sim, fleet, uids)).values()) == {(NEW, "Running")}

        await rollouts.cancel(client, rollout_id)
        ended = await asyncio.wait_for(
            rollouts.wait_for_report(client, rollout_id, interval_s=0.2), 60
        )
        assert ended.state == RolloutState.CANCELLED
        assert all(u.can_roll_back and u.outcome == "upgraded" for u in ended.upgrades)
        records = await read_records(client, rollout_id)
        async with AsmClient(StaticTokenAuth(SIM_TOKEN), endpoint=sim.url) as api:
            foreseen = await plan_rollback(api, records)
        assert [p.action for p in foreseen] == ["roll_back"] * 12
        assert (await start_rollback(client, records, task_queue=task_queue)).started
        undone = await asyncio.wait_for(
            rollouts.wait_for_report(client, rollout_id, interval_s=0.2, rollback=True), 120
        )
        assert undone.state == RolloutState.COMPLETED
        assert (undone.restored, undone.kept, undone.failed) == (12, 0, 0)
        assert set((await _versions(sim, fleet, uids)).values()) == {(OLD, "Running")}
        for t in fleet:
            uid = uids[t.mesh_name]
            assert stats.upgrade_tasks(uid) == 1
            assert stats.upgrade_puts(uid, "rollback") == 1
            assert stats.upgrade_puts(uid, "finish") == 0
