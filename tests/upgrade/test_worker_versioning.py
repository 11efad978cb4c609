"""Worker Versioning: a new build takes over mid-rollout, the old one drains and is stopped.

Two ``python worker.py`` processes of this checkout run side by side as builds ``b1`` and ``b2``
of one Worker Deployment, promoted with the real Temporal CLI, as docs/worker-versioning.md tells
an operator to. The rollout (auto-upgrade) moves to ``b2``; the meshes ``b1`` started (pinned)
finish on ``b1``; ``b1`` drains, is stopped, and ``b2`` finishes the rollout with every mesh created
once. Also: what an unversioned worker records of its build, and that the versioning behaviours
the workflows declare neither stop an unversioned worker nor change replay.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import VersioningBehavior
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from meshfleet import __version__, rollouts
from meshfleet.asm.auth import StaticTokenAuth
from meshfleet.asm.client import AsmClient
from meshfleet.contract.payloads import TARGET_PAGE_WORKFLOW, TargetPage, rollout_workflow_id
from meshfleet.dev.binaries import temporal_cli
from meshfleet.models import MeshTarget
from meshfleet.settings import Settings
from meshfleet.simulator.config import SimulatorConfig
from meshfleet.simulator.stats import CREATE
from tests.helpers.audit import assert_all_created_once, audit_rollout
from tests.helpers.cli_run import run_process
from tests.helpers.eventually import eventually, eventually_value
from tests.helpers.fleet import SIM_TOKEN, running_worker, spec, target
from tests.helpers.processes import DevServer, clean_env, worker_env, worker_process
from tests.helpers.progress import wait_for_creations
from tests.helpers.simulator_site import simulator_site
from worker import UNVERSIONED_DEPLOYMENT, build_worker
from workflows.create_mesh import CreateMeshWorkflow
from workflows.delete_mesh import DeleteMeshWorkflow
from workflows.registry import ALL_WORKFLOWS, VERSIONED_WORKFLOWS
from workflows.rollback import MeshRollbackWorkflow
from workflows.rollout import MeshRolloutWorkflow
from workflows.target_page import RolloutTargetPageWorkflow

DEPLOYMENT = "meshfleet-test"
TASK_QUEUE = "meshfleet-versioning"
ROLLOUT = "versioned"
PINNED = VersioningBehavior.PINNED.value
AUTO_UPGRADE = VersioningBehavior.AUTO_UPGRADE.value
# Nothing listens here: the in-process workers below never call the ASM API.
NO_ASM = "http://127.0.0.1:9"


class VersioningDevServer(DevServer):
    """A ``DevServer`` that tells a drained version within seconds.

    A version that stops being current is draining until no pinned workflow of it is open. The
    server checks that every 3 minutes and, as visibility lags history, counts a version as in
    use for 3 minutes after its last routing change; production keeps those defaults.
    """

    def _argv(self) -> list[str]:
        return [
            *super()._argv(),
            "--dynamic-config-value",
            'matching.wv.VersionDrainageStatusRefreshInterval="1s"',
            "--dynamic-config-value",
            'matching.wv.VersionDrainageStatusVisibilityGracePeriod="1s"',
        ]


@asynccontextmanager
async def versioning_server(tmp_path: Path) -> AsyncIterator[tuple[VersioningDevServer, Client]]:
    """A started ``VersioningDevServer`` and its client; killed when the block ends."""
    server = VersioningDevServer(tmp_path / "temporal.db", tmp_path / "temporal.log")
    try:
        yield server, await server.start()
    finally:
        server.kill()


class DeploymentCli:
    """``temporal worker deployment ...``: the real CLI an operator runs, against one server."""

    def __init__(self, address: str, config_dir: Path) -> None:
        self.address = address
        # An empty profile file of its own: a developer's temporal.toml must not add TLS or an
        # API key to a call meant for the test's server.
        config = config_dir / "temporal-cli.toml"
        config.write_text("")
        self.env = clean_env(TEMPORAL_CONFIG_FILE=str(config))

    async def run(self, *args: str, limit_s: float = 30) -> tuple[int, str, str]:
        """Exit status, standard output and standard error of one command."""
        argv = [str(temporal_cli()), "worker", "deployment", *args, "--address", self.address]
        done = await run_process(argv, env=self.env, limit_s=limit_s)
        return done.code, done.out, done.err

    async def must(self, *args: str) -> str:
        """Run a command that has to succeed; its standard output."""
        code, out, err = await self.run(*args)
        assert code == 0, f"temporal worker deployment {' '.join(args)}: exit {code}\n{out}{err}"
        return out

    async def set_current(self, build_id: str, limit_s: float = 30) -> None:
        """Make ``build_id`` current, as soon as the server knows the version.

        A version exists once one of its workers has polled, and the server learns of it a
        moment after the poll the test saw: until then the CLI refuses the version.
        """
        args = ("set-current-version", "--deployment-name", DEPLOYMENT, "--build-id", build_id)
        await eventually_value(
            lambda: self.run(*args, "--yes"),
            lambda done: done[0] == 0,
            limit_s,
            f"{build_id} set current",
            interval=0.2,
        )

    async def describe_version(self, build_id: str) -> dict[str, Any]:
        """``describe-version -o json`` of one build of the deployment."""
        out = await self.must(
            "describe-version",
            "--deployment-name",
            DEPLOYMENT,
            "--build-id",
            build_id,
            "-o",
            "json",
        )
        found: dict[str, Any] = json.loads(out)
        return found

    async def drainage(self, build_id: str) -> str:
        """The version's drainage status: ``draining``, ``drained``, or ``""`` while in use."""
        info = (await self.describe_version(build_id)).get("drainageInfo") or {}
        return str(info.get("drainageStatus", ""))

    async def wait_for_drainage(self, build_id: str, status: str, limit_s: float) -> None:
        """Return once the version's drainage status is ``status``."""
        await eventually_value(
            lambda: self.drainage(build_id),
            lambda seen: seen == status,
            limit_s,
            f"{build_id} {status}",
            interval=0.3,
        )


