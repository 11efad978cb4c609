"""Record a release's workflow histories for the replay gate (``tests/upgrade/test_replay.py``).

    python -m tests.upgrade.record_histories --release 0.1.0 [--out DIR] [--keep-work-dir]

Everything runs on 127.0.0.1: a Temporal dev server of its own (SQLite, meshfleet's search
attributes registered), the ASM simulator in this process, and the release's own worker: its
``python worker.py`` in its own virtualenv (``releases.install_release``). Only that worker ever
runs workflow code, so the histories are the release's whatever the working tree holds today.
Rollouts are started and steered with the release's own ``meshfleet`` CLI; the two scenarios that
need ``page_size`` or ``max_starts_per_run``, which the CLI does not offer, call the release's own
``meshfleet.rollouts.start_rollout`` with its own Python.

Each run of each workflow is written exactly as ``temporal workflow show --output json`` prints
it, as ``<scenario>--<description>.json``, and ``index.json`` names each file's scenario, workflow
type, workflow id, run id and the path it covers. docs/histories.md tells the whole story.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowHistory,
    WorkflowQueryFailedError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from meshfleet.asm.models import CreateMeshRequest
from meshfleet.dev.binaries import temporal_cli
from meshfleet.simulator.config import FaultConfig, SimulatorConfig
from meshfleet.simulator.state import MeshRecord, SimulatorState
from tests.helpers.cli_run import FAST_STRATEGY as CLI_FAST_STRATEGY
from tests.helpers.fleet import SIM_TOKEN
from tests.helpers.paths import REPO
from tests.helpers.processes import (
    DevServer,
    WorkerProcess,
    clean_env,
    wait_for_poller,
    worker_env,
)
from tests.helpers.simulator_site import SimulatorSite
from tests.helpers.webhook import Hook, serve_hook
from tests.upgrade.releases import (
    IN_DEVELOPMENT,
    RELEASES,
    ReleaseInstall,
    install_release,
    plays_development,
    release_env,
    working_tree,
)

T = TypeVar("T")

TASK_QUEUE = "meshfleet-histories"
REGION = "ap-southeast-3"
PROJECT = "0123456789abcdef0123456789abcdef"
OTHER_PROJECT = "fedcba9876543210fedcba9876543210"

# What each scenario covers; index.json carries this table, docs/histories.md explains it.
SCENARIOS: dict[str, str] = {
    "created": "a mesh created by its first POST (201 Creating), polled until Running",
    "adopted": "a POST answered 409 by a mesh of that name on the target's cluster: adopted, "
    "either Running at once (no poll) or still Creating (polled from the start)",
    "created-after-hidden-500": "the server created the mesh yet answered 500; the retried "
    "POST gets 409 and finds a mesh made after the target started: counted created",
    "cluster-conflict": "409 and no mesh of that name: the cluster belongs to another mesh; "
    "failed at once, not retried",
    "name-conflict": "409 for a mesh of that name on other clusters; failed at once",
    "create-failed": "the mesh ends in phase CreateFailed: failed with that phase",
    "timeout": "the mesh is still Creating at the target's deadline: failed with Timeout",
    "retry-429": "two 429s with Retry-After, then 201: the POST's local activity retried",
    "retry-5xx": "two 500s before anything was created, then 201",
    "outcomes": "the rollout that drove the targets of the scenarios above at once: every kind "
    "of outcome a child returns, failures within the budget",
    "lost-task": "the worker SIGKILLed while its POST was in flight (the server created the "
    "mesh, nobody heard the 201): the workflow task times out, a new worker runs the POST again, "
    "its 409 finds the mesh the lost POST made: counted created",
    "waves": "three waves (a canary, 50 %, the rest), each started after the one before ended",
    "halt-resume": "a failed canary spends a failure budget of 0: halted before the next wave, "
    "then resumed with a fresh budget and finished",
    "pause-resume": "paused with targets pending (the one in flight finishes, nothing new "
    "starts), then resumed and finished",
    "cancel-update": "cancelled by the cancel update: in-flight targets finish, the rest count "
    "as cancelled",
    "cancel-temporal": "cancelled by a Temporal cancel request (handle.cancel()): the same "
    "ending as the cancel update",
    "continue-as-new": "two starts per run: every run continues as new with its targets still "
    "in flight, the next run awaits them (await_target); one carried target is terminated and "
    "reported failed by the next run",
    "target-pages": "targets stored as pages (RolloutTargetPageWorkflow) and loaded by "
    "load_target_page, again after continue-as-new",
    "mesh-busy": "a second rollout of a mesh another rollout is driving: the child's workflow "
    "id stays taken through every start attempt, the target fails MeshBusy",
}

# Timings shrunk from Terraform's minutes to fractions of a second (manifest form).
FAST_STRATEGY: dict[str, Any] = CLI_FAST_STRATEGY | {"window": 10}

CREATE_SECONDS = 0.5
# Meshes whose names start with these stay Creating this long; "stuck-" until settled by hand.
SETTLE_SECONDS = {"slow-": 3.0, "stuck-": math.inf}
FAULT_RULES = [
    "hidden-500-*=500-after:1",
    "retry-429-*=429:2",
    "retry-5xx-*=500-before:2",
    "create-failed-*=create-failed",
    "halt-canary-*=create-failed",
    "region-bad-*=create-failed",
    "rollback-stubborn-*=delete-failed:1",
    "upgrade-dp-failed-*=upgrade-dataplane-failed",
    "upgrade-held-*=upgrade-slow",
]
DELETE_SECONDS = 0.3
# Canaries that break after they were created: Unknown a moment into their soak.
LEAVE_RULES = ["soak-broken-*=Unknown@0.3"]
VERIFY_TOKEN = "recorder-verify-token-5e8a"  # the test's own: checked absent from histories

CLOSED = {
    "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED",
    "EVENT_TYPE_WORKFLOW_EXECUTION_FAILED",
    "EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT",
    "EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED",
    "EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED",
    "EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW",
}


class RecordingError(Exception):
    """A scenario did not take the path it exists for; nothing is written."""


def check(ok: bool, message: str) -> None:
    """Raise ``RecordingError(message)`` unless ``ok``."""
    if not ok:
        raise RecordingError(message)


@dataclass(frozen=True)
class Target:
    """One manifest target, its cluster named after the mesh unless given."""

    name: str
    cluster: str | None = None
    project_id: str = PROJECT
    region: str = REGION
    sampling: int | None = None
    """The tracing sampling percentage its manifest entry configures (None: no config)."""

    @property
    def config(self) -> dict[str, Any] | None:
        """The target's configuration, as the manifest (and the wire) spell it."""
        if self.sampling is None:
            return None
        return {"telemetryConfig": {"tracing": {"randomSamplingPercentage": self.sampling}}}

    @property
    def cluster_id(self) -> str:
        """The CCE cluster the mesh is for."""
        return self.cluster or f"cluster-{self.name}"

    @property
    def workflow_id(self) -> str:
        """The id of the target's ``CreateMeshWorkflow``."""
        return f"mesh/{self.region}/{self.project_id}/{self.name}"

    def manifest(self) -> dict[str, Any]:
        """The target's entry in a manifest."""
        entry: dict[str, Any] = {
            "project_id": self.project_id,
            "cluster_id": self.cluster_id,
            "mesh_name": self.name,
            "node_ids": [f"node-{self.name}"],
        }
        if self.region != REGION:
            entry["region"] = self.region  # releases before regions read the same manifest
        if self.config is not None:
            entry["config"] = self.config
        return entry


