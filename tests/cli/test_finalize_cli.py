"""A manual finalize end to end: `start --wait` returns when the upgraded meshes wait to be
finalized (exit 6), `finalize` goes on, `wait` follows the rollout to its end. The real dev
server, the production worker, the simulator."""

from __future__ import annotations

from pathlib import Path

from temporalio.client import Client

from meshfleet.cli.exit_codes import ExitCode
from meshfleet.simulator.config import SimulatorConfig
from meshfleet.simulator.testing import serve
from tests.helpers.cli_rollouts import assert_contract, temporal_env, unique
from tests.helpers.cli_run import manifest_target, meshfleet, write_manifest
from tests.helpers.fleet import SIM_TOKEN, running_worker

P1 = "4444444444444444444444444444444d"


async def test_start_wait_returns_6_until_finalize(
    client: Client, task_queue: str, tmp_path: Path
) -> None:
    fleet = [manifest_target(P1, f"mesh-final-{i}") for i in range(3)]
    path = write_manifest(
        tmp_path / "fleet.yaml",
        fleet,
        waves=[1, "100%"],
        existing="converge",
        upgrade={"finalize": "manual"},
    )
    rollout_id = unique("finalize")
    env = temporal_env(client, task_queue)
    config = SimulatorConfig(upgrade_step_seconds=0.2, tokens=(SIM_TOKEN,))
    async with serve(config) as sim, running_worker(client, task_queue, sim.url):
        uids = [
            sim.state.seed_mesh(P1, t["mesh_name"], [t["cluster_id"]], version="1.15.7-r3").uid
            for t in fleet
        ]
        waiting = await meshfleet(
            "start", str(path), "--rollout-id", rollout_id, "--wait", "--json", env=env
        )
        finishes_at_wait = sum(sim.state.stats.upgrade_puts(uid, "finish") for uid in uids)
        status = await meshfleet("status", rollout_id, env=env)
        finalized = await meshfleet("finalize", rollout_id, "--by", "alice", env=env)
        again = await meshfleet("finalize", rollout_id, "--by", "alice", env=env)
        final = await meshfleet("wait", rollout_id, "--json", env=env)
        finishes = [sim.state.stats.upgrade_puts(uid, "finish") for uid in uids]

    assert waiting.code == ExitCode.AWAITING_FINALIZE, waiting.err
    assert int(ExitCode.AWAITING_FINALIZE) == 6
    document = waiting.json()
    assert_contract(document)
    assert (document["state"], document["upgraded"], document["finalized"]) == (
        "awaiting_finalize",
        3,
        0,
    )
    assert all(u["can_roll_back"] and u["step"] == "data_plane" for u in document["upgrades"])
    assert f"`meshfleet finalize {rollout_id}`" in waiting.err
    assert finishes_at_wait == 0
    assert status.code == ExitCode.AWAITING_FINALIZE
    assert "awaiting_finalize" in status.out

    assert finalized.code == ExitCode.OK, finalized.err
    assert finalized.out.startswith(f"finalize: {rollout_id}: ")
    assert again.code == ExitCode.FAILED
    assert again.err.rstrip().endswith(", not awaiting finalize")

    assert final.code == ExitCode.OK, final.err
    report = final.json()
    assert (report["state"], report["upgraded"], report["finalized"]) == ("completed", 3, 3)
    assert not any(u["can_roll_back"] for u in report["upgrades"])
    assert finishes == [1, 1, 1]