def task_builds(events: Iterable[HistoryEvent]) -> list[str]:
    """The build of each completed workflow task, in order (versioned workers only)."""
    return [
        e.workflow_task_completed_event_attributes.deployment_version.build_id
        for e in events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    ]


def activity_workers(events: Iterable[HistoryEvent]) -> list[str]:
    """The identity of the worker that took each activity attempt that was recorded."""
    return [
        e.activity_task_started_event_attributes.identity
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]


async def versioning_of(client: Client, workflow_id: str) -> tuple[str, str, int]:
    """The execution's deployment, build and behaviour, as the Temporal UI shows them."""
    desc = await client.get_workflow_handle(workflow_id).describe()
    info = desc.raw_description.workflow_execution_info.versioning_info
    version = info.deployment_version
    return version.deployment_name, version.build_id, info.behavior


async def running(client: Client, targets: Iterable[MeshTarget]) -> list[str]:
    """The mesh names among ``targets`` whose workflow is still running (read from history)."""
    names = []
    for t in targets:
        desc = await client.get_workflow_handle(t.workflow_id).describe()
        if desc.status == WorkflowExecutionStatus.RUNNING:
            names.append(t.mesh_name)
    return names


async def wait_until_closed(client: Client, targets: list[MeshTarget], limit_s: float) -> None:
    """Return once the workflow of every one of ``targets`` has closed."""
    await eventually_value(
        lambda: running(client, targets),
        lambda left: not left,
        limit_s,
        "every target's workflow closed",
        interval=0.2,
    )


async def wait_for_listed(client: Client, query: str, ids: set[str], limit_s: float = 30) -> None:
    """Return once the visibility query lists exactly the workflow ids ``ids``."""

    async def listed() -> set[str]:
        return {w.id async for w in client.list_workflows(query)}

    # Visibility trails history: wait for it to catch up.
    await eventually_value(
        listed, lambda found: found == ids, limit_s, f"{query} lists {sorted(ids)}", interval=0.2
    )


def _started_line(log: str) -> dict[str, Any]:
    for line in log.splitlines():
        if line.startswith("{") and '"worker started"' in line:
            found: dict[str, Any] = json.loads(line)
            return found
    raise AssertionError(f"no 'worker started' line in:\n{log}")


