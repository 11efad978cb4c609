"""Waiting between polls inside an activity: heartbeat often enough, resume from the last one."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from temporalio import activity

from meshfleet.contract.payloads import WaitProgress

HEARTBEAT_EVERY_S = 5.0
"""Heartbeat at least this often while waiting between polls (and thrice per heartbeat timeout)."""


def heartbeat_every() -> float:
    """Seconds between heartbeats for the running activity."""
    timeout = activity.info().heartbeat_timeout
    if timeout is None:
        return HEARTBEAT_EVERY_S
    return max(0.1, min(HEARTBEAT_EVERY_S, timeout.total_seconds() / 3))


async def sleep_until(when: datetime, progress: WaitProgress) -> None:
    """Sleep until ``when``, heartbeating ``progress`` meanwhile (a retry resumes from it)."""
    every = heartbeat_every()
    while (left := (when - datetime.now(UTC)).total_seconds()) > 0:
        await asyncio.sleep(min(left, every))
        activity.heartbeat(progress.model_dump())


_T = TypeVar("_T")


async def heartbeating(call: Awaitable[_T]) -> _T:
    """Await ``call`` while heartbeating, so a worker that dies mid-call is noticed within the
    heartbeat timeout, not after the whole attempt's time limit."""

    async def beat() -> None:
        every = heartbeat_every()
        while True:
            activity.heartbeat()
            await asyncio.sleep(every)

    beating = asyncio.create_task(beat())
    try:
        return await call
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating


def after(seconds: float) -> datetime:
    """Now plus ``seconds``, in UTC."""
    return datetime.now(UTC) + timedelta(seconds=seconds)
