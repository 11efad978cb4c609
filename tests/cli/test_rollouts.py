"""The CLI against Temporal: the real dev server, a real worker, the simulator over loopback.

Each command runs as its own process, so the exit codes asserted are the ones a pipeline sees
(every such command ends through ``os._exit``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from temporalio.client import Client

from meshfleet import rollouts
from meshfleet.cli.exit_codes import ExitCode
from meshfleet.cli.output import REPORT_KEYS
from meshfleet.contract.payloads import rollout_workflow_id
from meshfleet.simulator.config import FaultConfig, SimulatorConfig
from meshfleet.simulator.testing import serve
from tests.helpers.cli_rollouts import assert_contract, doomed_simulator, temporal_env, unique
from tests.helpers.cli_run import Run, cli_env, manifest_target, meshfleet, write_manifest
from tests.helpers.eventually import eventually_value
from tests.helpers.fleet import SIM_TOKEN, running_worker
from tests.helpers.rollout_watch import progress_reaches, runs

P1 = "1111111111111111111111111111111a"
P2 = "2222222222222222222222222222222b"


async def wait_for_cli_state(
    env: dict[str, str], rollout_id: str, state: str, limit_s: float = 30
) -> Run:
    """Poll ``status --json`` until the rollout reports ``state``."""
    return await eventually_value(
        lambda: meshfleet("status", rollout_id, "--json", env=env),
        lambda run: run.code in (0, 1) and run.json()["state"] == state,
        limit_s,
        f"meshfleet status {rollout_id} says {state}",
        interval=0.3,
    )


async def test_a_manifest_with_mistakes_starts_nothing(
    client: Client, task_queue: str, tmp_path: Path
) -> None:
    good = [manifest_target(P1, f"mesh-ok-{i}") for i in range(3)]
    bad = [
        *good,
        manifest_target(P1, "mesh-bad-"),
        {**manifest_target(P1, "mesh-typo"), "clustr": "x"},
        manifest_target(P1, "mesh-ok-0", cluster="cluster-other-one"),
        manifest_target(P2, "mesh-other", cluster=good[1]["cluster_id"]),
    ]
    path = write_manifest(tmp_path / "bad.yaml", bad, window=0)
    rollout_id = unique("mistakes")

    run = await meshfleet(
        "start",
        str(path),
        "--rollout-id",
        rollout_id,
        "--wait",
        env=temporal_env(client, task_queue),
    )

    assert run.code == ExitCode.INVALID
    problems = run.err.splitlines()
    assert problems[-1] == f"{path}: 5 problems"
    for part in (
        "strategy.window:",
        "targets[3].mesh_name: must not end with '-'",
        "targets[4].clustr: unknown field",
        "targets[5].mesh_name: 'mesh-ok-0' already used by targets[0]",
        "targets[6].cluster_id: 'cluster-mesh-ok-1' already used by targets[1]",
    ):
        assert sum(part in line for line in problems) == 1, part
    assert run.out == ""
    assert await runs(client, rollout_workflow_id(rollout_id)) == 0


async def test_start_wait_json_exit_codes_and_a_second_start_attaches(
    client: Client, task_queue: str, tmp_path: Path
) -> None:
    fleet = [manifest_target(P1, f"mesh-run-{i}") for i in range(4)]
    fleet.append(manifest_target(P2, "doomed-one"))
    path = write_manifest(tmp_path / "fleet.yaml", fleet)
    rollout_id = unique("json")
    env = temporal_env(client, task_queue)
    config = doomed_simulator()
    async with serve(config) as sim, running_worker(client, task_queue, sim.url):
        first = await meshfleet(
            "start", str(path), "--rollout-id", rollout_id, "--wait", "--json", env=env
        )
        again = await meshfleet("start", str(path), "--rollout-id", rollout_id, env=env)
        report = await meshfleet("report", rollout_id, "--json", env=env)
        status = await meshfleet("status", rollout_id, env=env)
        listed = await meshfleet("list", "--json", "--limit", "1000", env=env)
        creations = [sim.state.stats.creations(t["project_id"], t["mesh_name"]) for t in fleet]

    assert first.code == ExitCode.FAILED, first.err
    document = first.json()
    assert_contract(document)
    assert {k: document[k] for k in REPORT_KEYS} == {
        "rollout_id": rollout_id,
        "state": "completed",
        "total": 5,
        "created": 4,
        "adopted": 0,
        "failed": 1,
        "cancelled": 0,
        "pending": 0,
    }
    assert document["failures"] == [
        {
            "project_id": P2,
            "region": "ap-southeast-3",
            "cluster_id": "cluster-doomed-one",
            "mesh_name": "doomed-one",
            "error_code": "CreateFailed",
            "message": "mesh doomed-one ended in phase CreateFailed",
        }
    ]
    assert (
        f"Temporal UI: http://127.0.0.1:8233/namespaces/default/workflows/rollout%2F{rollout_id}"
        in first.err
    )

    assert again.code == ExitCode.OK
    assert "already exists (completed): attached, nothing new started" in again.err
    assert await runs(client, rollout_workflow_id(rollout_id)) == 1
    assert creations == [1] * 5  # nothing was created twice

    assert report.code == ExitCode.FAILED
    assert report.json() == document
    assert status.code == ExitCode.FAILED
    assert status.out.startswith(f"{rollout_id}: completed · wave 1/1 · 5/5 done")
    assert listed.code == ExitCode.OK
    assert {
        "kind": "rollout",
        "rollout_id": rollout_id,
        "state": "completed",
        "execution_status": "Completed",
    }.items() <= next(r for r in listed.json() if r["rollout_id"] == rollout_id).items()


async def test_every_target_running_exits_0_with_plain_progress_lines(
    client: Client, task_queue: str, tmp_path: Path
) -> None:
    fleet = [manifest_target(P1, f"mesh-fine-{i}") for i in range(3)]
    path = write_manifest(tmp_path / "fleet.yaml", fleet)
    env = temporal_env(client, task_queue)
    async with serve(SimulatorConfig(create_seconds=0.3, tokens=(SIM_TOKEN,))) as sim:
        sim.state.seed_mesh(P1, "mesh-fine-2", ["cluster-mesh-fine-2"], phase="Running")
        async with running_worker(client, task_queue, sim.url):
            run = await meshfleet("start", str(path), "--wait", env=env)
    assert run.code == ExitCode.OK, run.err
    # The id derived from the manifest, the report on stdout, progress lines on stderr.
    rollout_id = run.out.split(":", 1)[0]
    assert rollout_id.startswith("fleet-")
    assert run.out.splitlines()[0] == (
        f"{rollout_id}: completed · wave 1/1 · 3/3 done (created 2, adopted 1, failed 0) · "
        "0 in flight · 0 pending"
    )
    assert f"started rollout {rollout_id}: 3 targets" in run.err
    assert any(line.startswith(f"{rollout_id}: running") for line in run.err.splitlines())
    assert "\x1b[" not in run.err  # no bar, no colours outside a terminal


async def test_a_failed_canary_halts_until_resume(
    client: Client, task_queue: str, tmp_path: Path
) -> None:
    canary = manifest_target(P1, "doomed-canary")
    rest = [manifest_target(P2, f"mesh-after-{i}") for i in range(4)]
    path = write_manifest(
        tmp_path / "fleet.yaml", [canary, *rest], waves=[1, "100%"], max_failures=0
    )
    rollout_id = unique("canary")
    env = temporal_env(client, task_queue)
    config = SimulatorConfig(
        create_seconds=0.2,
        tokens=(SIM_TOKEN,),
        faults=FaultConfig(rules=["doomed-*=create-failed"]),
    )
    async with serve(config) as sim, running_worker(client, task_queue, sim.url):
        started = await meshfleet("start", str(path), "--rollout-id", rollout_id, env=env)
        halted = await wait_for_cli_state(env, rollout_id, "halted")
        human = await meshfleet("report", rollout_id, env=env)
        untouched = [sim.state.stats.posts(t["project_id"], t["mesh_name"]) for t in rest]
        resumed = await meshfleet("resume", rollout_id, env=env)
        watched = await meshfleet(
            "start", str(path), "--rollout-id", rollout_id, "--wait", "--json", env=env
        )

    assert started.code == ExitCode.OK
    assert halted.code == ExitCode.FAILED
    assert {k: halted.json()[k] for k in ("state", "failed", "cancelled", "pending")} == {
        "state": "halted",
        "failed": 1,
        "cancelled": 0,
        "pending": 4,
    }
    assert human.code == ExitCode.FAILED
    assert (
        f"halted: 1 failure exceeds the budget of 0; `meshfleet resume {rollout_id}`" in human.out
    )
    assert untouched == [0, 0, 0, 0]  # the next wave never started while halted
    assert resumed.code == ExitCode.OK
    assert resumed.out.startswith(f"resume: {rollout_id}: running")
    assert watched.code == ExitCode.FAILED
    final = watched.json()
    assert_contract(final)
    assert (final["state"], final["created"], final["failed"]) == ("completed", 4, 1)


async def test_pause_and_cancel_leave_the_rest_reported(
    client: Client, task_queue: str, tmp_path: Path
) -> None:
    fleet = [manifest_target(P1, f"mesh-steer-{i}") for i in range(8)]
    path = write_manifest(tmp_path / "fleet.yaml", fleet, window=2)
    rollout_id = unique("steer")
    env = temporal_env(client, task_queue)
    async with serve(SimulatorConfig(create_seconds=1.5, tokens=(SIM_TOKEN,))) as sim:
        async with running_worker(client, task_queue, sim.url):
            await meshfleet("start", str(path), "--rollout-id", rollout_id, env=env)
            paused = await meshfleet("pause", rollout_id, "--json", env=env)
            status = await wait_for_cli_state(env, rollout_id, "paused")
            await progress_reaches(
                rollouts.rollout_handle(client, rollout_id),
                lambda p: p.in_flight == 0,
                "the targets started before the pause finished",
            )
            posts_at_pause = sum(
                sim.state.stats.posts(t["project_id"], t["mesh_name"]) for t in fleet
            )
            cancelled = await meshfleet("cancel", rollout_id, env=env)
            final = await meshfleet(
                "start", str(path), "--rollout-id", rollout_id, "--wait", "--json", env=env
            )
            again = await meshfleet("pause", rollout_id, env=env)
        posts = sum(sim.state.stats.posts(t["project_id"], t["mesh_name"]) for t in fleet)

    assert paused.code == ExitCode.OK
    assert paused.json()["state"] == "paused"
    assert status.code == ExitCode.OK
    assert cancelled.code == ExitCode.OK
    assert cancelled.out.startswith(f"cancel: {rollout_id}: cancell")
    document = final.json()
    assert final.code == ExitCode.FAILED
    assert_contract(document)
    assert document["state"] == "cancelled"
    # Nothing started after the pause (how many had started before depends on how fast the
    # CLI process came up); those finished, the rest count as cancelled, and none as pending.
    assert posts == posts_at_pause < 8
    assert document["created"] == posts
    assert (document["cancelled"], document["pending"]) == (8 - posts, 0)
    assert again.code == ExitCode.INVALID
    assert again.err == f"meshfleet: cannot pause rollout {rollout_id!r}: it was cancelled\n"


async def test_unknown_rollouts_bad_ids_and_an_unreachable_temporal(
    client: Client, task_queue: str, tmp_path: Path
) -> None:
    env = temporal_env(client, task_queue)
    unknown = await meshfleet("status", unique("never"), env=env)
    bad_id = await meshfleet("report", "no/such id", env=env)
    no_worker_id = unique("orphan")
    path = write_manifest(tmp_path / "fleet.yaml", [manifest_target(P1, "mesh-orphan")])
    orphan = await meshfleet("start", str(path), "--rollout-id", no_worker_id, env=env)
    orphan_status = await meshfleet("status", no_worker_id, env=env)
    cleanup = await meshfleet("cancel", no_worker_id, env=env)
    down = cli_env(TEMPORAL_ADDRESS="127.0.0.1:1")
    unreachable = [
        await meshfleet(*argv, env=down)
        for argv in (
            ["status", "x"],
            ["list"],
            ["start", str(path)],
            ["search-attributes", "--register"],
        )
    ]

    assert unknown.code == ExitCode.INVALID
    assert "no rollout" in unknown.err
    assert bad_id.code == ExitCode.INVALID
    assert "is not a rollout id" in bad_id.err
    assert orphan.code == ExitCode.OK
    assert f"no worker is polling task queue {task_queue!r}" in orphan.err
    assert orphan_status.code == ExitCode.UNREACHABLE
    assert "no worker polls its task queue" in orphan_status.err
    assert cleanup.code == ExitCode.UNREACHABLE  # an update needs a worker too
    for run in unreachable:
        assert run.code == ExitCode.UNREACHABLE, run
        assert run.err.startswith("meshfleet: cannot reach Temporal at 127.0.0.1:1: ")
        assert "Traceback" not in run.err
    await client.get_workflow_handle(f"rollout/{no_worker_id}").terminate("test cleanup")


async def test_exit_codes_survive_interpreter_shutdown(client: Client, task_queue: str) -> None:
    # A process that used the Temporal client may abort at exit (docs/operations.md, "Exiting
    # after using the Temporal client").
    env = temporal_env(client, task_queue)
    missing = unique("missing")
    runs = await asyncio.gather(*(meshfleet("status", missing, env=env) for _ in range(12)))
    assert [run.code for run in runs] == [ExitCode.INVALID] * 12
