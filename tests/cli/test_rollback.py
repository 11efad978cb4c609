"""`meshfleet rollback` end to end: the real dev server, the production worker (in this process),
the simulator over HTTP, and the CLI as a process.

What is checked is what the ASM API received and holds: DELETE requests per mesh uid, and which
meshes still exist afterwards.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from meshfleet.asm.auth import StaticTokenAuth
from meshfleet.asm.client import AsmClient
from meshfleet.cli.exit_codes import ExitCode
from meshfleet.cli.output import FAILURE_KEYS, KEPT_KEYS, NOT_ROLLED_BACK_KEYS, ROLLBACK_KEYS
from meshfleet.contract.deletion import rollback_workflow_id
from meshfleet.simulator.config import FaultConfig, SimulatorConfig
from meshfleet.simulator.testing import RunningSimulator, serve
from tests.helpers.cli_rollouts import temporal_env, unique
from tests.helpers.cli_run import manifest_target, meshfleet, write_manifest
from tests.helpers.eventually import eventually
from tests.helpers.fleet import SIM_TOKEN, running_worker

P1 = "6666666666666666666666666666666f"
P2 = "7777777777777777777777777777777a"


def assert_rollback_contract(document: dict[str, Any]) -> None:
    """The rollback's --json document: its keys, and its counts add up to the total."""
    assert list(document)[: len(ROLLBACK_KEYS)] == list(ROLLBACK_KEYS)
    assert all(list(f) == list(FAILURE_KEYS) for f in document["failures"])
    assert all(list(k) == list(KEPT_KEYS) for k in document["kept_meshes"])
    done = sum(document[key] for key in ("deleted", "restored", "kept", "failed", "cancelled"))
    assert done + document["pending"] == document["total"]
    assert list(document["not_rolled_back"])[: len(NOT_ROLLED_BACK_KEYS)] == list(
        NOT_ROLLED_BACK_KEYS
    )


def uid_of(sim: RunningSimulator, target: dict[str, Any]) -> str | None:
    record = sim.state.find_mesh(target["project_id"], target["mesh_name"])
    return record.uid if record is not None else None


