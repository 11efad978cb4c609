"""Scenario ``api_cost``: ASM calls per mesh against the ideal, history events per workflow."""

from __future__ import annotations

import sys
from typing import Any

from bench import history, procs
from bench.contender_meshfleet import run_rollout
from bench.figures import ideal_calls_per_mesh, ideal_gets_per_mesh, ratio, timing_figures
from bench.options import Options
from bench.stack import bench_stack
from meshfleet.temporal import connect

# Above 400 targets a rollout pages its targets (contracts.INLINE_TARGETS_MAX): cover that path.
DEFAULT_TARGETS = 500
MAX_GETS_VS_IDEAL = 1.2
MAX_EVENTS_PER_TARGET = 25


async def api_cost(opts: Options) -> dict[str, Any]:
    """One rollout; calls from the simulator's counters, events from every workflow's history."""
    count = opts.size(DEFAULT_TARGETS)
    timing = opts.timing
    async with bench_stack(timing.create_s, keep=opts.keep) as stack:
        client = await connect(stack.env)
        print(f"bench api_cost: meshfleet, {count} targets", file=sys.stderr)
        done = await run_rollout(client, stack, count, timing)
        rss = procs.peak_rss_mb(stack.worker_pid)
        per_target = await history.per_workflow(client, [t.workflow_id for t in done.fleet])
        per_run = await history.per_rollout_run(client, done.rollout_id)
    figures = done.run.figures()
    ideal = ideal_gets_per_mesh(timing)
    gets_vs_ideal = ratio(figures["gets_per_mesh"], ideal)
    return {
        "scenario": "api_cost",
        "targets": count,
        "wall_s": figures["wall_s"],
        "meshes_per_s": figures["meshes_per_s"],
        "gets_per_mesh": figures["gets_per_mesh"],
        "ideal_gets_per_mesh": ideal,
        "gets_vs_ideal": gets_vs_ideal,
        "posts_per_mesh": figures["posts_per_mesh"],
        "lists_per_mesh": figures["lists_per_mesh"],
        "calls_per_mesh": figures["calls_per_mesh"],
        "ideal_calls_per_mesh": ideal_calls_per_mesh(timing),
        "history_events_per_target": per_target.max,
        "history_events_per_target_mean": per_target.mean,
        "history_bytes_per_target_max": per_target.max_bytes,
        "history_events_per_rollout_run": per_run.max,
        "history_bytes_per_rollout_run_max": per_run.max_bytes,
        "rollout_runs": per_run.count,
        "worker_peak_rss_mb": rss,
        "met": {
            "gets_per_mesh<=1.2x_ideal": (gets_vs_ideal or 0) <= MAX_GETS_VS_IDEAL,
            "history_events_per_target<=25": per_target.max <= MAX_EVENTS_PER_TARGET,
        },
        **timing_figures(timing),
        "meshfleet": figures,
    }
