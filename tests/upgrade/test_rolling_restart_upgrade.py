"""A rolling restart in the middle of a fleet's version upgrade: the rollout finishes on the next
worker with one upgrade task per mesh.

This checkout's CLI starts an upgrade rollout (``existing: converge``, every mesh one line older
than the manifest's version) and this checkout's worker drives it. While some meshes run the new
version, some have a task in flight and some are untouched, SIGTERM stops that worker: it stops
polling, gives its running activities its grace to end (a step still polling then resumes on the
next worker from its heartbeat) and exits 0. A second worker takes over the task queue
and finishes the upgrade and the finalize. ASM names a task's id only in the create's answer, so
a step handed over badly shows as a second task, a 409 (``UpgradeTaskUnknown``) or a mesh left
behind; and a worker that cannot replay a history fails a workflow task.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from meshfleet import rollouts
from meshfleet.cli.exit_codes import ExitCode
from meshfleet.contract.payloads import (
    CONVERGE_MESH_WORKFLOW,
    FINALIZE_UPGRADE_WORKFLOW,
    ROLLOUT_WORKFLOW,
    UPGRADE_STEP,
    rollout_workflow_id,
)
from meshfleet.manifest.load import load_manifest
from meshfleet.models import MeshTarget, RolloutProgress, RolloutState
from meshfleet.simulator.config import SimulatorConfig
from meshfleet.simulator.state import SimulatorState
from tests.helpers.cli_run import cli_env, manifest_target, meshfleet, write_manifest
from tests.helpers.eventually import eventually_value
from tests.helpers.fleet import SIM_TOKEN, project
from tests.helpers.processes import DevServer, WorkerProcess, worker_env, worker_process
from tests.helpers.simulator_site import simulator_site
from tests.upgrade.releases import PREVIOUS, install_release
from tests.upgrade.restart import REJECTED_COMPLETION, release_worker

OLD = "1.15.7-r3"
NEW = "1.18.7-r5"
MESHES = 16
WINDOW = 4
# Each step of a task runs this long: a mesh takes a few seconds, a wave several.
STEP_S = 1.0
# The first worker drains within this on SIGTERM: a step in flight ends within a few seconds.
GRACE_S = 10
LIMIT_S = 120
TASK_QUEUE = "meshfleet-upgrade"


@dataclass(frozen=True)
class Standing:
    """Where the fleet's upgrade stands, as the simulator has it."""

    upgraded: int
    """Meshes whose data plane runs the new version."""
    in_flight: int
    """Meshes with a task that has not reached the data plane yet."""
    untouched: int
    """Meshes without a task."""


def _standing(state: SimulatorState, uids: dict[str, str]) -> Standing:
    now = state.now()
    tasks = {task.mesh_uid: task for task in state.all_upgrades()}
    mine = [tasks.get(uid) for uid in uids.values()]
    upgraded = sum(1 for task in mine if task is not None and task.switched(now))
    untouched = sum(1 for task in mine if task is None)
    return Standing(upgraded, len(mine) - upgraded - untouched, untouched)


@dataclass
class Scan:
    """What the histories of the rollout and of its meshes' workflows say."""

    histories: int = 0
    task_failures: list[str] = field(default_factory=list)
    """WorkflowTaskFailed events of a worker (non-determinism among them), one line each."""
    rejected_completions: int = 0
    """WorkflowTaskFailed events of the server refusing a completion (no worker's fault)."""
    runs: Counter[str] = field(default_factory=Counter)
    """Runs by workflow type."""
    steps_by: dict[str, Counter[str]] = field(default_factory=dict)
    """Per mesh workflow type, the identities of the workers whose ``upgrade_step`` attempts
    ended it, and how many."""


async def _scan(client: Client, rollout_id: str, fleet: list[MeshTarget], runs: int) -> Scan:
    """Read every run of the rollout and of each target's workflow id, once visibility lists
    ``runs`` of them, all closed."""
    queries = [f'WorkflowId = "{rollout_workflow_id(rollout_id)}"']
    queries += [f'WorkflowId = "{t.workflow_id}"' for t in fleet]

    async def listed() -> list[tuple[str, str, str, bool]]:
        return [
            (e.id, e.run_id, e.workflow_type, e.close_time is not None)
            for q in queries
            async for e in client.list_workflows(q)
        ]

    executions = await eventually_value(
        listed,
        lambda found: len(found) == runs and all(closed for *_, closed in found),
        30,
        f"{runs} closed runs listed",
        interval=0.2,
    )
    scan = Scan(histories=len(executions))
    for workflow_id, run_id, kind, _ in executions:
        scan.runs[kind] += 1
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        steps: set[int] = set()
        started: dict[int, str] = {}
        for event in history.events:
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                failed = event.workflow_task_failed_event_attributes
                if failed.cause == REJECTED_COMPLETION:
                    scan.rejected_completions += 1
                    continue
                scan.task_failures.append(
                    f"{workflow_id}: {WorkflowTaskFailedCause.Name(failed.cause)} on "
                    f"{failed.identity or '?'}: {failed.failure.message}"
                )
            elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                scheduled = event.activity_task_scheduled_event_attributes
                if scheduled.activity_type.name == UPGRADE_STEP:
                    steps.add(event.event_id)
            elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                started[event.event_id] = event.activity_task_started_event_attributes.identity
            elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                done = event.activity_task_completed_event_attributes
                if done.scheduled_event_id in steps:
                    by = scan.steps_by.setdefault(kind, Counter())
                    by[started[done.started_event_id]] += 1
    return scan