async def test_rollback_deletes_exactly_what_the_rollout_created(
    client: Client, task_queue: str, tmp_path: Path
) -> None:
    tag = unique("rb")[-6:]
    created = [manifest_target(P1 if i % 2 else P2, f"new-{tag}-{i}") for i in range(6)]
    adopted = [manifest_target(P1, f"old-{tag}-{i}") for i in range(5)]
    failed = [manifest_target(P2, f"bad-{tag}-{i}") for i in range(2)]
    fleet = [*created, *adopted, *failed]
    path = write_manifest(tmp_path / "fleet.yaml", fleet, waves=[2, "50%", "100%"])
    rollout_id = unique("rb")
    faults = FaultConfig(rules=[f"bad-{tag}-*=create-failed"])
    config = SimulatorConfig(
        create_seconds=0.2, delete_seconds=0.3, tokens=(SIM_TOKEN,), faults=faults
    )
    async with serve(config) as sim, running_worker(client, task_queue, sim.url):
        env = temporal_env(client, task_queue) | {
            "ASM_ENDPOINT": sim.url,
            "ASM_AUTH_TOKEN": SIM_TOKEN,
        }
        for t in adopted:
            sim.state.seed_mesh(t["project_id"], t["mesh_name"], [t["cluster_id"]])
        before = {t["mesh_name"]: uid_of(sim, t) for t in adopted}
        rolled = await meshfleet("start", str(path), "--rollout-id", rollout_id, "--wait", env=env)
        assert rolled.code == ExitCode.FAILED, rolled.err  # the two failures
        uids = {t["mesh_name"]: uid_of(sim, t) for t in created}
        failed_uids = {t["mesh_name"]: uid_of(sim, t) for t in failed}  # CreateFailed meshes

        # By hand, between rollout and rollback: one created mesh deleted and created again.
        again = created[0]
        async with AsmClient(StaticTokenAuth(SIM_TOKEN), endpoint=sim.url) as api:
            old = uids[again["mesh_name"]]
            assert old is not None
            await api.delete_mesh(again["project_id"], "ap-southeast-3", old)

            async def gone() -> bool:
                return sim.state.get_mesh(again["project_id"], old) is None

            await eventually(gone, 10, "the hand-deleted mesh is gone")
            sim.state.seed_mesh(again["project_id"], again["mesh_name"], [again["cluster_id"]])
        recreated = uid_of(sim, again)
        deletes_before = dict(sim.state.stats.deletes_by_uid)

        planned = await meshfleet("rollback", rollout_id, "--plan", "--json", env=env)
        deletes_after_plan = dict(sim.state.stats.deletes_by_uid)
        done = await meshfleet("rollback", rollout_id, "--wait", "--json", env=env)
        again_run = await meshfleet("rollback", rollout_id, "--wait", "--json", env=env)
        human = await meshfleet("report", rollout_id, "--rollback", env=env)
        deletes = sim.state.stats.deletes_by_uid

    # --plan: what would happen, and nothing changed.
    assert planned.code == ExitCode.OK, planned.err
    plan = planned.json()
    # "keep" means what the rollback's "kept" means: created by the rollout, re-created since;
    # what the rollout never created is left alone, counted as the rollback counts it.
    assert (plan["delete"], plan["gone"], plan["keep"], plan["leave"]) == (5, 0, 1, 7)
    assert plan["not_rolled_back"] == {
        "adopted": len(adopted),
        "failed": len(failed),
        "cancelled": 0,
        "not_started": 0,
    }
    actions = {t["mesh_name"]: (t["action"], t["reason"]) for t in plan["targets"]}
    assert actions[again["mesh_name"]][0] == "keep"
    assert f"uid {recreated}" in actions[again["mesh_name"]][1]
    assert all(actions[t["mesh_name"]][0] == "leave" for t in adopted + failed)
    assert deletes_after_plan == deletes_before

    # The rollback: exactly the 5 meshes the rollout created and still there, each one DELETE.
    assert done.code == ExitCode.OK, done.err
    report = done.json()
    assert_rollback_contract(report)
    assert (report["state"], report["total"], report["deleted"], report["kept"]) == (
        "completed",
        6,
        5,
        1,
    )
    assert report["failed"] == 0
    (kept,) = report["kept_meshes"]
    assert kept["mesh_name"] == again["mesh_name"] and "re-created" in kept["reason"]
    assert report["not_rolled_back"] == {
        "adopted": 5,
        "failed": 2,
        "cancelled": 0,
        "not_started": 0,
    }
    for t in created[1:]:
        uid = uids[t["mesh_name"]]
        assert uid is not None and deletes[uid] == 1, t["mesh_name"]
        assert uid_of(sim, t) is None
    # Left alone: the re-created mesh, the adopted ones, the failed targets' meshes.
    assert uid_of(sim, again) == recreated and deletes[recreated or ""] == 0
    for t in adopted:
        assert uid_of(sim, t) == before[t["mesh_name"]]
        assert deletes[before[t["mesh_name"]] or ""] == 0
    for t in failed:
        assert uid_of(sim, t) == failed_uids[t["mesh_name"]]

    # A second rollback attaches to the first and deletes nothing more.
    assert again_run.code == ExitCode.OK, again_run.err
    assert again_run.json()["deleted"] == 5
    assert "already exists (completed): attached" in again_run.err
    assert sum(deletes.values()) == 5 + sum(deletes_before.values())  # and the hand's one
    assert human.out.startswith(f"rollback of {rollout_id}: completed")
    assert "not rolled back (the rollout did not create them): 5 adopted, 2 failed" in human.out


