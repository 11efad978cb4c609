"""A rolling restart from the previous release's worker to this checkout's, mid-rollout.

The previous release starts a rollout with its own CLI (so its input and its target pages are
written by that release) and drives it with its own worker: waves, pages, failures within the
budget, continue-as-new with targets in flight. While some meshes exist and many do not, SIGTERM
stops that worker (it drains); this checkout's worker takes over the task queue and finishes.
Nothing may be created twice, reported twice or lost, and no worker may fail a workflow task: a
worker that cannot replay a history the release wrote fails its task with a non-determinism
error. (The server refusing a continue-as-new because events arrived meanwhile is recorded as a
failed workflow task too; it is counted and printed, not failed: see ``restart.py``.)
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client

from meshfleet.contract.payloads import PAGE_SIZE, rollout_workflow_id
from meshfleet.manifest.load import load_manifest
from meshfleet.models import MeshTarget, RolloutProgress
from meshfleet.simulator.config import FaultConfig, SimulatorConfig
from meshfleet.simulator.state import SimulatorState
from tests.helpers.audit import assert_created_once, assert_reported_once, audit_rollout
from tests.helpers.cli_run import cli_env, manifest_target, write_manifest
from tests.helpers.eventually import eventually_value
from tests.helpers.fleet import SIM_TOKEN, project
from tests.helpers.processes import WorkerProcess, worker_env, worker_process
from tests.helpers.progress import creations
from tests.helpers.rollout_watch import runs
from tests.helpers.simulator_site import simulator_site
from tests.upgrade.releases import SUPPORTED, ReleaseInstall, install_release
from tests.upgrade.restart import (
    HistoryScan,
    SuggestingDevServer,
    finish,
    meshes_created_by,
    release_cli,
    release_version,
    release_worker,
    scan_histories,
)

TASK_QUEUE = "meshfleet-upgrade"
# Failure budget of the manifest: the doomed targets stay within it, so the rollout never halts.
MAX_FAILURES = 5
# The release's worker drains within this on SIGTERM. Its polls end within a second, but an
# await_target in flight waits for children that no worker drives while it drains: that holds the
# drain to the full grace, and the next worker runs the activity again.
GRACE_S = 10


@dataclass(frozen=True)
class Scale:
    """One size of the scenario; every size runs the same code."""

    targets: int
    window: int
    can_events: int
    """History events of a run at which the server suggests continue-as-new."""
    stop_at: float
    """Share of the meshes created when the release's worker is stopped."""
    limit_s: float
    """For each wait of the rollout: up to the stop, and from the restart to the report."""


def _fleet(size: int) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """Manifest targets, the names told to fail and the names whose first 201 is lost.

    One of each kind falls before the stop and one after it, so both workers meet them.
    """
    doomed = {int(size * 0.15), int(size * 0.85)}
    lost = {int(size * 0.25), int(size * 0.75)}
    entries: list[dict[str, Any]] = []
    for i in range(size):
        kind = "doomed" if i in doomed else "lost" if i in lost else "roll"
        entries.append(manifest_target(project(i % 5 + 1), f"{kind}-{i:05d}"))
    names = [e["mesh_name"] for e in entries]
    return (
        entries,
        [n for n in names if n.startswith("doomed-")],
        [n for n in names if n.startswith("lost-")],
    )


@dataclass
class Restart:
    """The two workers of the scenario and the moments that matter, in monotonic seconds."""

    old: WorkerProcess
    new: WorkerProcess | None = None
    created_at_stop: int = 0
    drain_s: float = 0.0
    started: float = 0.0
    stopped: float = 0.0
    restarted: float = 0.0
    finished: float = 0.0

    def whose(self, identity: str) -> str:
        """``release`` or ``main`` for a worker identity (``pid@host``) of the scenario."""
        for name, worker in (("release", self.old), ("main", self.new)):
            if worker is not None and identity.startswith(f"{worker.pid}@"):
                return name
        return identity


