"""Scenario ``throughput``: meshfleet beside plain asyncio and a minimal Temporal workflow."""

from __future__ import annotations

import sys
from typing import Any

from bench import procs
from bench.contender_meshfleet import run_rollout
from bench.contenders_baseline import run_asyncio, run_minimal_temporal
from bench.figures import ideal_gets_per_mesh, ratio, timing_figures
from bench.options import Options
from bench.stack import bench_stack
from meshfleet.temporal import connect

DEFAULT_TARGETS = 1000
MIN_RATIO_VS_MINIMAL = 0.8


def _say(what: str, count: int) -> None:
    print(f"bench throughput: {what}, {count} targets", file=sys.stderr, flush=True)


async def throughput(opts: Options) -> dict[str, Any]:
    """The contenders one after another on one dev server and one simulator.

    The machine is shared and its load drifts, so the minimal Temporal baseline runs twice,
    before and after meshfleet, and meshfleet is compared with the mean of the two.
    """
    count = opts.size(DEFAULT_TARGETS)
    timing = opts.timing
    async with bench_stack(timing.create_s, keep=opts.keep) as stack:
        client = await connect(stack.env)
        _say("asyncio baseline", count)
        plain = await run_asyncio(stack, count, timing)
        _say("minimal Temporal baseline (before)", count)
        before = await run_minimal_temporal(stack, count, timing)
        _say("meshfleet", count)
        ours = (await run_rollout(client, stack, count, timing)).run
        rss = procs.peak_rss_mb(stack.worker_pid)
        _say("minimal Temporal baseline (after)", count)
        after = await run_minimal_temporal(stack, count, timing)
    minimal_per_s = (before.meshes_per_s + after.meshes_per_s) / 2
    vs_minimal = ratio(ours.meshes_per_s, minimal_per_s)
    mine = ours.figures()
    return {
        "scenario": "throughput",
        "targets": count,
        "wall_s": mine["wall_s"],
        "meshes_per_s": mine["meshes_per_s"],
        "ratio_vs_asyncio": ratio(ours.meshes_per_s, plain.meshes_per_s),
        "ratio_vs_minimal_temporal": vs_minimal,
        "minimal_temporal_meshes_per_s": round(minimal_per_s, 2),
        "asyncio_meshes_per_s": round(plain.meshes_per_s, 2),
        "gets_per_mesh": mine["gets_per_mesh"],
        "ideal_gets_per_mesh": ideal_gets_per_mesh(timing),
        "worker_peak_rss_mb": rss,
        "met": {"ratio_vs_minimal_temporal>=0.8": (vs_minimal or 0) >= MIN_RATIO_VS_MINIMAL},
        **timing_figures(timing),
        "meshfleet": mine,
        "minimal_temporal_before": before.figures(),
        "minimal_temporal_after": after.figures(),
        "asyncio": plain.figures(),
    }
