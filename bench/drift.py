"""Scenario ``drift``: judging 10,000 existing meshes, as a command and as a scheduled check.

The fleet: 10,000 targets over 100 projects x 2 regions (200 list calls), their meshes seeded in
the simulator before anything runs: most as the manifest wants them, some older (upgrade), some
with another configuration (update), a few missing. Measured, each on the same stack:

(a) ``meshfleet plan FILE --json`` as a process: wall time and peak RSS;
(b) ``meshfleet drift FILE --json`` as a process: the same;
(c) a drift schedule of the manifest saved (its pages stored), then one check triggered on the
    stack's worker: seconds from the trigger to the check's result, and the worker's peak RSS.

A process's peak RSS is its ``ru_maxrss`` from ``wait4``: the high-water mark of the whole run.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from temporalio.client import Client, ScheduleActionExecutionStartWorkflow

from bench import procs
from bench.options import Options
from bench.stack import TASK_QUEUE, BenchStack, bench_stack
from meshfleet.contract.drift import DriftReport, drift_schedule_id
from meshfleet.drift_schedules import delete_drift_schedule, save_drift_schedule
from meshfleet.models import MeshTarget
from meshfleet.temporal import connect

DEFAULT_TARGETS = 10_000
PROJECTS = 100
REGIONS = ("ap-southeast-1", "ap-southeast-3")
VERSION = "1.18.7-r5"
OLDER = "1.15.7-r1"
SAMPLED = {"telemetryConfig": {"tracing": {"randomSamplingPercentage": 10}}}
# Of every 100 targets: 2 run an older version, 2 were made with another configuration, 1 is
# missing; the other 95 are in sync.
SEED_PARALLEL = 32
PROCESS_LIMIT_S = 600.0
CHECK_LIMIT_S = 600.0


def _judgement(i: int) -> str:
    kind = i % 100
    if kind in (0, 1):
        return "upgrade"
    if kind in (2, 3):
        return "update"
    if kind == 4:
        return "missing"
    return "in_sync"


def fleet(count: int, prefix: str) -> list[dict[str, Any]]:
    """Manifest entries: target ``i`` in group ``i % 200`` (a project and a region), so every
    project and region holds the same share of the fleet."""
    groups = PROJECTS * len(REGIONS)
    entries = []
    for i in range(count):
        group = i % groups
        entry: dict[str, Any] = {
            "project_id": f"{group % PROJECTS + 1:032x}",
            "region": REGIONS[group // PROJECTS],
            "cluster_id": f"{prefix}-cluster-{i:05d}",
            "mesh_name": f"{prefix}-{i:05d}",
            "node_ids": [f"{prefix}-node-{i:05d}"],
        }
        if _judgement(i) == "update":
            entry["config"] = SAMPLED  # the seeded mesh echoes none
        entries.append(entry)
    return entries


def expected(count: int) -> dict[str, int]:
    """The report the fleet must give: every judgement's count."""
    counts = {"in_sync": 0, "missing": 0, "update": 0, "upgrade": 0}
    for i in range(count):
        counts[_judgement(i)] += 1
    return counts


async def seed(url: str, entries: list[dict[str, Any]]) -> int:
    """Every mesh but the missing ones, through ``POST /_sim/meshes``; how many."""
    gate = asyncio.Semaphore(SEED_PARALLEL)
    wanted = [(i, e) for i, e in enumerate(entries) if _judgement(i) != "missing"]

    async with aiohttp.ClientSession() as http:

        async def one(i: int, entry: dict[str, Any]) -> None:
            body = {
                "project_id": entry["project_id"],
                "name": entry["mesh_name"],
                "cluster_ids": [entry["cluster_id"]],
                "version": OLDER if _judgement(i) == "upgrade" else VERSION,
            }
            async with gate, http.post(f"{url}/_sim/meshes", json=body) as resp:
                resp.raise_for_status()

        await asyncio.gather(*(one(i, e) for i, e in wanted))
    return len(wanted)


async def sim_stats(url: str) -> dict[str, Any]:
    """The simulator's counters."""
    async with aiohttp.ClientSession() as http, http.get(f"{url}/_sim/stats") as resp:
        resp.raise_for_status()
        stats: dict[str, Any] = await resp.json()
    return stats


def _calls(before: dict[str, Any], after: dict[str, Any]) -> dict[str, int]:
    return {key: after[key] - before[key] for key in ("lists", "posts", "puts", "deletes")}


@dataclass(frozen=True)
class Measured:
    """One finished process: exit code, wall seconds, peak RSS and its standard output."""

    code: int
    wall_s: float
    peak_rss_mb: float
    out: str
    err: str


def _run_measured(argv: list[str], env: dict[str, str], scratch: Path) -> Measured:
    out_path, err_path = scratch / "out", scratch / "err"
    start = time.monotonic()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, start_new_session=True
        )
        # wait4, not wait: the child's own rusage, its peak RSS among it (kB on Linux).
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Measured(
        proc.returncode,
        wall,
        round(usage.ru_maxrss / 1024, 1),
        out_path.read_text(errors="replace"),
        err_path.read_text(errors="replace")[-2000:],
    )


async def measured_cli(stack: BenchStack, *args: str) -> tuple[Measured, dict[str, int]]:
    """``python -m meshfleet ARGS`` against the stack, measured; the ASM calls it made."""
    before = await sim_stats(stack.simulator_url)
    with tempfile.TemporaryDirectory(prefix="meshfleet-bench-cli-") as scratch:
        run = await asyncio.wait_for(
            asyncio.to_thread(
                _run_measured,
                [sys.executable, "-m", "meshfleet", *args],
                stack.env,
                Path(scratch),
            ),
            PROCESS_LIMIT_S,
        )
    return run, _calls(before, await sim_stats(stack.simulator_url))


