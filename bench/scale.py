"""Scenario ``scale``: 100, 1,000 and 10,000 targets; wall-time growth, server warnings, RSS."""

from __future__ import annotations

import sys
from typing import Any

from bench import history, procs
from bench.contender_meshfleet import run_rollout
from bench.figures import ratio, timing_figures
from bench.options import Options
from bench.server_log import sdk_payload_warnings, size_warnings
from bench.stack import bench_stack
from meshfleet.temporal import connect

DEFAULT_LARGEST = 10_000
MAX_RSS_MB = 400
LINEARITY_TOLERANCE = 0.15
SHOWN_WARNINGS = 5


def sizes(largest: int) -> list[int]:
    """The largest size and its tenth and hundredth (at least one target each)."""
    return sorted({max(1, largest // 100), max(1, largest // 10), largest})


async def one_size(opts: Options, count: int) -> dict[str, Any]:
    """A fresh stack (empty database, new worker) for one rollout of ``count`` targets."""
    timing = opts.timing
    async with bench_stack(timing.create_s, keep=opts.keep) as stack:
        client = await connect(stack.env)
        print(f"bench scale: meshfleet, {count} targets", file=sys.stderr)
        done = await run_rollout(client, stack, count, timing)
        rss = procs.peak_rss_mb(stack.worker_pid)
        per_run = await history.per_rollout_run(client, done.rollout_id)
        warnings = size_warnings(stack.server_log)
        sdk_warnings = sdk_payload_warnings(stack.worker_log)
    return done.run.figures() | {
        "worker_peak_rss_mb": rss,
        "history_events_per_rollout_run": per_run.max,
        "history_bytes_per_rollout_run_max": per_run.max_bytes,
        "rollout_runs": per_run.count,
        "server_size_warnings": len(warnings),
        "server_size_warning_lines": [w[:300] for w in warnings[:SHOWN_WARNINGS]],
        "worker_payload_warnings": len(sdk_warnings),
        "worker_payload_warning_lines": [w[:300] for w in sdk_warnings[:SHOWN_WARNINGS]],
    }


async def scale(opts: Options) -> dict[str, Any]:
    """Each size on its own fresh stack, smallest first; figures of the largest on top."""
    runs = [await one_size(opts, count) for count in sizes(opts.size(DEFAULT_LARGEST))]
    largest, tenth = runs[-1], runs[-2] if len(runs) > 1 else runs[-1]
    # Seconds per target at the largest size over seconds per target at a tenth of it:
    # 1.0 is perfectly linear growth of wall time with the fleet. Below 1, a fixed cost (the
    # first window filling, the last one draining) is spread over more targets.
    per_target_growth = ratio(
        largest["wall_s"] / largest["targets"], tenth["wall_s"] / tenth["targets"]
    )
    growth = per_target_growth or 0.0
    # The line through the two largest sizes: seconds each further target adds, and the
    # fixed seconds left over (start-up, the last window's drain).
    extra = largest["targets"] - tenth["targets"]
    marginal = (largest["wall_s"] - tenth["wall_s"]) / extra if extra else None
    warnings = sum(r["server_size_warnings"] + r["worker_payload_warnings"] for r in runs)
    return {
        "scenario": "scale",
        "targets": largest["targets"],
        "wall_s": largest["wall_s"],
        "meshes_per_s": largest["meshes_per_s"],
        "gets_per_mesh": largest["gets_per_mesh"],
        "history_events_per_rollout_run": largest["history_events_per_rollout_run"],
        "worker_peak_rss_mb": largest["worker_peak_rss_mb"],
        "wall_s_by_targets": {str(r["targets"]): r["wall_s"] for r in runs},
        "wall_growth_largest_vs_tenth": ratio(largest["wall_s"], tenth["wall_s"]),
        "per_target_time_largest_vs_tenth": per_target_growth,
        "marginal_s_per_target": round(marginal, 4) if marginal is not None else None,
        "fixed_s": (
            round(tenth["wall_s"] - marginal * tenth["targets"], 1)
            if marginal is not None
            else None
        ),
        "size_or_payload_warnings": warnings,
        "met": {
            "worker_peak_rss_mb<=400": largest["worker_peak_rss_mb"] <= MAX_RSS_MB,
            "linear_within_15%": abs(growth - 1) <= LINEARITY_TOLERANCE,
            "no_slowdown_per_target_beyond_15%": growth <= 1 + LINEARITY_TOLERANCE,
            "no_size_or_payload_warnings": warnings == 0,
        },
        **timing_figures(opts.timing),
        "sizes": runs,
    }
