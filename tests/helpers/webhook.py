"""A verify webhook on a loopback port: records what it receives, answers what a test says.

Every request reaching the port is recorded, whatever its method or path, so a test can hold a
worker to having sent nothing at all.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.helpers.ports import free_port


@dataclass
class Received:
    """One POST the hook received."""

    body: dict[str, Any]
    authorization: str | None


@dataclass
class Hook:
    """The hook's URL, its answers (the last repeats) and what it received.

    ``received``: the POSTs to its path; ``requests``: every request to its port, as
    ``"METHOD /path"``, those included.
    """

    url: str
    answers: list[tuple[int, str]] = field(default_factory=lambda: [(200, "ok")])
    received: list[Received] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def answer(self, *answers: tuple[int, str]) -> None:
        """Answer these (status, body) in turn, then the last one again."""
        self.answers = list(answers)


@asynccontextmanager
async def serve_hook(path: str = "/verify") -> AsyncIterator[Hook]:
    """A webhook at ``http://127.0.0.1:<free port><path>`` until the block exits."""
    port = free_port()
    hook = Hook(url=f"http://127.0.0.1:{port}{path}")

    async def handle(request: web.Request) -> web.Response:
        hook.received.append(
            Received(json.loads(await request.read()), request.headers.get("Authorization"))
        )
        status, text = hook.answers[min(len(hook.received), len(hook.answers)) - 1]
        return web.Response(status=status, text=text)

    @web.middleware
    async def record(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        hook.requests.append(f"{request.method} {request.path_qs}")
        return await handler(request)

    app = web.Application(middlewares=[record])
    app.router.add_post(path, handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield hook
    finally:
        await runner.cleanup()