async def _ended(
    handle: WorkflowHandle[Any, Any], query: str | None = "progress"
) -> dict[str, Any]:
    """What a closed workflow reported, as plain JSON, whichever way it ended.

    Completed: its result. Failed with a report attached (a failed mesh's outcome, a failed
    rollout's report): that first detail. Otherwise the ``query`` it still answers.
    """
    try:
        result: dict[str, Any] = await handle.result()
        return result
    except WorkflowFailureError as err:
        cause = err.cause
        if isinstance(cause, ApplicationError) and cause.details:
            first = cause.details[0]
            if isinstance(first, dict):
                return first
        if query is None:
            raise
    answer: dict[str, Any] = await handle.query(query)
    return answer


def rollout_id_of(rollout: str) -> str:
    """The workflow id of a rollout."""
    return f"rollout/{rollout}"


@dataclass(frozen=True)
class Wanted:
    """A workflow to record: every run of it, under a scenario, with what it covers."""

    workflow_id: str
    scenario: str
    slug: str
    covers: str


class ShapedState(SimulatorState):
    """The simulator's state, with meshes that stay ``Creating`` for as long as a scenario needs.

    ``FaultConfig`` shapes what a POST answers; how long a mesh stays ``Creating`` is one setting
    for every mesh, so slow and stuck meshes are told apart by name here instead.
    """

    def create_mesh(
        self, project_id: str, request: CreateMeshRequest, *, fails: bool = False
    ) -> MeshRecord:
        """Create as the simulator does, then hold ``slow-``/``stuck-`` meshes in Creating."""
        record = super().create_mesh(project_id, request, fails=fails)
        for prefix, seconds in SETTLE_SECONDS.items():
            if record.name.startswith(prefix):
                record.settles_at = record.created_mono + seconds
        return record

    def mesh_of(self, target: Target) -> MeshRecord:
        """The target's mesh, which must exist."""
        record = self.find_mesh(target.project_id, target.name)
        check(record is not None, f"no mesh {target.name} in the simulator")
        assert record is not None
        return record

    def hold_creating(self, target: Target) -> None:
        """Keep the target's mesh ``Creating`` until ``settle``."""
        self.mesh_of(target).settles_at = math.inf

    def settle(self, target: Target) -> None:
        """Let the target's mesh reach its final phase now."""
        self.mesh_of(target).settles_at = self.now()


async def eventually(
    probe: Callable[[], Awaitable[T | None]], limit_s: float, what: str, every_s: float = 0.1
) -> T:
    """The first value ``probe`` returns that is not None; ``RecordingError`` after ``limit_s``."""
    deadline = time.monotonic() + limit_s
    while True:
        value = await probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise RecordingError(f"not within {limit_s:g} s: {what}")
        await asyncio.sleep(every_s)


# A clean environment for a release process, its module path its own.
def _release_env(**extra: str) -> dict[str, str]:
    return release_env(clean_env(**extra))