async def test_a_new_build_takes_over_mid_rollout_and_the_old_one_drains(tmp_path: Path) -> None:
    size, window = 30, 10
    fleet = [target(70_000 + i, f"wv-{i:05d}") for i in range(size)]
    # Started by b1: a window created before the promotion, and one held across it.
    created, held = fleet[:window], fleet[window : 2 * window]
    new = fleet[2 * window :]
    async with (
        versioning_server(tmp_path) as (server, client),
        simulator_site(SimulatorConfig(create_seconds=1, tokens=(SIM_TOKEN,))) as sim,
    ):
        cli = DeploymentCli(server.address, tmp_path)

        def env(build_id: str) -> dict[str, str]:
            return worker_env(
                server.address,
                TASK_QUEUE,
                sim.url,
                MESHFLEET_DEPLOYMENT_NAME=DEPLOYMENT,
                MESHFLEET_BUILD_ID=build_id,
                MESHFLEET_GRACEFUL_SHUTDOWN="10",
            )

        async with worker_process(client, env("b1"), tmp_path / "b1.log") as b1:
            await cli.set_current("b1")
            await rollouts.start_rollout(
                client, spec(ROLLOUT, fleet, window=window, timeout_s=120), task_queue=TASK_QUEUE
            )
            # Strike mid-rollout: the first window created, the second one's POSTs held at the
            # API's door, so b1's children are in flight (and the window full) for as long as
            # the promotion takes, whatever the machine's speed.
            await wait_for_creations(sim.state, window, 60)
            sim.hold(CREATE)
            await eventually(lambda: sim.held == window, 60, f"{window} POSTs held")

            async with worker_process(client, env("b2"), tmp_path / "b2.log") as b2:
                ramp = ("--deployment-name", DEPLOYMENT, "--build-id", "b2")
                await cli.must("set-ramping-version", *ramp, "--percentage", "25", "--yes")
                assert (await cli.describe_version("b2"))["rampPercentage"] == 25
                await cli.set_current("b2")
                await cli.wait_for_drainage("b1", "draining", 10)
                assert await running(client, held) == [t.mesh_name for t in held]
                # Start nothing new while b1 is still up, so the last window demonstrably runs
                # with b1 gone: the pause is the rollout's first task on b2.
                await rollouts.pause(client, ROLLOUT)
                sim.release()
                await wait_until_closed(client, held, 60)
                await cli.wait_for_drainage("b1", "drained", 30)
                code, _ = await b1.terminate(30)
                assert code == 0, b1.log()
                await rollouts.resume(client, ROLLOUT)
                report = await asyncio.wait_for(rollouts.wait_for_report(client, ROLLOUT), 120)
                assert b2.proc.poll() is None

        audit = await audit_rollout(client, ROLLOUT, size)
        assert_all_created_once(report, audit, sim.state, fleet)
        await _assert_builds(client, created + held, held, new, (b1.pid, b2.pid))
        await _assert_replays(client, held[0])
        for worker, build_id in ((b1, "b1"), (b2, "b2")):
            started = _started_line(worker.log())
            assert (started["version"], started["deployment_name"], started["build_id"]) == (
                __version__,
                DEPLOYMENT,
                build_id,
            )


async def _assert_builds(
    client: Client,
    old: list[MeshTarget],
    held: list[MeshTarget],
    new: list[MeshTarget],
    pids: tuple[int, int],
) -> None:
    b1_pid, b2_pid = pids
    for t in old:
        # Pinned to the build that started it, to its end: each of its workflow tasks ran there,
        # and so did its poll, also for the meshes whose POST was held across the promotion.
        assert await versioning_of(client, t.workflow_id) == (DEPLOYMENT, "b1", PINNED)
        events = (await client.get_workflow_handle(t.workflow_id).fetch_history()).events
        assert set(task_builds(events)) == {"b1"}, t.mesh_name
        assert all(w.startswith(f"{b1_pid}@") for w in activity_workers(events)), t.mesh_name
    for t in held:
        events = (await client.get_workflow_handle(t.workflow_id).fetch_history()).events
        assert activity_workers(events), f"{t.mesh_name} never polled"
    for t in new:
        assert await versioning_of(client, t.workflow_id) == (DEPLOYMENT, "b2", PINNED)
        events = (await client.get_workflow_handle(t.workflow_id).fetch_history()).events
        assert set(task_builds(events)) == {"b2"}, t.mesh_name
        assert all(w.startswith(f"{b2_pid}@") for w in activity_workers(events)), t.mesh_name
    # The rollout moved: b1 ran its first tasks, b2 every one after the promotion.
    rollout_id = rollout_workflow_id(ROLLOUT)
    assert await versioning_of(client, rollout_id) == (DEPLOYMENT, "b2", AUTO_UPGRADE)
    builds = task_builds((await client.get_workflow_handle(rollout_id).fetch_history()).events)
    first_b2 = builds.index("b2")
    assert set(builds[:first_b2]) == {"b1"}
    assert set(builds[first_b2:]) == {"b2"}
    # The operators' questions (docs/worker-versioning.md), answered by visibility.
    old_ids = {t.workflow_id for t in old}
    new_ids = {t.workflow_id for t in new}
    await wait_for_listed(client, f'TemporalWorkerDeploymentVersion = "{DEPLOYMENT}:b1"', old_ids)
    await wait_for_listed(
        client, f'TemporalWorkerDeploymentVersion = "{DEPLOYMENT}:b2"', {rollout_id} | new_ids
    )
    await wait_for_listed(
        client, f'TemporalUsedWorkerDeploymentVersions = "{DEPLOYMENT}:b1"', {rollout_id} | old_ids
    )


