"""The simulator's HTTP site over a state that outlives it: restart it, hold requests, log answers.

``simulator.testing.serve`` ties the state to one site. Here the ``SimulatorState`` (meshes,
counters, issued tokens) is built once and served by ``build_app`` on a fixed port, so the site can
go down and come back on the same port with every mesh intact, as a restarted ASM endpoint would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Middleware

from meshfleet.simulator.app import build_app
from meshfleet.simulator.clock import Clock
from meshfleet.simulator.config import SimulatorConfig
from meshfleet.simulator.iam import SUBJECT_TOKEN_HEADER
from meshfleet.simulator.responses import REQUEST_ID_HEADER
from meshfleet.simulator.state import SimulatorState
from meshfleet.simulator.stats import CREATE, IAM_TOKEN
from tests.helpers.ports import free_port

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Answer:
    """One answer of the mesh or IAM API, as the client received it (or would have)."""

    operation: str
    status: int
    request_id: str


class SimulatorSite:
    """One ``SimulatorState`` served on a fixed loopback port, as often as it is started."""

    def __init__(
        self,
        config: SimulatorConfig,
        port: int | None = None,
        clock: Clock | None = None,
        middlewares: Sequence[Middleware] = (),
    ) -> None:
        self.state = SimulatorState(config, clock)
        self._middlewares = tuple(middlewares)
        self.port = port or free_port()
        self.answers: list[Answer] = []
        self.issued_tokens: list[str] = []
        self.restarts = 0
        self.held = 0
        self.held_names: set[tuple[str, str]] = set()
        self._holding: frozenset[str] = frozenset()
        self._open = asyncio.Event()
        self._open.set()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """Base URL of the mesh and IAM API (``ASM_ENDPOINT``, ``IAM_ENDPOINT``)."""
        return f"http://127.0.0.1:{self.port}"

    def _app(self) -> web.Application:
        app = build_app(self.state)
        # Innermost middleware: runs after the request id is assigned, before the handler.
        app.middlewares.append(self._hold)
        app.middlewares.extend(self._middlewares)
        app.on_response_prepare.append(self._record)
        return app

    @web.middleware
    async def _hold(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        operation = request.match_info.route.name
        if operation in self._holding and not self._open.is_set():
            if operation == CREATE:
                body = await request.json()  # aiohttp keeps the body for the handler
                self.held_names.add((request.match_info["project_id"], body["metadata"]["name"]))
            self.held += 1
            try:
                await self._open.wait()
            finally:
                self.held -= 1
        return await handler(request)

    async def _record(self, request: web.Request, response: web.StreamResponse) -> None:
        operation = request.match_info.route.name
        if operation:
            self.answers.append(
                Answer(operation, response.status, response.headers.get(REQUEST_ID_HEADER, ""))
            )
        if operation == IAM_TOKEN and SUBJECT_TOKEN_HEADER in response.headers:
            self.issued_tokens.append(response.headers[SUBJECT_TOKEN_HEADER])

    def hold(self, *operations: str) -> None:
        """Make every request of ``operations`` (default: create) wait at the door, unanswered.

        A held create creates its mesh only once released, whoever is still listening.
        """
        self._holding = frozenset(operations or (CREATE,))
        self._open.clear()

    def release(self) -> None:
        """Let held and future requests through."""
        self._open.set()

    async def start(self) -> None:
        """Serve on ``port`` (the same one every time)."""
        # A short shutdown timeout: a stop cuts requests in flight, as a crash of ASM would.
        runner = web.AppRunner(self._app(), access_log=None, shutdown_timeout=0.2)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", self.port, reuse_address=True).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner

    async def stop(self) -> None:
        """Close the port; the state stays."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def restart(self, down_s: float) -> None:
        """Stop, stay down ``down_s`` seconds (connections are refused), start again."""
        await self.stop()
        await asyncio.sleep(down_s)
        await self.start()
        self.restarts += 1


@asynccontextmanager
async def simulator_site(
    config: SimulatorConfig, clock: Clock | None = None, middlewares: Sequence[Middleware] = ()
) -> AsyncIterator[SimulatorSite]:
    """A started ``SimulatorSite``, stopped when the block ends."""
    site = SimulatorSite(config, clock=clock, middlewares=middlewares)
    await site.start()
    try:
        yield site
    finally:
        site.release()
        await site.stop()
