"""``python -m bench.baseline_asyncio``: plain asyncio + aiohttp POST-and-poll through a window.

Prints one JSON object: wall seconds from the first POST to the last mesh ``Running``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from typing import Any

import aiohttp

from bench.fleet import body, targets


async def _one(
    http: aiohttp.ClientSession, base: str, project_id: str, payload: dict[str, Any], args: Any
) -> str:
    async with http.post(f"{base}/v1/{project_id}/meshes", json=payload) as resp:
        resp.raise_for_status()
        uid = (await resp.json())["metadata"]["uid"]
    await asyncio.sleep(args.first_poll_s)
    while True:
        async with http.get(f"{base}/v1/{project_id}/meshes/{uid}") as resp:
            resp.raise_for_status()
            phase = str((await resp.json())["status"]["phase"])
        if phase != "Creating":
            return phase
        await asyncio.sleep(args.poll_s)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Drive every target to a final phase, at most ``window`` at a time."""
    fleet = [(t.project_id, body(t)) for t in targets(args.prefix, args.targets)]
    gate = asyncio.Semaphore(args.window)
    base = args.endpoint.rstrip("/")

    async with aiohttp.ClientSession(headers={"X-Auth-Token": args.token}) as http:

        async def gated(project_id: str, payload: dict[str, Any]) -> str:
            async with gate:
                return await _one(http, base, project_id, payload, args)

        started = time.monotonic()
        phases = await asyncio.gather(*(gated(p, b) for p, b in fleet))
        wall = time.monotonic() - started
    return {"wall_s": wall, "running": sum(p == "Running" for p in phases)}


def main() -> None:
    """Parse the arguments, run, print the JSON result."""
    parser = argparse.ArgumentParser(prog="python -m bench.baseline_asyncio")
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--targets", type=int, required=True)
    parser.add_argument("--prefix", default="ma")
    parser.add_argument("--window", type=int, default=200)
    parser.add_argument("--first-poll-s", type=float, default=1.0)
    parser.add_argument("--poll-s", type=float, default=1.0)
    args = parser.parse_args()
    args.token = os.environ["ASM_AUTH_TOKEN"]
    print(json.dumps(asyncio.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
    sys.exit(0)