def _spawn_worker(release: ReleaseInstall, env: dict[str, str], log_path: Path) -> WorkerProcess:
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            release.worker_argv(),
            cwd=release.source,
            env=release_env(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return WorkerProcess(proc, log_path)


# Replays a recorded set with the release's own workflow code (run by the release's Python).
_REPLAYER = """
import asyncio, json, os, sys
from pathlib import Path
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer
from workflows.registry import ALL_WORKFLOWS

async def main(folder):
    entries = json.loads((Path(folder) / "index.json").read_text())["files"]
    async def histories():
        for e in entries:
            text = (Path(folder) / e["file"]).read_text()
            yield WorkflowHistory.from_json(e["workflow_id"], text)
    replayer = Replayer(workflows=ALL_WORKFLOWS, data_converter=pydantic_data_converter)
    results = await replayer.replay_workflows(histories(), raise_on_replay_failure=False)
    for run_id, err in results.replay_failures.items():
        print(f"run {run_id}: {type(err).__name__}: {err}", file=sys.stderr)
    return 1 if results.replay_failures else 0

code = asyncio.run(main(sys.argv[1]))
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)
"""


# Starts a rollout with the release's own starter, for the options its CLI does not offer.
_STARTER = """
import asyncio, os, sys
from meshfleet import rollouts
from meshfleet.settings import Settings
from meshfleet.temporal import connect
try:
    from meshfleet.manifest.load import load_manifest
except ImportError:  # releases before the manifest became a package
    from meshfleet.manifest import load_manifest

async def main(path, rollout_id, page_size, max_starts):
    spec = load_manifest(path, rollout_id)
    client = await connect()
    options = {"max_starts_per_run": int(max_starts) or None}
    if int(page_size):
        options["page_size"] = int(page_size)
    started = await rollouts.start_rollout(
        client, spec, task_queue=Settings().task_queue, **options
    )
    return 0 if started.started else 1

code = asyncio.run(main(*sys.argv[1:]))
# The release's own interpreter runs this: it may predate meshfleet.process_exit.
sys.stdout.flush()
os._exit(code)
"""


# Starts a rollback with the options its CLI does not offer (only the version in development).
_ROLLBACK_STARTER = """
import asyncio, os, sys
from meshfleet.rollback import read_records, start_rollback
from meshfleet.settings import Settings
from meshfleet.temporal import connect

async def main(rollout_id, page_size, max_starts):
    client = await connect()
    records = await read_records(client, rollout_id)
    started = await start_rollback(
        client, records, task_queue=Settings().task_queue,
        page_size=int(page_size), max_starts_per_run=int(max_starts),
    )
    return 0 if started.started else 1

code = asyncio.run(main(*sys.argv[1:]))
sys.stdout.flush()
os._exit(code)
"""


@dataclass
class Stack:
    """The dev server, the simulator and the release's worker of one recording."""

    release: ReleaseInstall
    server: DevServer
    client: Client
    site: SimulatorSite
    state: ShapedState
    work_dir: Path
    hooks: dict[str, Hook] = field(default_factory=dict)
    """Verify webhooks by what they answer: ``pass`` (200) and ``refuse`` (500)."""
    workers: list[WorkerProcess] = field(default_factory=list)

    # --- processes of the release ---------------------------------------------------------

    async def start_worker(self, name: str) -> WorkerProcess:
        """The release's ``python worker.py``, once it polls the task queue."""
        env = worker_env(self.server.address, TASK_QUEUE, self.site.url)
        env["MESHFLEET_VERIFY_TOKEN"] = VERIFY_TOKEN  # releases before verify ignore it
        # A worker posts only to webhooks under this setting (releases before it post to any).
        env["MESHFLEET_VERIFY_ALLOWED_URLS"] = ",".join(hook.url for hook in self.hooks.values())
        worker = _spawn_worker(self.release, env, self.work_dir / f"{name}.log")
        self.workers.append(worker)
        await wait_for_poller(self.client, TASK_QUEUE, worker, 120)
        return worker

    async def _release_python(self, *args: str, limit_s: float = 120) -> str:
        env = _release_env(
            TEMPORAL_ADDRESS=self.server.address,
            TEMPORAL_NAMESPACE="default",
            MESHFLEET_TASK_QUEUE=TASK_QUEUE,
            TERM="dumb",
        )
        proc = await asyncio.create_subprocess_exec(
            str(self.release.python),
            *args,
            cwd=self.release.source,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), limit_s)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        if proc.returncode != 0:
            shown = " ".join("<script>" if "\n" in a else a for a in args[:4])
            raise RecordingError(
                f"release {self.release.version}: python {shown} exited "
                f"{proc.returncode}: {err.decode(errors='replace').strip()}"
            )
        return out.decode(errors="replace")

    def _manifest(self, rollout: str, targets: list[Target], strategy: Mapping[str, Any]) -> Path:
        path = self.work_dir / f"{rollout}.json"
        doc = {
            "strategy": FAST_STRATEGY | dict(strategy),
            "defaults": {"region": REGION, "version": "1.18.7-r5"},
            "targets": [t.manifest() for t in targets],
        }
        path.write_text(json.dumps(doc, indent=2))
        return path

    async def start(
        self,
        rollout: str,
        targets: list[Target],
        *,
        page_size: int | None = None,
        max_starts_per_run: int | None = None,
        **strategy: Any,
    ) -> None:
        """Start a rollout as an operator of the release would: its own ``meshfleet start``."""
        manifest = str(self._manifest(rollout, targets, strategy))
        if page_size is None and max_starts_per_run is None:
            await self._release_python(
                "-m", "meshfleet", "start", manifest, "--rollout-id", rollout
            )
        else:
            await self._release_python(
                "-c",
                _STARTER,
                manifest,
                rollout,
                str(page_size or 0),  # 0: the release's own default
                str(max_starts_per_run or 0),
            )

    async def replay_with_release(self, folder: Path) -> None:
        """Replay the recorded set with the release's own workflows: it must hold its own."""
        await self._release_python("-c", _REPLAYER, str(folder))

    async def steer(self, action: str, rollout: str) -> dict[str, Any]:
        """``meshfleet pause|resume|cancel ROLLOUT --json`` of the release: its report document."""
        out = await self._release_python("-m", "meshfleet", action, rollout, "--json")
        document: dict[str, Any] = json.loads(out)
        return document

    async def rollback(self, rollout: str, *args: str) -> None:
        """The release's ``meshfleet rollback ROLLOUT``, or its ``_ROLLBACK_STARTER`` with
        ``page_size`` and ``max_starts_per_run`` given as ``args``."""
        if args:
            await self._release_python("-c", _ROLLBACK_STARTER, rollout, *args)
        else:
            await self._release_python("-m", "meshfleet", "rollback", rollout)

    async def rollback_report(self, rollout: str, limit_s: float = 120) -> dict[str, Any]:
        """The rollback's report once it ended."""
        handle = self.client.get_workflow_handle(f"rollback/{rollout}")
        return await asyncio.wait_for(_ended(handle), limit_s)

    async def until_rollback(self, rollout: str, state: str, limit_s: float = 120) -> None:
        """Until the rollback's progress says ``state``."""

        async def probe() -> bool | None:
            handle = self.client.get_workflow_handle(f"rollback/{rollout}")
            try:
                current: dict[str, Any] = await handle.query("progress")
            except (RPCError, WorkflowQueryFailedError):
                return None
            return True if current["state"] == state else None

        await eventually(probe, limit_s, f"rollback of {rollout}: {state}")

    async def steer_rollback(self, action: str, rollout: str) -> None:
        """``meshfleet pause|resume|cancel ROLLOUT --rollback`` of the release."""
        await self._release_python("-m", "meshfleet", action, rollout, "--rollback", "--json")

    async def approve(self, rollout: str, by: str) -> dict[str, Any]:
        """``meshfleet approve ROLLOUT --by BY --json`` of the release: its report document."""
        out = await self._release_python(
            "-m", "meshfleet", "approve", rollout, "--by", by, "--json"
        )
        document: dict[str, Any] = json.loads(out)
        return document

    # --- looking on ---------------------------------------------------------------------------

    async def progress(self, rollout: str) -> dict[str, Any]:
        """The rollout's ``progress`` query, as plain JSON."""
        handle = self.client.get_workflow_handle(rollout_id_of(rollout))
        result: dict[str, Any] = await handle.query("progress")
        return result

    async def until(
        self, rollout: str, ok: Callable[[dict[str, Any]], bool], what: str, limit_s: float = 120
    ) -> dict[str, Any]:
        """The rollout's progress once ``ok`` holds for it."""

        async def probe() -> dict[str, Any] | None:
            try:
                current = await self.progress(rollout)
            except (RPCError, WorkflowQueryFailedError):
                return None  # its first workflow task has not run yet
            return current if ok(current) else None

        return await eventually(probe, limit_s, f"rollout {rollout}: {what}")

    async def report(self, rollout: str, limit_s: float = 180) -> dict[str, Any]:
        """The rollout's report, following every continue-as-new to the last run."""
        handle = self.client.get_workflow_handle(rollout_id_of(rollout))
        return await asyncio.wait_for(_ended(handle), limit_s)

    async def outcome(self, target: Target) -> dict[str, Any]:
        """The target's ``TargetOutcome``, as plain JSON."""
        return await _ended(self.client.get_workflow_handle(target.workflow_id), query=None)

    async def status(self, workflow_id: str) -> WorkflowExecutionStatus | None:
        """The status of a workflow's latest run."""
        return (await self.client.get_workflow_handle(workflow_id).describe()).status

    def exists(self, target: Target) -> bool:
        """Whether the target's mesh exists in the simulator."""
        return self.state.find_mesh(target.project_id, target.name) is not None

    def posts(self, target: Target) -> int:
        """POSTs the simulator received for the target."""
        return self.state.stats.posts(target.project_id, target.name)


