"""A per-process pace for ASM calls that Temporal's activity rate limits do not cover."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class Pacer:
    """Spaces callers of ``wait`` at least ``1 / per_second`` apart, in arrival order.

    ``create_mesh`` runs as a local activity, and Temporal's ``max_activities_per_second`` and
    task-queue limits apply to regular activities only: this keeps POSTs under the gateway's
    throttle on each worker.
    """

    def __init__(
        self,
        per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not per_second > 0:
            raise ValueError(f"per_second must be > 0, got {per_second}")
        self._gap = 1.0 / per_second
        self._next = 0.0
        self._clock = clock
        self._sleep = sleep

    async def wait(self) -> None:
        """Return when this caller's slot has come."""
        now = self._clock()
        slot = max(now, self._next)
        # Taken before sleeping, so concurrent callers queue behind one another.
        self._next = slot + self._gap
        if slot > now:
            try:
                await self._sleep(slot - now)
            except asyncio.CancelledError:
                # A cancelled caller at the end of the line gives its slot back; one in the
                # middle cannot without moving the callers behind it, so its slot stays spent.
                if self._next == slot + self._gap:
                    self._next = slot
                raise