def _whose(identity: str, workers: dict[str, WorkerProcess]) -> str:
    return next((n for n, w in workers.items() if identity.startswith(f"{w.pid}@")), identity)


def _fleet() -> list[dict[str, Any]]:
    tag = uuid.uuid4().hex[:6]
    return [manifest_target(project(i % 5 + 1), f"rr-upg-{tag}-{i:02d}") for i in range(MESHES)]


async def _until_mid_upgrade(state: SimulatorState, uids: dict[str, str]) -> Standing:
    return await eventually_value(
        lambda: _standing(state, uids),
        lambda s: s.upgraded >= 2 and s.in_flight >= 1 and s.untouched >= 1,
        LIMIT_S,
        "mid-upgrade: some meshes upgraded, some in flight, some untouched",
        interval=0.05,
    )


async def test_a_rolling_restart_mid_upgrade_finishes_with_one_task_per_mesh(
    temporal_env: WorkflowEnvironment, client: Client, task_queue: str, tmp_path: Path
) -> None:
    rollout_id = f"rr-upgrade-{uuid.uuid4().hex[:6]}"
    manifest = write_manifest(
        tmp_path / "fleet.yaml",
        _fleet(),
        existing="converge",
        window=WINDOW,
        waves=[1, "50%", "100%"],
        max_failures=0,
        timeout="1m",
    )
    fleet = load_manifest(str(manifest), rollout_id).targets
    assert {t.version for t in fleet} == {NEW}
    address = temporal_env.client.service_client.config.target_host
    config = SimulatorConfig(upgrade_step_seconds=STEP_S, tokens=(SIM_TOKEN,))
    async with simulator_site(config) as sim:
        state = sim.state
        stats = state.stats
        uids = {
            t.mesh_name: state.seed_mesh(t.project_id, t.mesh_name, [t.cluster_id], version=OLD).uid
            for t in fleet
        }
        env = worker_env(address, task_queue, sim.url, MESHFLEET_GRACEFUL_SHUTDOWN=str(GRACE_S))
        workers: dict[str, WorkerProcess] = {}
        async with worker_process(client, env, tmp_path / "a.log") as a:
            workers["A"] = a
            run = await meshfleet(
                "start",
                str(manifest),
                "--rollout-id",
                rollout_id,
                env=cli_env(
                    TEMPORAL_ADDRESS=address,
                    TEMPORAL_NAMESPACE="default",
                    MESHFLEET_TASK_QUEUE=task_queue,
                ),
            )
            assert run.code == 0, run.err
            assert f"started rollout {rollout_id}: {MESHES} targets" in run.err, run.err
            at_stop = await _until_mid_upgrade(state, uids)
            code, drain_s = await a.terminate(GRACE_S + 20)
            assert code == 0, a.log()[-3000:]
            assert "worker stopped" in a.log()
        after_drain = _standing(state, uids)

        restarted = time.monotonic()
        async with worker_process(client, env, tmp_path / "b.log") as b:
            workers["B"] = b
            report: RolloutProgress = await asyncio.wait_for(
                rollouts.wait_for_report(client, rollout_id, interval_s=0.2), LIMIT_S
            )
        finish_s = time.monotonic() - restarted
        # One rollout run; a converge and then a finalize under each mesh's workflow id.
        scan = await _scan(client, rollout_id, fleet, 1 + 2 * MESHES)
        steps_by = {
            kind: {_whose(i, workers): n for i, n in by.items()}
            for kind, by in scan.steps_by.items()
        }
        print(
            "rolling restart mid-upgrade:",
            {
                "at stop": at_stop,
                "after drain": after_drain,
                "drain s": round(drain_s, 2),
                "finish s after restart": round(finish_s, 1),
                "upgrade steps by worker": steps_by,
                "runs": dict(scan.runs),
                "completions refused": scan.rejected_completions,
            },
        )

        # The stop fell mid-upgrade, and the drain took less than the grace.
        assert at_stop.upgraded >= 2 and at_stop.in_flight >= 1 and at_stop.untouched >= 1
        assert drain_s < GRACE_S
        assert not scan.task_failures, "workflow tasks failed:\n" + "\n".join(scan.task_failures)
        assert report.state == RolloutState.COMPLETED, report.failures
        assert (report.upgraded, report.finalized, report.failed) == (MESHES, MESHES, 0)
        assert (report.total, report.pending, report.in_flight, report.waves) == (MESHES, 0, 0, 3)
        assert sorted(u.mesh_name for u in report.upgrades) == sorted(uids)
        assert all(u.finalized and u.outcome == "finalized" for u in report.upgrades)
        assert scan.runs == Counter(
            {CONVERGE_MESH_WORKFLOW: MESHES, FINALIZE_UPGRADE_WORKFLOW: MESHES, ROLLOUT_WORKFLOW: 1}
        ), scan.runs
        # Both workers drove upgrade steps; every finalize ran after the restart.
        assert set(steps_by[CONVERGE_MESH_WORKFLOW]) == {"A", "B"}, steps_by
        assert set(steps_by[FINALIZE_UPGRADE_WORKFLOW]) == {"B"}, steps_by
        assert sum(steps_by[FINALIZE_UPGRADE_WORKFLOW].values()) == MESHES

        now = state.now()
        tasks = {task.mesh_uid: task for task in state.all_upgrades()}
        for t in fleet:
            uid = uids[t.mesh_name]
            assert stats.upgrade_tasks(uid) == 1, t.mesh_name
            assert stats.upgrade_posts(uid) == 1, t.mesh_name
            assert stats.upgrade_puts(uid, "finish") == 1, t.mesh_name
            assert stats.upgrade_puts(uid, "rollback") == 0, t.mesh_name
            assert tasks[uid].closed(now), t.mesh_name
            found = state.find_mesh(t.project_id, t.mesh_name)
            assert found is not None
            assert (found.spec_at(now).get("version"), str(found.phase(now))) == (NEW, "Running")
        assert {u.task_id for u in report.upgrades} == {tasks[uid].uid for uid in uids.values()}