def expect_report(
    rollout: str, report: Mapping[str, Any], state: str = "completed", **counts: int
) -> None:
    """The rollout ended in ``state`` with exactly these counts."""
    check(report["state"] == state, f"rollout {rollout} ended {report['state']}, not {state}")
    for key, wanted in counts.items():
        check(report[key] == wanted, f"rollout {rollout}: {key} {report[key]}, not {wanted}")


def expect_outcome(target: Target, got: Mapping[str, Any], /, **fields: Any) -> None:
    """The target's outcome ``got`` has these field values."""
    for key, wanted in fields.items():
        check(got[key] == wanted, f"{target.name}: {key} is {got[key]!r}, not {wanted!r} ({got})")


def rollout_wanted(rollout: str, scenario: str, covers: str) -> Wanted:
    """Every run of a rollout."""
    return Wanted(rollout_id_of(rollout), scenario, "rollout", covers)


def targets_wanted(scenario: str, targets: list[Target], covers: str) -> list[Wanted]:
    """Each target's ``CreateMeshWorkflow`` under one scenario."""
    return [Wanted(t.workflow_id, scenario, f"target-{t.name}", covers) for t in targets]


# --- scenarios ------------------------------------------------------------------------------


async def lost_task(stack: Stack) -> list[Wanted]:
    """Kill the worker with SIGKILL while its POST waits at the server; a new worker finishes."""
    mesh = Target("lost-task-00")
    first = await stack.start_worker("worker-1")
    # A held POST stays unanswered; killed well within the 8 s after which the SDK would
    # heartbeat the workflow task, so the task is lost rather than completed.
    stack.site.hold()
    await stack.start("lost-task", [mesh])

    async def held() -> bool | None:
        return True if stack.site.held >= 1 else None

    await eventually(held, 60, "the POST of lost-task-00 reached the server")
    first.kill()
    stack.site.release()

    async def landed() -> bool | None:
        done = stack.site.held == 0 and stack.state.stats.creations(PROJECT, mesh.name) == 1
        return True if done else None

    await eventually(landed, 30, "the held POST created its mesh")
    await stack.start_worker("worker-2")
    report = await stack.report("lost-task")
    expect_report("lost-task", report, created=1, adopted=0, failed=0)
    outcome = await stack.outcome(mesh)
    expect_outcome(mesh, outcome, outcome="created", phase="Running")
    check(stack.posts(mesh) == 2, f"{mesh.name}: {stack.posts(mesh)} POSTs, not 2")
    history = await stack.client.get_workflow_handle(mesh.workflow_id).fetch_history()
    check(
        any(e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT for e in history.events),
        f"{mesh.name}: no workflow task was lost",
    )
    return [
        Wanted(
            mesh.workflow_id,
            "lost-task",
            "target-killed-mid-post",
            "the target whose first workflow task died with its worker mid-POST; the next "
            "task's POST got 409 and counted the mesh created",
        ),
        rollout_wanted("lost-task", "lost-task", "the rollout of that target"),
    ]


