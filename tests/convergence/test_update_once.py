"""One PUT per change: a retried update looks before it sends again, and sends again only when
the first PUT provably never landed. Real dev server, the production worker, the simulator over
loopback HTTP with its update fault rules."""

from __future__ import annotations

import asyncio
import uuid

from temporalio.client import Client

from meshfleet import rollouts
from meshfleet.drift import config_changes, wanted_config
from meshfleet.models import MeshTarget, RolloutState
from meshfleet.rollback import read_records, start_rollback
from meshfleet.simulator.config import FaultConfig, SimulatorConfig
from meshfleet.simulator.testing import serve
from tests.helpers.fleet import SIM_TOKEN, running_worker, spec, target

WANTED = {"telemetryConfig": {"tracing": {"randomSamplingPercentage": 10}}}
OLD = {"telemetryConfig": {"tracing": {"randomSamplingPercentage": 1}}}


async def test_a_lost_answer_is_not_sent_twice_and_a_refused_put_is(
    client: Client, task_queue: str
) -> None:
    tag = uuid.uuid4().hex[:6]

    def drifted(i: int, kind: str) -> MeshTarget:
        return target(i, f"{kind}-{tag}-{i:02d}").model_copy(update={"config": WANTED})

    lost, refused, never, busy = (
        drifted(0, "lost"),
        drifted(1, "five"),
        drifted(2, "never"),
        drifted(3, "busy"),
    )
    config = SimulatorConfig(
        update_seconds=0.2,
        tokens=(SIM_TOKEN,),
        faults=FaultConfig(
            rules=[
                f"lost-{tag}-*=update-lost:1",
                f"five-{tag}-*=update-500:1",
                f"never-{tag}-*=update-failed",
            ]
        ),
    )
    async with serve(config) as sim, running_worker(client, task_queue, sim.url):
        uids = {}
        for t in (lost, refused, never):
            record = sim.state.seed_mesh(t.project_id, t.mesh_name, [t.cluster_id], config=OLD)
            uids[t.mesh_name] = record.uid
        record = sim.state.seed_mesh(
            busy.project_id, busy.mesh_name, [busy.cluster_id], phase="Upgrading", config=OLD
        )
        uids[busy.mesh_name] = record.uid
        rollout_id = f"once-{tag}"
        started = await rollouts.start_rollout(
            client,
            spec(rollout_id, [lost, refused, never, busy], existing="converge", timeout_s=4),
            task_queue=task_queue,
        )
        assert started.started
        report = await asyncio.wait_for(
            rollouts.wait_for_report(client, rollout_id, interval_s=0.2), 60
        )
        stats = sim.state.stats

        def reads_wanted(t: MeshTarget) -> bool:
            found = sim.state.find_mesh(t.project_id, t.mesh_name)
            assert found is not None
            return not config_changes(
                wanted_config(t), found.spec_at(sim.state.now()).get("config")
            )

        assert report.state == RolloutState.COMPLETED
        assert report.updated == 2
        # The answer was lost after the change landed: the retry saw it and sent nothing.
        assert stats.updates(uids[lost.mesh_name]) == 1 and reads_wanted(lost)
        # A 500 that changed nothing (the mesh as judged): sent again, once.
        assert stats.updates(uids[refused.mesh_name]) == 2 and reads_wanted(refused)
        failed = {f.mesh_name: f for f in report.failures}
        assert failed[never.mesh_name].error_code == "Timeout"
        assert "configuration sent" in (failed[never.mesh_name].message or "")
        assert stats.updates(uids[never.mesh_name]) == 1
        # Judged at run time: not Running, so nothing was sent.
        assert failed[busy.mesh_name].error_code == "MeshNotRunning"
        assert stats.updates(uids[busy.mesh_name]) == 0

        # The rollback puts back what landed; the mesh that never took its change is kept, and
        # the one that was sent nothing is left alone.
        records = await read_records(client, rollout_id)
        assert {t.target.mesh_name for t in records.undone()} == {
            lost.mesh_name,
            refused.mesh_name,
            never.mesh_name,
        }
        assert (await start_rollback(client, records, task_queue=task_queue)).started
        undone = await asyncio.wait_for(
            rollouts.wait_for_report(client, rollout_id, interval_s=0.2, rollback=True), 60
        )
        assert (undone.restored, undone.kept, undone.failed) == (2, 1, 0)
        assert "never took" in undone.kept_reasons[0].reason
        assert undone.not_rolled_back == {"failed": 1}
        for t in (lost, refused):
            found = sim.state.find_mesh(t.project_id, t.mesh_name)
            assert found is not None
            assert not config_changes(OLD, found.spec_at(sim.state.now()).get("config"))


async def test_an_in_sync_mesh_counts_only_once_running(client: Client, task_queue: str) -> None:
    tag = uuid.uuid4().hex[:6]
    creating = target(0, f"creating-{tag}").model_copy(update={"config": WANTED})
    broken = target(1, f"broken-{tag}").model_copy(update={"config": WANTED})
    config = SimulatorConfig(create_seconds=0.5, tokens=(SIM_TOKEN,))
    async with serve(config) as sim, running_worker(client, task_queue, sim.url):
        for t, phase in ((creating, "Creating"), (broken, "CreateFailed")):
            sim.state.seed_mesh(
                t.project_id, t.mesh_name, [t.cluster_id], phase=phase, config=WANTED
            )
        rollout_id = f"sync-phase-{tag}"
        await rollouts.start_rollout(
            client, spec(rollout_id, [creating, broken], existing="converge"), task_queue=task_queue
        )
        report = await asyncio.wait_for(
            rollouts.wait_for_report(client, rollout_id, interval_s=0.2), 60
        )
        assert report.in_sync == 1
        assert [(f.mesh_name, f.error_code) for f in report.failures] == [
            (broken.mesh_name, "CreateFailed")
        ]
        assert sim.state.stats.to_json()["puts"] == 0