async def test_a_running_or_unknown_rollout_is_not_rolled_back(
    client: Client, task_queue: str, tmp_path: Path
) -> None:
    env = temporal_env(client, task_queue)
    unknown = await meshfleet("rollback", unique("never"), env=env)
    assert unknown.code == ExitCode.INVALID
    assert "no record of rollout" in unknown.err and "retention" in unknown.err

    tag = unique("gate")[-6:]
    fleet = [manifest_target(P1, f"gated-{tag}-{i}") for i in range(2)]
    path = write_manifest(tmp_path / "fleet.yaml", fleet, waves=[1, "100%"], approve_after=[1])
    rollout_id = unique("gate")
    config = SimulatorConfig(create_seconds=0.2, tokens=(SIM_TOKEN,))
    async with serve(config) as sim, running_worker(client, task_queue, sim.url):
        at_gate = await meshfleet("start", str(path), "--rollout-id", rollout_id, "--wait", env=env)
        refused = await meshfleet("rollback", rollout_id, "--wait", env=env)
        deletes = sum(sim.state.stats.deletes_by_uid.values())
        await meshfleet("cancel", rollout_id, env=env)
    assert at_gate.code == ExitCode.AWAITING_APPROVAL
    assert refused.code == ExitCode.INVALID
    assert f"rollout {rollout_id!r} is still running: cancel it first" in refused.err
    assert deletes == 0
    with pytest.raises(RPCError) as missing:  # no rollback was started
        await client.get_workflow_handle(rollback_workflow_id(rollout_id)).describe()
    assert missing.value.status == RPCStatusCode.NOT_FOUND


async def test_a_rollback_is_steered_like_a_rollout(
    client: Client, task_queue: str, tmp_path: Path
) -> None:
    tag = unique("steer")[-6:]
    fleet = [manifest_target(P1, f"steer-{tag}-{i}") for i in range(4)]
    path = write_manifest(tmp_path / "fleet.yaml", fleet, window=1)
    rollout_id = unique("steer")
    # Deletions take long enough to pause between them.
    config = SimulatorConfig(create_seconds=0.1, delete_seconds=1.0, tokens=(SIM_TOKEN,))
    env = temporal_env(client, task_queue)
    async with serve(config) as sim, running_worker(client, task_queue, sim.url):
        rolled = await meshfleet("start", str(path), "--rollout-id", rollout_id, "--wait", env=env)
        assert rolled.code == ExitCode.OK, rolled.err
        started = await meshfleet("rollback", rollout_id, "--json", env=env)
        paused = await meshfleet("pause", rollout_id, "--rollback", "--json", env=env)
        status = await meshfleet("status", rollout_id, "--rollback", env=env)
        handle = client.get_workflow_handle(rollback_workflow_id(rollout_id))
        meta = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
        cancelled = await meshfleet("cancel", rollout_id, "--rollback", env=env)
        waited = await meshfleet("wait", rollout_id, "--rollback", "--json", env=env)
        left = [t for t in fleet if uid_of(sim, t) is not None]
        uids = {t["mesh_name"]: uid_of(sim, t) for t in left}
        # A cancelled rollback stopped short: run again, it deletes what is still there.
        rerun = await meshfleet("rollback", rollout_id, "--wait", "--json", env=env)
        still = [t for t in fleet if uid_of(sim, t) is not None]
        deletes = dict(sim.state.stats.deletes_by_uid)

    assert started.code == ExitCode.OK, started.err
    assert started.json()["kind"] == "rollback"
    assert paused.code == ExitCode.OK, paused.err
    assert paused.json()["state"] == "paused"
    assert status.out.startswith(f"rollback of {rollout_id}: paused")
    assert "deleted" in meta.current_details and "kept" in meta.current_details
    assert cancelled.code == ExitCode.OK, cancelled.err
    report = waited.json()
    assert_rollback_contract(report)
    assert waited.code == ExitCode.FAILED  # cancelled
    assert report["state"] == "cancelled"
    # Window 1, paused at once: the first deletion finished, the others were never started.
    assert report["deleted"] == 4 - len(left) >= 1
    assert len(left) >= 1

    assert rerun.code == ExitCode.OK, rerun.err
    assert f"started the rollback of rollout {rollout_id}" in rerun.err
    assert rerun.json()["state"] == "completed"
    assert still == []
    assert all(deletes[uid] == 1 for uid in uids.values() if uid), deletes
    runs = [
        w async for w in client.list_workflows(f'WorkflowId = "{rollback_workflow_id(rollout_id)}"')
    ]
    assert sorted(str(w.status.name) for w in runs if w.status) == ["CANCELED", "COMPLETED"]