async def outcomes(stack: Stack) -> list[Wanted]:
    """One rollout whose targets end in every way a target can end (but timeout and busy)."""
    created = Target("created-00")
    adopted_running = Target("adopted-running-00")
    adopted_creating = Target("adopted-creating-00")
    hidden = Target("hidden-500-00")
    cluster_conflict = Target("cluster-conflict-00", cluster="cluster-owned-elsewhere")
    name_conflict = Target("name-conflict-00")
    create_failed = Target("create-failed-00")
    retry_429 = Target("retry-429-00")
    retry_5xx = Target("retry-5xx-00")
    state = stack.state
    state.seed_mesh(PROJECT, adopted_running.name, [adopted_running.cluster_id], "Running")
    state.seed_mesh(PROJECT, adopted_creating.name, [adopted_creating.cluster_id], "Creating")
    # Creating until its adopter has seen it so: Running at once would be the other path.
    state.hold_creating(adopted_creating)
    state.seed_mesh(OTHER_PROJECT, "someone-elses-mesh", [cluster_conflict.cluster_id])
    state.seed_mesh(PROJECT, name_conflict.name, ["cluster-of-the-other-mesh"])
    fleet = [
        created,
        adopted_running,
        adopted_creating,
        hidden,
        cluster_conflict,
        name_conflict,
        create_failed,
        retry_429,
        retry_5xx,
    ]
    await stack.start("outcomes", fleet)

    async def adopter_saw_creating() -> bool | None:
        handle = stack.client.get_workflow_handle(adopted_creating.workflow_id)
        try:
            phase = await handle.query("phase")
        except (RPCError, WorkflowQueryFailedError):
            return None  # not started yet
        return True if phase == "Creating" else None

    await eventually(adopter_saw_creating, 60, "adopted-creating-00 adopted while Creating")
    state.settle(adopted_creating)
    report = await stack.report("outcomes")
    expect_report("outcomes", report, created=4, adopted=2, failed=3)
    got = {t.name: await stack.outcome(t) for t in fleet}
    expect_outcome(created, got[created.name], outcome="created", attempts=1)
    check(got[created.name]["polls"] >= 1, "created-00 was never polled")
    expect_outcome(adopted_running, got[adopted_running.name], outcome="adopted", polls=0)
    expect_outcome(adopted_creating, got[adopted_creating.name], outcome="adopted")
    check(got[adopted_creating.name]["polls"] >= 1, "adopted-creating-00 was never polled")
    expect_outcome(hidden, got[hidden.name], outcome="created", attempts=2)
    expect_outcome(cluster_conflict, got[cluster_conflict.name], outcome="failed")
    check(
        "already belongs to another mesh" in got[cluster_conflict.name]["message"],
        f"cluster-conflict-00: {got[cluster_conflict.name]['message']}",
    )
    expect_outcome(name_conflict, got[name_conflict.name], outcome="failed")
    check(
        "already exists" in got[name_conflict.name]["message"],
        f"name-conflict-00: {got[name_conflict.name]['message']}",
    )
    expect_outcome(
        create_failed, got[create_failed.name], outcome="failed", error_code="CreateFailed"
    )
    expect_outcome(retry_429, got[retry_429.name], outcome="created", attempts=3)
    expect_outcome(retry_5xx, got[retry_5xx.name], outcome="created", attempts=3)
    return [
        rollout_wanted(
            "outcomes",
            "outcomes",
            "nine targets, nine paths; 4 created, 2 adopted, 3 failed within a budget of 100 %",
        ),
        Wanted(
            created.workflow_id,
            "created",
            "mesh-polled-to-running",
            "POST 201 Creating, wait_for_mesh until Running",
        ),
        Wanted(
            adopted_running.workflow_id,
            "adopted",
            "409-mesh-running",
            "POST 409, the mesh of that name is Running on our cluster: adopted, no poll",
        ),
        Wanted(
            adopted_creating.workflow_id,
            "adopted",
            "409-mesh-creating",
            "POST 409, the mesh of that name is still Creating: adopted, polled at once",
        ),
        Wanted(
            hidden.workflow_id,
            "created-after-hidden-500",
            "500-after-create-then-409",
            "attempt 1: 500 though created; attempt 2: 409 for a mesh made after the "
            "target started: created",
        ),
        Wanted(
            cluster_conflict.workflow_id,
            "cluster-conflict",
            "409-cluster-taken",
            "POST 409 with no mesh of that name: ClusterConflict, non-retryable",
        ),
        Wanted(
            name_conflict.workflow_id,
            "name-conflict",
            "409-name-on-other-cluster",
            "POST 409, the mesh of that name is on another cluster: NameConflict",
        ),
        Wanted(
            create_failed.workflow_id,
            "create-failed",
            "phase-createfailed",
            "POST 201, then the mesh ends CreateFailed: MeshFailed",
        ),
        Wanted(
            retry_429.workflow_id,
            "retry-429",
            "two-429s-then-201",
            "the local activity retried after two 429s with Retry-After",
        ),
        Wanted(
            retry_5xx.workflow_id,
            "retry-5xx",
            "two-500s-then-201",
            "the local activity retried after two 500s",
        ),
    ]


async def timeout(stack: Stack) -> list[Wanted]:
    """A mesh that stays Creating past the target's deadline."""
    mesh = Target("stuck-timeout-00")
    await stack.start("timeout", [mesh], timeout="2s")
    report = await stack.report("timeout")
    expect_report("timeout", report, failed=1)
    expect_outcome(mesh, await stack.outcome(mesh), outcome="failed", error_code="Timeout")
    return [
        Wanted(
            mesh.workflow_id,
            "timeout",
            "mesh-creating-past-deadline",
            "wait_for_mesh ends non-retryable MeshTimeout at the 2 s deadline",
        ),
        rollout_wanted("timeout", "timeout", "the rollout of that target: failed 1"),
    ]


async def waves(stack: Stack) -> list[Wanted]:
    """Three waves: each starts once the one before has ended."""
    fleet = [Target(f"wave-{i:02d}") for i in range(4)]
    await stack.start("waves", fleet, waves=[1, "50%", "100%"], window=4)
    report = await stack.report("waves")
    expect_report("waves", report, created=4, waves=3, wave=3)
    return [
        rollout_wanted("waves", "waves", "waves ending at 1, 2 and 4 of 4 targets"),
        *targets_wanted("waves", fleet, "a target of the waves rollout: created"),
    ]


