"""A rollout that release 0.1.0 ran is rolled back by this checkout, after a rolling restart.

Release 0.1.0 (installed from this repository's history) starts the rollout with its own
``meshfleet start`` and runs it to its end on its own ``python worker.py``, adopting one mesh that
existed and failing one. Its worker is stopped; this checkout's worker and CLI roll it back: the
records are 0.1.0's histories, read by today's code.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from temporalio.client import Client

from meshfleet import rollouts
from meshfleet.simulator.config import FaultConfig, SimulatorConfig
from tests.helpers.cli_run import cli_env, manifest_target, meshfleet, write_manifest
from tests.helpers.fleet import SIM_TOKEN
from tests.helpers.processes import dev_server, worker_env, worker_process
from tests.helpers.simulator_site import simulator_site
from tests.upgrade.releases import PREVIOUS, install_release
from tests.upgrade.restart import release_cli, release_worker

QUEUE = "rollback-of-release"
PROJECT = "8888888888888888888888888888888b"


async def test_a_rollout_of_the_previous_release_is_rolled_back_by_main(tmp_path: Path) -> None:
    release = await asyncio.to_thread(install_release, PREVIOUS)
    created = [manifest_target(PROJECT, f"old-release-new-{i}") for i in range(4)]
    adopted = manifest_target(PROJECT, "old-release-existing")
    failed = manifest_target(PROJECT, "old-release-bad")
    manifest = write_manifest(
        tmp_path / "fleet.yaml", [*created, adopted, failed], waves=[1, "100%"]
    )
    faults = FaultConfig(rules=["old-release-bad=create-failed"])
    config = SimulatorConfig(
        create_seconds=0.2, delete_seconds=0.2, tokens=(SIM_TOKEN,), faults=faults
    )
    with dev_server(tmp_path / "temporal.db", tmp_path / "temporal.log") as server:
        client: Client = await server.start()
        async with simulator_site(config) as sim:
            existing = sim.state.seed_mesh(PROJECT, adopted["mesh_name"], [adopted["cluster_id"]])
            env = worker_env(server.address, QUEUE, sim.url)
            cli = cli_env(
                TEMPORAL_ADDRESS=server.address,
                TEMPORAL_NAMESPACE="default",
                MESHFLEET_TASK_QUEUE=QUEUE,
            )
            async with release_worker(release, client, env, tmp_path / "release.log") as old:
                started = await release_cli(
                    release, "start", str(manifest), "--rollout-id", "old", "--wait", env=cli
                )
                assert started.code == 1, started.err  # its one failure
                code, _ = await old.terminate(30)
                assert code == 0
            uids = {}
            for t in created:
                record = sim.state.find_mesh(PROJECT, t["mesh_name"])
                assert record is not None
                uids[t["mesh_name"]] = record.uid

            async with worker_process(client, env, tmp_path / "main.log"):
                rolled_back = await meshfleet("rollback", "old", "--wait", "--json", env=cli)
            report = await rollouts.progress(client, "old", rollback=True)

    assert rolled_back.code == 0, rolled_back.err
    document = rolled_back.json()
    assert (document["deleted"], document["kept"], document["failed"]) == (4, 0, 0)
    assert document["not_rolled_back"] == {
        "adopted": 1,
        "failed": 1,
        "cancelled": 0,
        "not_started": 0,
    }
    assert report.kind == "rollback"
    deletes = sim.state.stats.deletes_by_uid
    assert all(deletes[uid] == 1 for uid in uids.values()), dict(deletes)
    assert all(sim.state.find_mesh(PROJECT, t["mesh_name"]) is None for t in created)
    kept = sim.state.find_mesh(PROJECT, adopted["mesh_name"])
    assert kept is not None and kept.uid == existing.uid and deletes[existing.uid] == 0
    assert sim.state.find_mesh(PROJECT, failed["mesh_name"]) is not None
