"""``python -m bench SCENARIO [--targets N]``: run benchmark scenarios, one JSON line each."""

from __future__ import annotations

import argparse
import asyncio
import json
import traceback
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from bench.api_cost import api_cost
from bench.drift import drift
from bench.fleet import Timing
from bench.options import Options
from bench.scale import scale
from bench.throughput import throughput
from meshfleet.process_exit import flush_and_exit

Scenario = Callable[[Options], Awaitable[dict[str, Any]]]
SCENARIOS: dict[str, Scenario] = {
    "throughput": throughput,
    "api_cost": api_cost,
    "scale": scale,
    "drift": drift,
}


def _parser() -> argparse.ArgumentParser:
    defaults = Timing()
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="meshfleet benchmarks on the embedded dev server (SQLite WAL) and the "
        "simulator; one JSON line per scenario on stdout, progress on stderr.",
    )
    parser.add_argument("scenario", choices=[*SCENARIOS, "all"])
    parser.add_argument(
        "--targets",
        type=int,
        help="fleet size (scale: the largest size, also run at a tenth and a hundredth)",
    )
    parser.add_argument("--create-s", type=float, default=defaults.create_s)
    parser.add_argument("--first-poll-s", type=float, default=defaults.first_poll_s)
    parser.add_argument("--poll-s", type=float, default=defaults.poll_s)
    parser.add_argument("--window", type=int, default=defaults.window)
    parser.add_argument("--keep", action="store_true", help="keep each stack's database and logs")
    return parser


async def _run(names: Sequence[str], opts: Options) -> int:
    code = 0
    for name in names:
        try:
            line = await SCENARIOS[name](opts)
        except Exception as exc:
            traceback.print_exc()
            line = {"scenario": name, "error": f"{type(exc).__name__}: {exc}"}
            code = 1
        print(json.dumps(line), flush=True)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen scenario (or all of them in turn); 1 if any failed."""
    args = _parser().parse_args(argv)
    if args.targets is not None and args.targets < 1:
        _parser().error("--targets must be at least 1")
    timing = Timing(
        create_s=args.create_s,
        first_poll_s=args.first_poll_s,
        poll_s=args.poll_s,
        window=args.window,
    )
    opts = Options(targets=args.targets, timing=timing, keep=args.keep)
    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    return asyncio.run(_run(names, opts))


if __name__ == "__main__":
    flush_and_exit(main())