async def halt_resume(stack: Stack) -> list[Wanted]:
    """A failed canary halts the rollout (budget 0); resume finishes it."""
    canary = Target("halt-canary-00")
    rest = [Target(f"halt-{i:02d}") for i in range(3)]
    await stack.start("halt-resume", [canary, *rest], waves=[1, "100%"], max_failures=0)
    halted = await stack.until("halt-resume", lambda p: p["state"] == "halted", "halted")
    check(halted["pending"] == 3, f"halt-resume halted with {halted['pending']} pending, not 3")
    await stack.steer("resume", "halt-resume")
    report = await stack.report("halt-resume")
    expect_report("halt-resume", report, created=3, failed=1)
    return [
        rollout_wanted(
            "halt-resume",
            "halt-resume",
            "halted by its canary's CreateFailed, resumed by the resume update",
        ),
        *targets_wanted("halt-resume", [canary], "the canary: CreateFailed"),
        *targets_wanted("halt-resume", rest, "a target started after the resume: created"),
    ]


async def pause_resume(stack: Stack) -> list[Wanted]:
    """Pause with targets pending: the one in flight finishes, nothing new starts until resume."""
    first = Target("stuck-pause-00")
    fleet = [first, Target("pause-01"), Target("pause-02")]
    rollout = "pause-resume"
    await stack.start(rollout, fleet, window=1)
    await stack.until(
        rollout, lambda p: p["in_flight"] == 1 and stack.exists(first), "first target POSTed"
    )
    answer = await stack.steer("pause", rollout)
    check(answer["state"] == "paused", f"{rollout}: pause answered {answer['state']}")
    # The CLI's document counts in-flight targets as pending too; the query tells them apart.
    paused = await stack.progress(rollout)
    check(
        (paused["in_flight"], paused["pending"]) == (1, 2),
        f"{rollout}: paused with {paused['in_flight']} in flight, {paused['pending']} pending",
    )
    stack.state.settle(first)
    held = await stack.until(rollout, lambda p: p["in_flight"] == 0, "first target done")
    check(held["state"] == "paused", f"{rollout}: {held['state']} before the resume")
    check(held["pending"] == 2, f"{rollout}: a target started while paused")
    await stack.steer("resume", rollout)
    report = await stack.report(rollout)
    expect_report(rollout, report, created=3)
    return [
        rollout_wanted(
            rollout,
            rollout,
            "window 1: paused with the first target in flight and two pending; the first "
            "ended while paused; resumed",
        ),
        *targets_wanted(rollout, fleet, "a target of the paused rollout: created"),
    ]


async def _cancelled(
    stack: Stack, rollout: str, cancel: Callable[[], Awaitable[Any]]
) -> list[Target]:
    # Window 1 and a second target that stays Creating until the cancel has landed: one target
    # done, one in flight, two never started.
    second = Target(f"stuck-{rollout}-01")
    fleet = [Target(f"{rollout}-00"), second, Target(f"{rollout}-02"), Target(f"{rollout}-03")]
    await stack.start(rollout, fleet, window=1)
    await stack.until(
        rollout,
        lambda p: p["created"] == 1 and p["in_flight"] == 1 and stack.exists(second),
        "second target POSTed",
    )
    await cancel()
    await stack.until(rollout, lambda p: p["state"] == "cancelling", "cancelling")
    stack.state.settle(second)
    report = await stack.report(rollout)
    expect_report(
        rollout, report, state="cancelled", created=2, cancelled=2, in_flight=0, pending=0
    )
    return fleet[:2]


async def cancel_update(stack: Stack) -> list[Wanted]:
    """Cancel by the rollout's ``cancel`` update (``meshfleet cancel``)."""
    started = await _cancelled(
        stack, "cancel-update", lambda: stack.steer("cancel", "cancel-update")
    )
    return [
        rollout_wanted(
            "cancel-update",
            "cancel-update",
            "window 1: the cancel update with one target created and one in flight; that one "
            "finishes, two never start",
        ),
        *targets_wanted("cancel-update", started, "a target started before the cancel"),
    ]


async def cancel_temporal(stack: Stack) -> list[Wanted]:
    """Cancel by a Temporal cancel request, as the UI or ``temporal workflow cancel`` sends."""
    handle = stack.client.get_workflow_handle(rollout_id_of("cancel-temporal"))
    started = await _cancelled(stack, "cancel-temporal", handle.cancel)
    return [
        rollout_wanted(
            "cancel-temporal",
            "cancel-temporal",
            "window 1: a Temporal cancel request with one target created and one in flight; "
            "that one finishes, two never start",
        ),
        *targets_wanted("cancel-temporal", started, "a target started before the cancel"),
    ]


async def continue_as_new(stack: Stack) -> list[Wanted]:
    """Two starts per run, window 2, meshes that take 3 s: every run hands its targets on."""
    # The first target stays Creating until terminated, so the second run surely awaits it.
    doomed = Target("stuck-can-00")
    fleet = [doomed, *(Target(f"slow-can-{i:02d}") for i in range(1, 6))]
    rollout = "continue-as-new"
    await stack.start(rollout, fleet, window=2, max_starts_per_run=2)

    async def second_run() -> bool | None:
        return True if len(await _runs_so_far(stack.client, rollout_id_of(rollout))) > 1 else None

    await eventually(second_run, 60, f"{rollout} continued as new")
    await stack.client.get_workflow_handle(doomed.workflow_id).terminate("operator gave up")
    report = await stack.report(rollout)
    expect_report(rollout, report, created=5, failed=1)
    [failure] = report["failures"]
    check(
        (failure["mesh_name"], failure["error_code"]) == (doomed.name, "TerminatedError"),
        f"{rollout}: failure {failure}",
    )
    runs = await _runs_so_far(stack.client, rollout_id_of(rollout))
    check(len(runs) == 3, f"{rollout}: {len(runs)} runs, not 3")
    return [
        rollout_wanted(
            rollout,
            rollout,
            "3 runs; each continues as new with 2 targets in flight, the next awaits them "
            "with await_target; one awaited target was terminated (failed TerminatedError)",
        ),
        Wanted(
            doomed.workflow_id,
            rollout,
            "target-terminated-while-carried",
            "a carried target terminated while Creating",
        ),
        *targets_wanted(rollout, fleet[1:], "a target of the rollout, carried over: created"),
    ]


