"""An approval gate end to end: `start --wait` stops at it (exit 4), `approve` opens it, `wait`
follows the rollout to its end. The real dev server, the production worker, the simulator."""

from __future__ import annotations

from pathlib import Path

from temporalio.client import Client

from meshfleet.cli.exit_codes import ExitCode
from meshfleet.simulator.config import SimulatorConfig
from meshfleet.simulator.testing import serve
from tests.helpers.cli_rollouts import assert_contract, temporal_env, unique
from tests.helpers.cli_run import manifest_target, meshfleet, write_manifest
from tests.helpers.fleet import SIM_TOKEN, running_worker

P1 = "3333333333333333333333333333333c"


async def test_a_gate_stops_start_wait_with_exit_4_until_approved(
    client: Client, task_queue: str, tmp_path: Path
) -> None:
    fleet = [manifest_target(P1, f"mesh-gate-{i}") for i in range(3)]
    path = write_manifest(tmp_path / "fleet.yaml", fleet, waves=[1, "100%"], approve_after=[1])
    rollout_id = unique("gate")
    env = temporal_env(client, task_queue)
    config = SimulatorConfig(create_seconds=0.2, tokens=(SIM_TOKEN,))
    async with serve(config) as sim, running_worker(client, task_queue, sim.url):
        gated = await meshfleet(
            "start", str(path), "--rollout-id", rollout_id, "--wait", "--json", env=env
        )
        status = await meshfleet("status", rollout_id, env=env)
        posts_at_gate = sum(sim.state.stats.posts(t["project_id"], t["mesh_name"]) for t in fleet)
        approved = await meshfleet("approve", rollout_id, "--by", "alice", env=env)
        again = await meshfleet("approve", rollout_id, "--by", "alice", env=env)
        final = await meshfleet("wait", rollout_id, "--json", env=env)
        human = await meshfleet("wait", rollout_id, env=env)

    assert gated.code == ExitCode.AWAITING_APPROVAL, gated.err
    at_gate = gated.json()
    assert_contract(at_gate)
    assert (at_gate["state"], at_gate["created"], at_gate["approvals"]) == (
        "awaiting_approval",
        1,
        [],
    )
    assert f"`meshfleet approve {rollout_id}`" in gated.err
    assert posts_at_gate == 1  # only the canary before the gate
    assert status.code == ExitCode.AWAITING_APPROVAL
    assert status.out.startswith(f"{rollout_id}: awaiting_approval · wave 1/2")

    assert approved.code == ExitCode.OK, approved.err
    assert approved.out.startswith(f"approve: {rollout_id}: ")
    assert "approved wave 1 by alice" in approved.out
    # Nothing waits at a gate any more: a second approval is refused, with the reason.
    assert again.code == ExitCode.FAILED
    # (running, or completed already: the fleet is small)
    assert again.err.startswith(f"meshfleet: cannot approve rollout {rollout_id!r}: it ")
    assert again.err.rstrip().endswith(", not awaiting approval")

    assert final.code == ExitCode.OK, final.err
    document = final.json()
    assert_contract(document)
    assert (document["state"], document["created"], document["pending"]) == ("completed", 3, 0)
    [approval] = document["approvals"]
    assert {k: approval[k] for k in ("wave", "region", "by")} == {
        "wave": 1,
        "region": None,
        "by": "alice",
    }
    assert approval["at"]
    assert human.code == ExitCode.OK
    assert "approvals:" in human.out
    assert "  wave 1: by alice at " in human.out


async def test_approve_and_wait_refuse_unknown_and_ended_rollouts(
    client: Client, task_queue: str, tmp_path: Path
) -> None:
    env = temporal_env(client, task_queue)
    unknown_approve = await meshfleet("approve", unique("never"), env=env)
    unknown_wait = await meshfleet("wait", unique("never"), env=env)
    bad_id = await meshfleet("wait", "no such id", env=env)
    path = write_manifest(tmp_path / "fleet.yaml", [manifest_target(P1, "mesh-ended")])
    rollout_id = unique("ended")
    config = SimulatorConfig(create_seconds=0.2, tokens=(SIM_TOKEN,))
    async with serve(config) as sim, running_worker(client, task_queue, sim.url):
        done = await meshfleet("start", str(path), "--rollout-id", rollout_id, "--wait", env=env)
    ended = await meshfleet("approve", rollout_id, env=env)
    waited = await meshfleet("wait", rollout_id, "--json", env=env)

    assert unknown_approve.code == unknown_wait.code == bad_id.code == ExitCode.INVALID
    assert "no rollout" in unknown_approve.err + unknown_wait.err
    assert "is not a rollout id" in bad_id.err
    assert done.code == ExitCode.OK, done.err
    assert ended.code == ExitCode.FAILED
    assert "it has completed, not awaiting approval" in ended.err
    # An ended rollout's report at once, with its exit code: no worker needed.
    assert waited.code == ExitCode.OK
    assert waited.json()["state"] == "completed"
