"""Progressive delivery halting a rollout, end to end: `meshfleet start --wait` against the real
dev server, the production worker (in this process) with the real ``verify_wave``, the simulator
over HTTP and a webhook on a loopback port.

What is checked is what an operator sees and what the ASM API received: the state and reason in
the --json report, and POSTs per mesh (none at all for what a halt held back).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from temporalio.client import Client

from meshfleet.cli.exit_codes import ExitCode
from meshfleet.contract import search_attributes as sa
from meshfleet.contract.payloads import rollout_workflow_id
from meshfleet.simulator.config import FaultConfig, SimulatorConfig
from meshfleet.simulator.testing import RunningSimulator, serve
from meshfleet.webhook import VerifyHook
from meshfleet.webhook_allowlist import parse_allowed_urls
from tests.helpers.cli_rollouts import assert_contract, temporal_env, unique
from tests.helpers.cli_run import manifest_target, meshfleet, write_manifest
from tests.helpers.fleet import SIM_TOKEN, running_worker
from tests.helpers.webhook import serve_hook

P1 = "4444444444444444444444444444444d"
P2 = "5555555555555555555555555555555e"
REGIONS = ("ap-southeast-1", "ap-southeast-3", "cn-north-4")


def posts(sim: RunningSimulator, fleet: list[dict[str, Any]]) -> dict[str, int]:
    """POSTs the simulator received per mesh name."""
    return {t["mesh_name"]: sim.state.stats.posts(t["project_id"], t["mesh_name"]) for t in fleet}


def creations(sim: RunningSimulator, fleet: list[dict[str, Any]]) -> dict[str, int]:
    """Meshes the simulator created per mesh name."""
    return {
        t["mesh_name"]: sim.state.stats.creations(t["project_id"], t["mesh_name"]) for t in fleet
    }


async def test_a_canary_that_leaves_running_during_the_soak_halts_before_wave_2(
    client: Client, task_queue: str, tmp_path: Path
) -> None:
    tag = unique("soak")[-6:]
    canary = manifest_target(P1, f"canary-{tag}")
    rest = [manifest_target(P1, f"rest-{tag}-{i}") for i in range(3)]
    fleet = [canary, *rest]
    path = write_manifest(
        tmp_path / "fleet.yaml",
        fleet,
        waves=[1, "100%"],
        max_failures=0,
        soak="1500ms",
        verify=True,
    )
    rollout_id = unique("soak")
    # Running after its create, then Unknown half a second into the soak.
    faults = FaultConfig(leave=[f"canary-{tag}=Unknown@0.5"])
    config = SimulatorConfig(create_seconds=0.2, tokens=(SIM_TOKEN,), faults=faults)
    async with serve(config) as sim, running_worker(client, task_queue, sim.url):
        run = await meshfleet(
            "start",
            str(path),
            "--rollout-id",
            rollout_id,
            "--wait",
            "--json",
            env=temporal_env(client, task_queue),
        )
        sent = posts(sim, fleet)

    assert run.code == ExitCode.FAILED, run.err
    report = run.json()
    assert_contract(report)
    assert (report["state"], report["created"], report["failed"]) == ("halted", 0, 1)
    (failure,) = report["failures"]
    assert (failure["mesh_name"], failure["error_code"]) == (canary["mesh_name"], "MeshUnknown")
    assert "no longer Running" in failure["message"]
    # Wave 2 never received a POST.
    assert sent == {canary["mesh_name"]: 1} | {t["mesh_name"]: 0 for t in rest}
    assert f"`meshfleet resume {rollout_id}`" in run.err


async def test_a_webhook_that_answers_500_halts_with_its_reason(
    client: Client, task_queue: str, tmp_path: Path
) -> None:
    tag = unique("hook")[-6:]
    fleet = [manifest_target(P1, f"hook-{tag}-{i}") for i in range(3)]
    rollout_id = unique("hook")
    config = SimulatorConfig(create_seconds=0.2, tokens=(SIM_TOKEN,))
    async with serve(config) as sim, serve_hook() as hook:
        # The worker posts only under MESHFLEET_VERIFY_ALLOWED_URLS: this hook is listed.
        allowed = parse_allowed_urls(hook.url)
        hook_client = VerifyHook("verify-token-e2e", allowed=allowed, backoff_s=(0.05, 0.05))
        async with running_worker(client, task_queue, sim.url, hook=hook_client):
            hook.answer((500, "canary smoke test: 7 of 10 requests failed"))
            path = write_manifest(
                tmp_path / "fleet.yaml", fleet, waves=[1, "100%"], verify={"webhook": hook.url}
            )
            run = await meshfleet(
                "start",
                str(path),
                "--rollout-id",
                rollout_id,
                "--wait",
                "--json",
                env=temporal_env(client, task_queue),
            )
            status = await meshfleet("status", rollout_id, env=temporal_env(client, task_queue))
            sent = posts(sim, fleet)

    assert run.code == ExitCode.FAILED, run.err
    report = run.json()
    assert (report["state"], report["created"], report["failed"]) == ("halted", 1, 0)
    assert report["halt_reason"] == (
        "verify webhook answered 500: canary smoke test: 7 of 10 requests failed"
    )
    assert "verify webhook answered 500" in status.out
    # The hook was asked (again, as a 5xx is), with the canary's mesh and the worker's token.
    assert len(hook.received) == 3
    body = hook.received[0].body
    assert [m["mesh_name"] for m in body["meshes"]] == [fleet[0]["mesh_name"]]
    assert hook.received[0].authorization == "Bearer verify-token-e2e"
    assert sent == {fleet[0]["mesh_name"]: 1} | {t["mesh_name"]: 0 for t in fleet[1:]}


async def test_a_region_over_its_own_budget_halts_before_the_next_region_gets_a_post(
    client: Client, task_queue: str, tmp_path: Path
) -> None:
    tag = unique("reg")[-6:]
    fleet: list[dict[str, Any]] = []
    for r, region in enumerate(REGIONS):
        for i in range(3):
            # Region 2's last two targets end CreateFailed: one more than its budget of 1.
            kind = "bad" if r == 1 and i > 0 else "ok"
            target = manifest_target(P2, f"{kind}-{tag}-r{r}-{i}")
            fleet.append(target | {"region": region})
    path = write_manifest(
        tmp_path / "fleet.yaml",
        fleet,
        waves=[1, "100%"],
        max_failures="100%",
        regions={"order": list(REGIONS), "mode": "sequential", "max_failures": 1},
    )
    rollout_id = unique("reg")
    faults = FaultConfig(rules=[f"bad-{tag}-*=create-failed"])
    config = SimulatorConfig(create_seconds=0.2, tokens=(SIM_TOKEN,), faults=faults)
    env = temporal_env(client, task_queue)
    async with serve(config) as sim, running_worker(client, task_queue, sim.url):
        run = await meshfleet(
            "start", str(path), "--rollout-id", rollout_id, "--wait", "--json", env=env
        )
        human = await meshfleet("report", rollout_id, env=env)
        sent = posts(sim, fleet)
        made = creations(sim, fleet)

    assert run.code == ExitCode.FAILED, run.err
    report = run.json()
    assert (report["state"], report["halted_region"]) == ("halted", REGIONS[1])
    assert (report["created"], report["failed"]) == (4, 2)
    # Region 3 did not receive a single POST; regions 1 and 2 one per mesh.
    by_region = {
        region: [t["mesh_name"] for t in fleet if t["region"] == region] for region in REGIONS
    }
    assert all(sent[name] == 0 for name in by_region[REGIONS[2]]), sent
    assert all(made[name] == 1 for name in by_region[REGIONS[0]] + by_region[REGIONS[1]]), made
    assert REGIONS[1] in human.out
    assert f"halted by region {REGIONS[1]}" in human.out


async def test_a_rollout_that_ends_over_its_budget_ends_failed(
    client: Client, task_queue: str, tmp_path: Path
) -> None:
    tag = unique("over")[-6:]
    # All 8 start at once (window 8, one wave): 3 failures over a budget of 1 can hold nothing back.
    fleet = [manifest_target(P1, f"{'bad' if i < 3 else 'ok'}-{tag}-{i}") for i in range(8)]
    path = write_manifest(tmp_path / "fleet.yaml", fleet, window=8, max_failures=1)
    rollout_id = unique("over")
    faults = FaultConfig(rules=[f"bad-{tag}-*=create-failed"])
    config = SimulatorConfig(create_seconds=0.2, tokens=(SIM_TOKEN,), faults=faults)
    env = temporal_env(client, task_queue)
    async with serve(config) as sim, running_worker(client, task_queue, sim.url):
        run = await meshfleet(
            "start", str(path), "--rollout-id", rollout_id, "--wait", "--json", env=env
        )
        made = creations(sim, fleet)

    assert run.code == ExitCode.FAILED, run.err
    report = run.json()
    assert (report["state"], report["created"], report["failed"]) == ("failed", 5, 3)
    assert set(made.values()) == {1}
    # The search attribute the UI filters on says failed too.
    desc = await client.get_workflow_handle(rollout_workflow_id(rollout_id)).describe()
    assert desc.typed_search_attributes.get(sa.ROLLOUT_STATE) == "failed"