async def target_pages(stack: Stack) -> list[Wanted]:
    """Seven targets in pages of 3, four starts per run: pages loaded in two runs."""
    fleet = [Target(f"page-{i:02d}") for i in range(7)]
    rollout = "target-pages"
    await stack.start(rollout, fleet, window=2, page_size=3, max_starts_per_run=4)
    report = await stack.report(rollout)
    expect_report(rollout, report, created=7)
    pages = [
        Wanted(
            f"rollout/{rollout}/targets/{n}",
            rollout,
            f"page-{n}",
            f"stored page {n} of the rollout's targets (its input is its result)",
        )
        for n in range(3)
    ]
    return [
        rollout_wanted(
            rollout, rollout, "no inline targets: load_target_page per page, 4 starts per run"
        ),
        *pages,
        *targets_wanted(rollout, fleet, "a target read from a page: created"),
    ]


async def mesh_busy(stack: Stack) -> list[Wanted]:
    """A second rollout of a mesh the first is still driving."""
    shared = Target("stuck-busy-00")
    other = Target("busy-other-00")
    await stack.start("mesh-busy-holder", [shared], poll_interval="1s", timeout="5m")

    async def driven() -> bool | None:
        if not stack.posts(shared):
            return None
        running = await stack.status(shared.workflow_id) == WorkflowExecutionStatus.RUNNING
        return True if running else None

    await eventually(driven, 60, "the holder's child drives stuck-busy-00")
    await stack.start("mesh-busy-blocked", [shared, other])
    # Seven start attempts over about a minute (the release's BUSY_START_ATTEMPTS).
    blocked = await stack.report("mesh-busy-blocked", limit_s=240)
    expect_report("mesh-busy-blocked", blocked, created=1, failed=1)
    [failure] = blocked["failures"]
    check(failure["error_code"] == "MeshBusy", f"mesh-busy-blocked: failure {failure}")
    stack.state.settle(shared)
    holder = await stack.report("mesh-busy-holder")
    expect_report("mesh-busy-holder", holder, created=1)
    return [
        Wanted(
            rollout_id_of("mesh-busy-blocked"),
            "mesh-busy",
            "rollout-blocked",
            "its first target's workflow id stays taken: start_child_workflow refused 7 "
            "times with growing sleeps, then MeshBusy; its second target created",
        ),
        Wanted(
            rollout_id_of("mesh-busy-holder"),
            "mesh-busy",
            "rollout-holder",
            "the rollout driving the mesh meanwhile",
        ),
        Wanted(
            shared.workflow_id,
            "mesh-busy",
            "target-held-by-holder",
            "the holder's child, Creating for over a minute, then Running",
        ),
        *targets_wanted("mesh-busy", [other], "the blocked rollout's other target: created"),
    ]


# The scenarios that run side by side once the lost-task scenario has had the worker to itself.
CONCURRENT = (
    outcomes,
    timeout,
    waves,
    halt_resume,
    pause_resume,
    cancel_update,
    cancel_temporal,
    continue_as_new,
    target_pages,
    mesh_busy,
)


# --- recording ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recorded:
    """One run's history as the Temporal CLI printed it."""

    file: str
    wanted: Wanted
    run_id: str
    workflow_type: str
    text: str


