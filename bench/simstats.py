"""The simulator's counters over HTTP: reset before a contender runs, read after, per mesh."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp


@dataclass(frozen=True)
class ApiCalls:
    """Mesh API calls the simulator answered during one contender's run."""

    posts: int
    gets: int
    lists: int

    def per_mesh(self, meshes: int) -> dict[str, float]:
        """Calls per mesh by kind, and all of them together."""
        n = max(meshes, 1)
        return {
            "posts_per_mesh": round(self.posts / n, 3),
            "gets_per_mesh": round(self.gets / n, 3),
            "lists_per_mesh": round(self.lists / n, 3),
            "calls_per_mesh": round((self.posts + self.gets + self.lists) / n, 3),
        }


async def reset(url: str) -> None:
    """Forget the simulator's meshes and counters."""
    async with aiohttp.ClientSession() as http, http.post(f"{url}/_sim/reset") as resp:
        resp.raise_for_status()


async def api_calls(url: str) -> ApiCalls:
    """POST, show (GET one mesh) and list calls since the last reset."""
    async with aiohttp.ClientSession() as http, http.get(f"{url}/_sim/stats") as resp:
        resp.raise_for_status()
        stats: dict[str, Any] = await resp.json()
    return ApiCalls(posts=stats["posts"], gets=stats["shows"], lists=stats["lists"])