async def _start_with_release_cli(
    release: ReleaseInstall, manifest: Path, rollout_id: str, address: str, total: int
) -> None:
    run = await release_cli(
        release,
        "start",
        str(manifest),
        "--rollout-id",
        rollout_id,
        env=cli_env(
            TEMPORAL_ADDRESS=address,
            TEMPORAL_NAMESPACE="default",
            MESHFLEET_TASK_QUEUE=TASK_QUEUE,
        ),
    )
    assert run.code == 0, run.err
    assert f"started rollout {rollout_id}: {total} targets" in run.err, run.err


async def _until_mid_rollout(
    client: Client, state: SimulatorState, rollout_id: str, scale: Scale
) -> None:
    # Mid-rollout: the share of meshes created, and the release has continued as new at least
    # once, so the next worker meets a run whose input the release wrote.

    async def created_and_runs() -> tuple[int, int]:
        return creations(state), await runs(client, rollout_workflow_id(rollout_id))

    await eventually_value(
        created_and_runs,
        lambda seen: seen[0] >= scale.stop_at * scale.targets and seen[1] >= 2,
        scale.limit_s,
        "mid-rollout: (meshes created, runs)",
        interval=0.1,
    )


def _figures(
    scale: Scale,
    restart: Restart,
    report: RolloutProgress | None,
    scan: HistoryScan,
    state: SimulatorState,
    created_by: dict[str, set[str]],
) -> dict[str, object]:
    return {
        "targets": scale.targets,
        "pages": math.ceil(scale.targets / PAGE_SIZE),
        "waves": report.waves if report else None,
        "created at stop": restart.created_at_stop,
        "created by release worker": len(created_by["release"]),
        "created by main worker": len(created_by["main"]),
        "created by both": len(created_by["release"] & created_by["main"]),
        "duplicates": sum(max(0, s.creations - 1) for s in state.stats.names.values()),
        "created/adopted/failed": (
            f"{report.created}/{report.adopted}/{report.failed}" if report else None
        ),
        "workflow task failures": len(scan.task_failures),
        "completions refused (UnhandledCommand)": {
            restart.whose(i): n for i, n in scan.rejected_completions.items()
        },
        "workflow task timeouts": dict(scan.task_timeouts),
        "runs": scan.runs,
        "continue-as-new (worker: targets in flight)": [
            f"{restart.whose(h.worker)}: {h.in_flight}" for h in scan.handovers
        ],
        "histories scanned": scan.histories,
        "release drain s": round(restart.drain_s, 2),
        "wall s total": round(restart.finished - restart.started, 1),
        "wall s after restart": round(restart.finished - restart.restarted, 1),
        "wall s from SIGTERM": round(restart.finished - restart.stopped, 1),
    }