async def _assert_replays(client: Client, child: MeshTarget) -> None:
    # Histories a versioned worker wrote replay on the unversioned classes: a behaviour is not a
    # command.
    replayer = Replayer(workflows=ALL_WORKFLOWS, data_converter=pydantic_data_converter)
    for workflow_id in (rollout_workflow_id(ROLLOUT), child.workflow_id):
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        await replayer.replay_workflow(history)


def test_each_workflow_declares_its_versioning_behaviour() -> None:
    # docs/worker-versioning.md argues these; a new workflow must choose one too, or a versioned
    # worker refuses to start (deployment_config sets no default). The unversioned set declares
    # none: the server refuses a behaviour from a worker without versioning.
    def behaviours(classes: list[type]) -> dict[str | None, VersioningBehavior]:
        return {
            defn.name: defn.versioning_behavior
            for defn in (getattr(w, "__temporal_workflow_definition") for w in classes)
        }

    assert behaviours(VERSIONED_WORKFLOWS) == {
        MeshRolloutWorkflow.__name__: VersioningBehavior.AUTO_UPGRADE,
        CreateMeshWorkflow.__name__: VersioningBehavior.PINNED,
        RolloutTargetPageWorkflow.__name__: VersioningBehavior.PINNED,
        MeshRollbackWorkflow.__name__: VersioningBehavior.AUTO_UPGRADE,
        DeleteMeshWorkflow.__name__: VersioningBehavior.PINNED,
        "ConvergeMeshWorkflow": VersioningBehavior.PINNED,
        "RestoreMeshWorkflow": VersioningBehavior.PINNED,
        "FinalizeUpgradeWorkflow": VersioningBehavior.PINNED,
        "DriftCheckWorkflow": VersioningBehavior.PINNED,
        # A drift schedule's page stays open for months: pinned, it would hold its build.
        "DriftTargetPageWorkflow": VersioningBehavior.AUTO_UPGRADE,
    }
    assert set(behaviours(ALL_WORKFLOWS).values()) == {VersioningBehavior.UNSPECIFIED}


async def test_a_versioned_worker_accepts_every_workflow(client: Client) -> None:
    settings = Settings.model_validate(
        {"MESHFLEET_DEPLOYMENT_NAME": DEPLOYMENT, "MESHFLEET_BUILD_ID": "b1"}
    )
    async with AsmClient(StaticTokenAuth(SIM_TOKEN), endpoint=NO_ASM) as api:
        # Built, not run: the SDK checks each workflow's behaviour when the worker is built.
        build_worker(client, settings, api)


async def test_an_unversioned_worker_records_meshfleets_version(
    client: Client, task_queue: str
) -> None:
    page = TargetPage(rollout_id="unversioned", page=0, targets=[])
    async with running_worker(client, task_queue, NO_ASM):
        # Every workflow task completes on a worker without versioning (no behaviour declared).
        handle = await client.start_workflow(
            TARGET_PAGE_WORKFLOW,
            page,
            id=f"unversioned-{task_queue}",
            task_queue=task_queue,
            result_type=TargetPage,
        )
        assert await asyncio.wait_for(handle.result(), 30) == page
    events = (await handle.fetch_history()).events
    completed = [
        e.workflow_task_completed_event_attributes
        for e in events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    ]
    assert completed
    for attrs in completed:
        # What the UI shows in the event's details: the build, and no versioning.
        assert attrs.worker_version.build_id == __version__
        assert attrs.worker_deployment_name == UNVERSIONED_DEPLOYMENT
        assert attrs.versioning_behavior == VersioningBehavior.UNSPECIFIED.value
        assert not attrs.HasField("deployment_version")
    info = (await handle.describe()).raw_description.workflow_execution_info
    assert info.most_recent_worker_version_stamp.build_id == __version__
    assert not info.HasField("versioning_info")
    await wait_for_listed(
        client,
        f'BuildIds = "unversioned:{__version__}" AND WorkflowId = "{handle.id}"',
        {handle.id},
    )