def _figures(run: Measured, calls: dict[str, int]) -> dict[str, Any]:
    return {
        "exit_code": run.code,
        "wall_s": round(run.wall_s, 2),
        "peak_rss_mb": run.peak_rss_mb,
        "stdout_bytes": len(run.out.encode()),
        **calls,
    }


async def _triggered_report(client: Client, name: str) -> tuple[DriftReport, str, float]:
    """Trigger one check and wait for its result: the report, the check's workflow id, and
    the seconds from the trigger to the result."""
    handle = client.get_schedule_handle(drift_schedule_id(name))
    started = time.monotonic()
    await handle.trigger()
    deadline = started + CHECK_LIMIT_S
    while True:
        recent = (await handle.describe()).info.recent_actions
        if recent and isinstance(recent[-1].action, ScheduleActionExecutionStartWorkflow):
            action = recent[-1].action
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"schedule {name} started no check within {CHECK_LIMIT_S:g} s")
        await asyncio.sleep(0.05)
    check = client.get_workflow_handle(
        action.workflow_id, run_id=action.first_execution_run_id, result_type=DriftReport
    )
    report = await asyncio.wait_for(check.result(), max(1.0, deadline - time.monotonic()))
    return report, action.workflow_id, time.monotonic() - started


async def scheduled(
    client: Client, stack: BenchStack, path: Path, targets: list[MeshTarget]
) -> tuple[DriftReport, dict[str, Any]]:
    """Save a schedule of the fleet, trigger one check and time it; the schedule is deleted."""
    name = f"bench-{uuid.uuid4().hex[:6]}"
    watch = time.monotonic()
    saved = await save_drift_schedule(
        client, name, targets, every_s=6 * 3600, source=str(path), task_queue=TASK_QUEUE
    )
    store_s = time.monotonic() - watch
    rss_before = procs.peak_rss_mb(stack.worker_pid)
    cpu_before = procs.cpu_seconds(stack.worker_pid)
    before = await sim_stats(stack.simulator_url)
    try:
        report, workflow_id, seconds = await _triggered_report(client, name)
        calls = _calls(before, await sim_stats(stack.simulator_url))
        history = await client.get_workflow_handle(workflow_id).fetch_history()
    finally:
        await delete_drift_schedule(client, name)
    return report, {
        "pages": saved.input.pages,
        "store_pages_s": round(store_s, 2),
        "trigger_to_result_s": round(seconds, 2),
        "worker_peak_rss_mb": procs.peak_rss_mb(stack.worker_pid),
        "worker_peak_rss_mb_before_check": rss_before,
        "worker_cpu_s": round(procs.cpu_seconds(stack.worker_pid) - cpu_before, 1),
        "check_history_events": len(history.events),
        "check_history_bytes": sum(event.ByteSize() for event in history.events),
        **calls,
    }


def _counts(document: dict[str, Any]) -> dict[str, int]:
    return {key: document[key] for key in ("in_sync", "missing", "update", "upgrade")}


async def drift(opts: Options) -> dict[str, Any]:
    """Plan, drift and a scheduled check of the same seeded fleet on one fresh stack."""
    count = opts.size(DEFAULT_TARGETS)
    prefix = f"dr{uuid.uuid4().hex[:4]}"
    entries = fleet(count, prefix)
    want = expected(count)
    groups = len({(e["project_id"], e["region"]) for e in entries})
    async with bench_stack(opts.timing.create_s, keep=opts.keep) as stack:
        client = await connect(stack.env)
        print(f"bench drift: seeding {count} targets' meshes", file=sys.stderr)
        seeded = await seed(stack.simulator_url, entries)
        path = stack.state_dir / "drift-fleet.json"
        document = {"strategy": {"waves": ["100%"]}, "targets": entries}
        path.write_text(json.dumps(document))
        targets = [MeshTarget.model_validate({"version": VERSION, **entry}) for entry in entries]
        print("bench drift: meshfleet plan --json", file=sys.stderr)
        plan, plan_calls = await measured_cli(stack, "plan", str(path), "--json")
        print("bench drift: meshfleet drift --json", file=sys.stderr)
        checked, drift_calls = await measured_cli(stack, "drift", str(path), "--json")
        print("bench drift: a scheduled check", file=sys.stderr)
        report, figures = await scheduled(client, stack, path, targets)
    cli_report = json.loads(checked.out) if checked.out.strip() else {}
    cli_counts = _counts(cli_report) if cli_report else {}
    scheduled_counts = {key: report.counts()[key] for key in want}
    return {
        "scenario": "drift",
        "targets": count,
        "projects": PROJECTS,
        "regions": len(REGIONS),
        "list_groups": groups,
        "seeded_meshes": seeded,
        "expected": want,
        "plan": _figures(plan, plan_calls)
        | {"stderr_tail": plan.err[-300:] if plan.code not in (0, 5) else ""},
        "drift": _figures(checked, drift_calls) | {"counts": cli_counts},
        "scheduled": figures | {"counts": scheduled_counts, "listed": len(report.drifted)},
        "met": {
            "drift_cli_counts_as_expected": cli_counts == want,
            "scheduled_counts_as_expected": scheduled_counts == want,
            "one_list_per_project_and_region": figures["lists"] == groups
            and drift_calls["lists"] == groups,
            "no_writes": all(
                calls[key] == 0
                for calls in (plan_calls, drift_calls, figures)
                for key in ("posts", "puts", "deletes")
            ),
            "drift_exit_5": checked.code == 5,
        },
    }
