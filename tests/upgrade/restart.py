"""A rolling restart from a release's worker to this checkout's: the pieces of the scenario.

The release runs as an operator runs it: its own ``meshfleet`` CLI and ``python worker.py`` from
its own source tree and virtualenv (``tests/upgrade/releases.py``), so no module of this checkout
can stand in for it. Afterwards every history the rollout left is read back: a worker that cannot
replay what the release wrote fails a workflow task, and that is what this module looks for.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.api.enums.v1 import EventType, TimeoutType, WorkflowTaskFailedCause
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from meshfleet import rollouts
from meshfleet.contract.payloads import CREATE_MESH_WORKFLOW, page_workflow_id, rollout_workflow_id
from meshfleet.models import RolloutProgress
from tests.helpers.cli_run import Run, run_process
from tests.helpers.processes import DevServer, WorkerProcess, wait_for_poller
from tests.upgrade.releases import ReleaseInstall, release_env

# A rollout task tried this often without success is worth a look at the run's history.
_STUCK_ATTEMPTS = 3
# Created meshes, as a worker logs them: by a 201, or by a POST whose answer a 500 hid.
_CREATED_EVENTS = ("mesh creation accepted", "mesh created by an earlier attempt")


class SuggestingDevServer(DevServer):
    """A ``DevServer`` that suggests continue-as-new once a run's history has ``events`` events.

    The release's CLI has no way to cap a run's starts (``max_starts_per_run`` is a test knob of
    the library), so its rollout continues as new only when the server suggests it, as in
    production on a large fleet. The server's default threshold (4 Ki events) is reached only
    past a thousand targets; lowering it makes a few hundred targets take the same path.
    """

    def __init__(self, db_path: Path, log_path: Path, *, events: int) -> None:
        super().__init__(db_path, log_path)
        self.events = events

    def _argv(self) -> list[str]:
        return [
            *super()._argv(),
            "--dynamic-config-value",
            f"limit.historyCount.suggestContinueAsNew={self.events}",
        ]


def release_version(release: ReleaseInstall, env: Mapping[str, str]) -> str:
    """``meshfleet.__version__`` as the release's worker imports it (from its own source tree)."""
    found = subprocess.run(
        [str(release.python), "-c", "import meshfleet; print(meshfleet.__version__)"],
        cwd=release.source,
        env=release_env(env),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return found.stdout.strip()


async def release_cli(
    release: ReleaseInstall, *args: str, env: Mapping[str, str], limit_s: float = 60
) -> Run:
    """The release's own ``meshfleet ARGS``, run from its source tree to its end."""
    return await run_process(
        [str(release.python.parent / "meshfleet"), *args],
        env=release_env(env),
        cwd=release.source,
        limit_s=limit_s,
    )


def _spawn_release_worker(
    release: ReleaseInstall, env: Mapping[str, str], log_path: Path
) -> subprocess.Popen[bytes]:
    # Its own session, like every process of the scenarios: a signal to the test's process
    # group never reaches it, and it is stopped by its pid alone.
    with log_path.open("ab") as log:
        return subprocess.Popen(
            release.worker_argv(),
            env=release_env(env),
            cwd=release.source,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@asynccontextmanager
async def release_worker(
    release: ReleaseInstall,
    client: Client,
    env: Mapping[str, str],
    log_path: Path,
    *,
    ready_s: float = 60,
) -> AsyncIterator[WorkerProcess]:
    """The release's ``python worker.py``; yield once it polls; SIGKILL it if it still runs."""
    proc = _spawn_release_worker(release, env, log_path)
    worker = WorkerProcess(proc, log_path)
    try:
        await wait_for_poller(client, env["MESHFLEET_TASK_QUEUE"], worker, ready_s)
        yield worker
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def meshes_created_by(worker: WorkerProcess) -> set[str]:
    """Mesh names whose creation this worker saw succeed, from its JSON log lines."""
    names: set[str] = set()
    for line in worker.log().splitlines():
        if line.startswith("{") and any(f'"{event}"' in line for event in _CREATED_EVENTS):
            names.add(json.loads(line)["mesh_name"])
    return names


# The server refuses a workflow task's completion that closes the run (here: continue-as-new)
# when events arrived while the worker worked on it, and records WorkflowTaskFailed with this
# cause, naming no failure of the worker's code; the next task delivers the new events.
REJECTED_COMPLETION = WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND


@dataclass(frozen=True)
class Handover:
    """One continue-as-new of the rollout."""

    worker: str
    """Identity of the worker whose workflow task continued the run as new."""
    in_flight: int
    """Targets in flight that the next run took over (and awaits with ``await_target``)."""


@dataclass
class HistoryScan:
    """What every history of a rollout (its runs, children and target pages) says."""

    histories: int = 0
    task_failures: list[str] = field(default_factory=list)
    """WorkflowTaskFailed events of workers (non-determinism among them), one line each:
    workflow, cause, worker and failure message."""
    rejected_completions: Counter[str] = field(default_factory=Counter)
    """WorkflowTaskFailed events of the server refusing a completion, per worker identity."""
    task_timeouts: Counter[str] = field(default_factory=Counter)
    """WorkflowTaskTimedOut events per timeout type and workflow kind (rollout, mesh, page):
    SCHEDULE_TO_START for tasks on the sticky queue of a gone worker, START_TO_CLOSE for a task
    a worker took and never answered."""
    runs: int = 0
    """Runs of the rollout workflow."""
    handovers: list[Handover] = field(default_factory=list)
    """Every continue-as-new of the rollout, in order."""

    def failures_text(self) -> str:
        """The worker failures, each distinct line once with how often it was recorded."""
        return "\n".join(f"{n} x {line}" for line, n in Counter(self.task_failures).items())


@dataclass
class _Run:
    continued_from: str = ""
    in_flight: int = 0
    continued_by: str | None = None


async def scan_histories(client: Client, rollout_id: str, pages: int) -> HistoryScan:
    """Read every history the rollout left: its runs, its children and its target pages."""
    rollout = rollout_workflow_id(rollout_id)
    children = f'MeshRolloutId = "{rollout_id}" AND WorkflowType = "{CREATE_MESH_WORKFLOW}"'
    runs = [(r.id, r.run_id) async for r in client.list_workflows(f'WorkflowId = "{rollout}"')]
    executions: list[tuple[str, str | None]] = [*runs]
    executions += [(c.id, c.run_id) async for c in client.list_workflows(children)]
    executions += [(page_workflow_id(rollout_id, n), None) for n in range(pages)]
    scan = HistoryScan(histories=len(executions), runs=len(runs))
    facts: dict[str, _Run] = {}
    # A few fetches at a time: hundreds of children, and the server shares two cores.
    gate = asyncio.Semaphore(8)

    async def read(workflow_id: str, run_id: str | None) -> None:
        async with gate:
            history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        run = _scan_events(scan, workflow_id, history.events)
        if workflow_id == rollout and run_id is not None:
            facts[run_id] = run

    await asyncio.gather(*(read(wid, rid) for wid, rid in executions))
    # Follow the chain of runs from the first, so handovers come in the order they happened.
    following = {run.continued_from: run_id for run_id, run in facts.items()}
    current = following.get("")
    while current in following:
        after = following[current]
        worker = facts[current].continued_by or "?"
        scan.handovers.append(Handover(worker, facts[after].in_flight))
        current = after
    return scan


def _kind(workflow_id: str) -> str:
    if workflow_id.startswith("mesh/"):
        return "mesh"
    return "page" if "/targets/" in workflow_id else "rollout"


def _scan_events(scan: HistoryScan, workflow_id: str, events: Iterable[HistoryEvent]) -> _Run:
    run = _Run()
    last_identity = ""
    for event in events:
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            failed = event.workflow_task_failed_event_attributes
            if failed.cause == REJECTED_COMPLETION:
                scan.rejected_completions[failed.identity] += 1
                continue
            scan.task_failures.append(
                f"{workflow_id}: {WorkflowTaskFailedCause.Name(failed.cause)} on "
                f"{failed.identity or '?'}: {failed.failure.message}"
            )
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
            timed_out = event.workflow_task_timed_out_event_attributes
            kind_name = TimeoutType.Name(timed_out.timeout_type).removeprefix("TIMEOUT_TYPE_")
            scan.task_timeouts[f"{kind_name} {_kind(workflow_id)}"] += 1
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            last_identity = event.workflow_task_completed_event_attributes.identity
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            started = event.workflow_execution_started_event_attributes
            run.continued_from = started.continued_execution_run_id
            if run.continued_from:
                # The rollout's input; JSON, as the pydantic data converter writes it.
                carry = json.loads(started.input.payloads[0].data)["carry"]
                run.in_flight = len(carry["in_flight"])
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            run.continued_by = last_identity
    return run


async def finish(client: Client, rollout_id: str, limit_s: float) -> RolloutProgress | None:
    """The rollout's report; None when its workflow tasks fail for good or ``limit_s`` passes.

    A worker that cannot replay a history fails the task again on every attempt, so the rollout
    would never end: give up as soon as the current run records such a failure, and let the
    history scan say what it was.
    """
    handle = rollouts.rollout_handle(client, rollout_id)
    result = asyncio.ensure_future(rollouts.final_report(handle))
    try:
        async with asyncio.timeout(limit_s):
            while not result.done():
                await asyncio.wait({result}, timeout=1.0)
                if not result.done() and await _task_keeps_failing(client, rollout_id):
                    return None
            return result.result()
    except TimeoutError:
        return None
    finally:
        result.cancel()


async def _task_keeps_failing(client: Client, rollout_id: str) -> bool:
    handle = rollouts.rollout_handle(client, rollout_id)
    description = (await handle.describe()).raw_description
    if description.pending_workflow_task.attempt < _STUCK_ATTEMPTS:
        return False
    # Attempts alone do not tell: read what the run's failed tasks were.
    run_id = description.workflow_execution_info.execution.run_id
    history = await client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
    scan = HistoryScan()
    _scan_events(scan, handle.id, history.events)
    return bool(scan.task_failures)
