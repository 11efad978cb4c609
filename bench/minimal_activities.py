"""The minimal Temporal baseline's activities: plain aiohttp calls to the ASM API."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from temporalio import activity

from bench.minimal_workflow import POLL, POST, PollInput, PostInput


class MinimalActivities:
    """POST a mesh and poll it, on one shared session."""

    def __init__(self, http: aiohttp.ClientSession, endpoint: str, token: str) -> None:
        self._http = http
        self._endpoint = endpoint.rstrip("/")
        self._headers = {"X-Auth-Token": token}

    @activity.defn(name=POST)
    async def post_mesh(self, inp: PostInput) -> str:
        """The new mesh's uid."""
        url = f"{self._endpoint}/v1/{inp.project_id}/meshes"
        async with self._http.post(url, json=inp.body, headers=self._headers) as resp:
            resp.raise_for_status()
            mesh: dict[str, Any] = await resp.json()
        return str(mesh["metadata"]["uid"])

    @activity.defn(name=POLL)
    async def poll_mesh(self, inp: PollInput) -> str:
        """Poll until the mesh leaves ``Creating``; its phase."""
        url = f"{self._endpoint}/v1/{inp.project_id}/meshes/{inp.uid}"
        await asyncio.sleep(inp.first_poll_s)
        while True:
            async with self._http.get(url, headers=self._headers) as resp:
                resp.raise_for_status()
                mesh: dict[str, Any] = await resp.json()
            phase = str(mesh["status"]["phase"])
            if phase != "Creating":
                return phase
            await asyncio.sleep(inp.poll_s)