class ForgetfulDevServer(DevServer):
    """A dev server that forgets a stopped worker's poller within seconds rather than after its
    default five minutes, so that the end of a rolling restart shows at once."""

    def _argv(self) -> list[str]:
        return [*super()._argv(), "--dynamic-config-value", 'matching.PollerHistoryTTL="3s"']


async def test_an_upgrade_rollout_waits_for_the_rolling_restart_from_0_2_0(
    tmp_path: Path,
) -> None:
    release = await asyncio.to_thread(install_release, PREVIOUS)
    assert PREVIOUS == "0.2.0"
    rollout_id = f"rr-after-{uuid.uuid4().hex[:6]}"
    manifest = write_manifest(
        tmp_path / "fleet.yaml", _fleet()[:4], existing="converge", window=WINDOW, timeout="1m"
    )
    fleet = load_manifest(str(manifest), rollout_id).targets
    server = ForgetfulDevServer(tmp_path / "temporal.db", tmp_path / "temporal.log")
    try:
        client = await server.start()
        config = SimulatorConfig(upgrade_step_seconds=0.3, tokens=(SIM_TOKEN,))
        async with simulator_site(config) as sim:
            state = sim.state
            uids = [
                state.seed_mesh(t.project_id, t.mesh_name, [t.cluster_id], version=OLD).uid
                for t in fleet
            ]
            env = worker_env(server.address, TASK_QUEUE, sim.url)
            cli = cli_env(
                TEMPORAL_ADDRESS=server.address,
                TEMPORAL_NAMESPACE="default",
                MESHFLEET_TASK_QUEUE=TASK_QUEUE,
            )
            start = ("start", str(manifest), "--rollout-id", rollout_id)
            # The rolling restart is under way: this checkout's worker has joined 0.2.0's.
            async with (
                release_worker(release, client, env, tmp_path / "release.log") as old,
                worker_process(client, env, tmp_path / "main.log"),
            ):
                refused = await meshfleet(*start, env=cli)
                assert refused.code == ExitCode.INVALID, refused.err
                assert "workers of meshfleet 0.2.0 poll task queue" in refused.err
                assert "nothing was started" in refused.err
                with pytest.raises(RPCError):
                    await client.get_workflow_handle(rollout_workflow_id(rollout_id)).describe()
                assert all(state.stats.upgrade_posts(uid) == 0 for uid in uids)

                code, _ = await old.terminate(GRACE_S + 20)
                assert code == 0, old.log()[-3000:]

                async def started() -> bool:
                    return (await meshfleet(*start, env=cli)).code == 0

                # Once Temporal has forgotten the 0.2.0 worker, the rollout starts.
                await eventually_value(started, bool, 30, "the upgrade rollout started")
                report = await asyncio.wait_for(
                    rollouts.wait_for_report(client, rollout_id, interval_s=0.2), LIMIT_S
                )
            assert report.state == RolloutState.COMPLETED, report.failures
            assert (report.upgraded, report.finalized) == (len(fleet), len(fleet))
            assert all(state.stats.upgrade_tasks(uid) == 1 for uid in uids)
    finally:
        await server.stop()
