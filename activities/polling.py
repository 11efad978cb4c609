"""Waiting between polls inside an activity: heartbeat often enough, resume from the last one,
and wait longer when the server said so (``Retry-After``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import structlog
from temporalio import activity

from meshfleet.asm.errors import (
    AsmConnectionError,
    AsmServerError,
    AsmStatusError,
    AsmThrottledError,
)
from meshfleet.contract.payloads import WaitProgress

log = structlog.get_logger(__name__)

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


POLL_SURVIVES = (AsmConnectionError, AsmThrottledError, AsmServerError)
"""What a poll outlives (no answer, 429, 5xx): a wait that may last 30 minutes polls again."""


def poll_failed(exc: AsmConnectionError | AsmStatusError) -> float | None:
    """Log a poll that failed in a way the next may not; the seconds the server asked to wait
    (its ``Retry-After``), when it said."""
    retry_after = exc.retry_after if isinstance(exc, AsmStatusError) else None
    log.warning("poll failed; will poll again", error=str(exc), retry_after=retry_after)
    return retry_after


async def sleep_before_next_poll(
    deadline: datetime, interval_s: float, retry_after_s: float | None, progress: WaitProgress
) -> None:
    """Sleep the poll interval, or the server's ``Retry-After`` when it asked for longer, never
    past ``deadline``; heartbeating ``progress`` meanwhile."""
    wait_s = max(interval_s, retry_after_s or 0.0)
    await sleep_until(min(deadline, after(wait_s)), progress)


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
