"""A rollback survives kill -9 of its worker and a restart of Temporal: each mesh the rollout
created is deleted, none twice, and nothing it adopted is touched.

The production worker runs as a process; Temporal is the dev server on a SQLite file it comes
back to; the simulator counts DELETE requests per mesh uid.
"""

from __future__ import annotations

import asyncio
import signal
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import Client

from meshfleet import rollouts
from meshfleet.models import MeshTarget
from meshfleet.rollback import read_records, start_rollback
from meshfleet.simulator.config import SimulatorConfig
from meshfleet.simulator.stats import DELETE
from tests.helpers.eventually import eventually
from tests.helpers.fleet import SIM_TOKEN, spec, target
from tests.helpers.processes import dev_server, worker_env, worker_process
from tests.helpers.simulator_site import SimulatorSite, simulator_site

SIZE = 40
ADOPTED = 5


def _deletes_started(sim: SimulatorSite) -> int:
    return sum(sim.state.stats.deletes_by_uid.values())


@dataclass(frozen=True)
class RolledOut:
    """The fleet (SIZE created, then ADOPTED adopted) and every mesh's uid after the rollout."""

    fleet: list[MeshTarget]
    uids: dict[str, str]


async def _rolled_out(client: Client, sim: SimulatorSite, rollout_id: str, queue: str) -> RolledOut:
    """Roll out SIZE new meshes and ADOPTED existing ones."""
    fleet = [target(40_000 + i, f"rb-crash-{i:05d}") for i in range(SIZE + ADOPTED)]
    for t in fleet[SIZE:]:
        sim.state.seed_mesh(t.project_id, t.mesh_name, [t.cluster_id])
    await rollouts.start_rollout(client, spec(rollout_id, fleet, window=20), task_queue=queue)
    report = await asyncio.wait_for(rollouts.wait_for_report(client, rollout_id), 120)
    assert (report.created, report.adopted) == (SIZE, ADOPTED), report.failures
    uids: dict[str, str] = {}
    for t in fleet:
        record = sim.state.find_mesh(t.project_id, t.mesh_name)
        assert record is not None
        uids[t.mesh_name] = record.uid
    return RolledOut(fleet, uids)


def _assert_rolled_back(sim: SimulatorSite, state: RolledOut) -> None:
    fleet, uids = state.fleet, state.uids
    deletes = sim.state.stats.deletes_by_uid
    for t in fleet[:SIZE]:
        # Gone, and deleted by one deletion: a DELETE resent after a crash finds the same mesh
        # already Deleting (a no-op for the API) or gone (404, not counted).
        assert sim.state.find_mesh(t.project_id, t.mesh_name) is None, t.mesh_name
        assert 1 <= deletes[uids[t.mesh_name]] <= 2, (t.mesh_name, deletes[uids[t.mesh_name]])
    for t in fleet[SIZE:]:
        record = sim.state.find_mesh(t.project_id, t.mesh_name)
        assert record is not None and record.uid == uids[t.mesh_name], t.mesh_name
        assert deletes[uids[t.mesh_name]] == 0


async def test_a_rollback_survives_kill_9_of_its_worker_and_a_temporal_restart(
    tmp_path: Path,
) -> None:
    rollout_id = "rb-crash"
    queue = "rb-crash"
    config = SimulatorConfig(create_seconds=0.1, delete_seconds=1.0, tokens=(SIM_TOKEN,))
    with dev_server(tmp_path / "temporal.db", tmp_path / "temporal.log") as server:
        client = await server.start()
        async with simulator_site(config) as sim:
            environ = worker_env(server.address, queue, sim.url)
            async with worker_process(client, environ, tmp_path / "first.log") as first:
                state = await _rolled_out(client, sim, rollout_id, queue)
                records = await read_records(client, rollout_id)
                await start_rollback(client, records, task_queue=queue)
                await eventually(lambda: _deletes_started(sim) >= 10, 60, "10 deletions")
                # Strike with DELETEs at the server, unanswered.
                sim.hold(DELETE)
                await eventually(lambda: sim.held >= 2, 30, "2 deletes in flight")
                assert first.kill() == -signal.SIGKILL
            sim.release()
            await eventually(lambda: sim.held == 0, 10, "held deletes done")
            assert _deletes_started(sim) < SIZE

            async with worker_process(client, environ, tmp_path / "second.log"):
                await eventually(lambda: _deletes_started(sim) >= 25, 90, "25 deletions")
                code, _ = await server.stop()
                assert code == 0
                client = await server.start()
                report = await asyncio.wait_for(
                    rollouts.wait_for_report(client, rollout_id, rollback=True), 180
                )
            assert (report.kind, report.state.value) == ("rollback", "completed")
            assert (report.deleted, report.kept, report.failed) == (SIZE, 0, 0), report.failures
            assert report.not_rolled_back == {"adopted": ADOPTED}
            _assert_rolled_back(sim, state)