@pytest.mark.parametrize(
    "scale",
    [
        # Just past one page (400 targets), so the release stores two; about 20 s.
        pytest.param(Scale(targets=450, window=40, can_events=400, stop_at=0.4, limit_s=180)),
        # Four pages and longer runs; about a minute.
        pytest.param(
            Scale(targets=1500, window=60, can_events=1200, stop_at=0.4, limit_s=600),
            marks=pytest.mark.chaos,
        ),
    ],
    ids=lambda s: f"{s.targets}-targets",
)
# From every supported release, not only the last: a fleet may still run the one before it.
@pytest.mark.parametrize("version", SUPPORTED)
async def test_rolling_restart_from_a_supported_release_loses_nothing(
    version: str, scale: Scale, tmp_path: Path
) -> None:
    release = await asyncio.to_thread(install_release, version)
    rollout_id = f"upgrade-{scale.targets}"
    entries, doomed, lost = _fleet(scale.targets)
    # Meshes are Running 1 s after their POST; the first poll looks then, a late one 0.5 s on.
    manifest = write_manifest(
        tmp_path / "fleet.yaml",
        entries,
        window=scale.window,
        waves=[1, "10%", "100%"],
        max_failures=MAX_FAILURES,
        first_poll="1s",
        poll_interval="500ms",
        timeout="5m",
    )
    fleet: list[MeshTarget] = load_manifest(str(manifest), rollout_id).targets
    pages = math.ceil(scale.targets / PAGE_SIZE)
    assert pages >= 2, "the fleet must travel in pages"

    faults = FaultConfig(rules=["doomed-*=create-failed", "lost-*=500-after:1"])
    config = SimulatorConfig(create_seconds=1.0, tokens=(SIM_TOKEN,), faults=faults)
    server = SuggestingDevServer(
        tmp_path / "temporal.db", tmp_path / "temporal.log", events=scale.can_events
    )
    try:
        client = await server.start()
        async with simulator_site(config) as sim:
            env = worker_env(
                server.address, TASK_QUEUE, sim.url, MESHFLEET_GRACEFUL_SHUTDOWN=str(GRACE_S)
            )
            assert release_version(release, env) == version
            async with release_worker(release, client, env, tmp_path / "release.log") as old:
                restart = Restart(old, started=time.monotonic())
                await _start_with_release_cli(
                    release, manifest, rollout_id, server.address, scale.targets
                )
                await _until_mid_rollout(client, sim.state, rollout_id, scale)
                restart.created_at_stop = creations(sim.state)
                restart.stopped = time.monotonic()
                code, restart.drain_s = await old.terminate(GRACE_S + 30)
                assert code == 0, old.log()[-3000:]
                assert "worker stopped" in old.log()

            restart.restarted = time.monotonic()
            async with worker_process(client, env, tmp_path / "main.log") as new:
                restart.new = new
                report = await finish(client, rollout_id, scale.limit_s)
            restart.finished = time.monotonic()

            scan = await scan_histories(client, rollout_id, pages)
            created_by = {"release": meshes_created_by(old), "main": meshes_created_by(new)}
            figures = _figures(scale, restart, report, scan, sim.state, created_by)
            print("rolling restart figures:")
            for name, value in figures.items():
                print(f"  {name}: {value}")

            # A worker that cannot replay the release's histories: the failure says how.
            assert not scan.task_failures, f"workflow tasks failed:\n{scan.failures_text()}"
            assert report is not None, f"rollout not done within {scale.limit_s:g} s"
            audit = await audit_rollout(client, rollout_id, scale.targets)
            assert_reported_once(report, audit, fleet)
            assert (report.created, report.adopted, report.failed) == (
                scale.targets - len(doomed),
                0,
                len(doomed),
            ), report.failures
            assert report.waves == 3
            assert {f.mesh_name for f in report.failures} == set(doomed)
            assert {f.error_code for f in report.failures} == {"CreateFailed"}
            assert figures["duplicates"] == 0
            assert_created_once(sim.state, [t for t in fleet if t.mesh_name not in doomed])
            assert_created_once(
                sim.state, [t for t in fleet if t.mesh_name in doomed], phase="CreateFailed"
            )
            # A 201 hidden by a 500 was sent again and met its own mesh: one mesh, created.
            stats = sim.state.stats
            assert all(
                stats.posts(t.project_id, t.mesh_name) >= 2 for t in fleet if t.mesh_name in lost
            )

            # The restart happened mid-rollout: each worker created meshes, and together all.
            assert 0 < restart.created_at_stop < scale.targets - scale.window
            assert created_by["release"] and created_by["main"]
            assert created_by["release"] | created_by["main"] == {t.mesh_name for t in fleet}
            # Both workers continued the rollout as new, at least once with targets in flight.
            assert scan.runs == len(scan.handovers) + 1, scan.handovers
            assert {restart.whose(h.worker) for h in scan.handovers} == {"release", "main"}
            assert any(h.in_flight for h in scan.handovers), scan.handovers
    finally:
        server.kill()