async def _show(address: str, workflow_id: str, run_id: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        temporal_cli(),
        "workflow",
        "show",
        "--workflow-id",
        workflow_id,
        "--run-id",
        run_id,
        "--output",
        "json",
        "--address",
        address,
        "--namespace",
        "default",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=clean_env(),
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    if proc.returncode != 0:
        raise RecordingError(f"temporal workflow show {workflow_id}: {err.decode().strip()}")
    return out.decode()


async def _runs_so_far(client: Client, workflow_id: str) -> list[str]:
    """Run ids of a workflow, oldest first, walking back through continue-as-new."""
    runs: list[str] = []
    run_id = (await client.get_workflow_handle(workflow_id).describe()).run_id
    while run_id:
        runs.append(run_id)
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        run_id = started.continued_execution_run_id
    return runs[::-1]


async def _runs(client: Client, workflow_id: str) -> list[str]:
    """Run ids of a closed workflow, oldest first."""
    desc = await client.get_workflow_handle(workflow_id).describe()
    check(desc.status != WorkflowExecutionStatus.RUNNING, f"{workflow_id} is still running")
    return await _runs_so_far(client, workflow_id)


async def record(stack: Stack, wanted: list[Wanted]) -> list[Recorded]:
    """Every run of every wanted workflow, checked to be closed and readable by the SDK."""
    recorded: list[Recorded] = []
    seen: set[str] = set()
    for want in wanted:
        check(want.workflow_id not in seen, f"{want.workflow_id} wanted twice")
        seen.add(want.workflow_id)
        runs = await _runs(stack.client, want.workflow_id)
        for n, run_id in enumerate(runs, 1):
            text = await _show(stack.server.address, want.workflow_id, run_id)
            events = json.loads(text)["events"]
            check(events[-1]["eventType"] in CLOSED, f"{want.workflow_id} {run_id} is not closed")
            WorkflowHistory.from_json(want.workflow_id, text)  # the replayer can read it
            workflow_type = events[0]["workflowExecutionStartedEventAttributes"]["workflowType"][
                "name"
            ]
            suffix = f"-run-{n}-of-{len(runs)}" if len(runs) > 1 else ""
            name = f"{want.scenario}--{want.slug}{suffix}.json"
            recorded.append(Recorded(name, want, run_id, workflow_type, text))
    names = [r.file for r in recorded]
    check(len(names) == len(set(names)), "two histories would share a file name")
    return recorded


def write_set(out: Path, release: str, recorded: list[Recorded]) -> None:
    """Replace the set in ``out``: the histories and ``index.json``."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.json"):
        old.unlink()
    files = []
    for r in sorted(recorded, key=lambda r: r.file):
        (out / r.file).write_text(r.text)
        files.append(
            {
                "file": r.file,
                "scenario": r.wanted.scenario,
                "workflow_type": r.workflow_type,
                "workflow_id": r.wanted.workflow_id,
                "run_id": r.run_id,
                "covers": r.wanted.covers,
            }
        )
    used = {r.wanted.scenario for r in recorded}
    index = {
        "release": release,
        "commit": commit_of(release),
        "recorded_with": f"python -m tests.upgrade.record_histories --release {release}; each "
        "file is `temporal workflow show --workflow-id ID --run-id RUN --output json`",
        "scenarios": {name: text for name, text in scenarios_of(release).items() if name in used},
        "files": files,
    }
    (out / "index.json").write_text(json.dumps(index, indent=2) + "\n")


async def _play_release(stack: Stack) -> list[Wanted]:
    """Every scenario of a release's set: the lost task alone, then the rest side by side."""
    wanted = await lost_task(stack)
    for found in await asyncio.gather(*(scenario(stack) for scenario in CONCURRENT)):
        wanted.extend(found)
    missing = set(SCENARIOS) - {w.scenario for w in wanted}
    check(not missing, f"scenarios without a history: {sorted(missing)}")
    return wanted


async def _play_development(stack: Stack) -> list[Wanted]:
    """The paths of the version in development that no release has: progressive delivery and
    rollback."""
    # Imported here: that module builds on this one's Stack and Target.
    from tests.upgrade import development_scenarios as development  # noqa: PLC0415

    await stack.start_worker("worker")
    wanted: list[Wanted] = []
    for found in await asyncio.gather(*(scenario(stack) for scenario in development.ALL)):
        wanted.extend(found)
    missing = set(development.SCENARIOS) - {w.scenario for w in wanted}
    check(not missing, f"scenarios without a history: {sorted(missing)}")
    return wanted


async def _play_whole_release(stack: Stack) -> list[Wanted]:
    """A release after the first: its release scenarios, then the development ones."""
    wanted = await _play_release(stack)
    return wanted + await _play_development(stack)


def scenarios_of(release: str) -> dict[str, str]:
    """What each scenario of a release's set covers."""
    from tests.upgrade import development_scenarios as development  # noqa: PLC0415

    if release == IN_DEVELOPMENT:
        return development.SCENARIOS
    if plays_development(release):
        return SCENARIOS | development.SCENARIOS
    return SCENARIOS


def commit_of(release: str) -> str:
    """The commit a set was recorded from: the release's, or this checkout's HEAD."""
    if release in RELEASES:
        return RELEASES[release]
    head = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    )
    return head.stdout.strip()


async def run(release_version: str, out: Path, work_dir: Path) -> list[Recorded]:
    """Start the stack, play every scenario, record every workflow; stop what was started."""
    developing = release_version == IN_DEVELOPMENT
    release = working_tree() if developing else install_release(release_version)
    config = SimulatorConfig(
        create_seconds=CREATE_SECONDS,
        delete_seconds=DELETE_SECONDS,
        tokens=(SIM_TOKEN,),
        faults=FaultConfig(rules=FAULT_RULES, leave=LEAVE_RULES, retry_after=0.2),
        seed=1,
    )
    site = SimulatorSite(config)
    state = ShapedState(config)
    site.state = state  # served from here on
    server = DevServer(work_dir / "temporal.db", work_dir / "temporal.log")
    stack: Stack | None = None
    try:
        await site.start()
        client = await server.start()
        async with serve_hook() as passing, serve_hook() as refusing:
            refusing.answer((500, "smoke test: 3 of 3 probes failed"))
            hooks = {"pass": passing, "refuse": refusing}
            stack = Stack(release, server, client, site, state, work_dir, hooks)
            if developing:
                play = _play_development
            elif plays_development(release_version):
                play = _play_whole_release
            else:
                play = _play_release
            wanted = await play(stack)
        recorded = await record(stack, wanted)
        leaked = [r.file for r in recorded if VERIFY_TOKEN in r.text]
        check(not leaked, f"the verify token is in the histories {leaked}")
        staged = work_dir / "set"
        write_set(staged, release_version, recorded)
        await stack.replay_with_release(staged)
        write_set(out, release_version, recorded)
        return recorded
    finally:
        if stack is not None:
            for worker in stack.workers:
                if worker.proc.poll() is None:
                    worker.kill()
        server.kill()
        await site.stop()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m tests.upgrade.record_histories``."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.upgrade.record_histories",
        description="Record a release's workflow histories for the replay gate.",
    )
    parser.add_argument(
        "--release",
        required=True,
        choices=[*sorted(RELEASES), IN_DEVELOPMENT],
        help=f"a release, or {IN_DEVELOPMENT}: this checkout's own worker, its new paths only",
    )
    parser.add_argument("--out", type=Path, help="default: tests/histories/<release>/")
    parser.add_argument(
        "--keep-work-dir", action="store_true", help="keep the server database and logs"
    )
    args = parser.parse_args(argv)
    out: Path = args.out or REPO / "tests" / "histories" / args.release
    work_dir = Path(tempfile.mkdtemp(prefix=f"meshfleet-histories-{args.release}-"))
    began = time.monotonic()
    try:
        recorded = asyncio.run(run(args.release, out, work_dir))
    except BaseException as exc:
        print(f"record_histories: {type(exc).__name__}: {exc}", file=sys.stderr)
        print(f"record_histories: logs and database kept in {work_dir}", file=sys.stderr)
        return 1
    total = 0
    for r in sorted(recorded, key=lambda r: r.file):
        size = (out / r.file).stat().st_size
        total += size
        print(f"{size:>9,}  {r.file}")
    print(
        f"{len(recorded)} histories, {total:,} bytes, in {out} ({time.monotonic() - began:.0f} s)"
    )
    if args.keep_work_dir:
        print(f"logs and database in {work_dir}")
    else:
        shutil.rmtree(work_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
