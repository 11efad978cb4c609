"""Reading a mesh inside an activity until a condition holds: heartbeat often enough, resume from
the last heartbeat, outlive a flaky answer, and wait longer when the server said so
(``Retry-After``), never past the deadline."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol, TypeVar

import structlog
from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import application_error, failure
from meshfleet.asm.errors import AsmError, AsmNotFoundError
from meshfleet.asm.models import Mesh, parse_time
from meshfleet.contract import failures as errors
from meshfleet.contract.failures import FailureDetails
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


async def sleep_until(when: datetime, progress: BaseModel) -> None:
    """Sleep until ``when``, heartbeating ``progress`` meanwhile (a retry resumes from it)."""
    every = heartbeat_every()
    while (left := (when - datetime.now(UTC)).total_seconds()) > 0:
        await asyncio.sleep(min(left, every))
        activity.heartbeat(progress.model_dump())


@dataclass(frozen=True)
class Seen:
    """What one read of the mesh found: its phase, or the 404 that says it is not there."""

    phase: str | None = None
    missing: AsmNotFoundError | None = None
    mesh: Mesh | None = None
    """The mesh read, when it was there."""


Holds = Callable[[Seen, WaitProgress], bool]
"""Whether what a read saw ends the wait, given the progress counting that read. It raises the
failure for what can never get there (a failed phase, a mesh that vanished)."""


class PollTiming(Protocol):
    """When a wait reads: the input of ``wait_for_mesh`` and of ``wait_for_mesh_gone``."""

    @property
    def first_poll_s(self) -> float:
        """Seconds before the first read."""

    @property
    def poll_interval_s(self) -> float:
        """Seconds between reads."""

    @property
    def deadline(self) -> str:
        """The absolute deadline (ISO 8601); the last read is made at it."""


async def poll_until(
    read: Callable[[], Awaitable[Mesh]], holds: Holds, *, what: str, until: str, timing: PollTiming
) -> WaitProgress:
    """Read the mesh until ``holds``; the progress of the read it held on.

    Every read is heartbeated as a ``WaitProgress`` (the last phase seen and the reads so far),
    and an attempt that finds one in its heartbeat details resumes from it, without waiting for
    the first read again. A read that failed for a moment (``AsmError.transient``: 429, 5xx, no
    answer) does not end the wait: the next one comes after the interval, or after the server's
    ``Retry-After`` when it asked for longer, never past the deadline.

    Args:
        read: One show of the mesh.
        holds: Whether a read ends the wait (see ``Holds``).
        what: The mesh, as the failures name it: ``mesh mesh-a``.
        until: What the wait is for, as a timeout names it: ``Running``, ``gone``.
        timing: The first read's delay, the interval and the deadline.

    Raises:
        ApplicationError: non-retryable ``MeshTimeout`` at the deadline; what ``holds`` raised;
            an ASM error that is not transient, as its class says (a 400, 401 or 403 is
            permanent).
    """
    info = activity.info()
    details = info.heartbeat_details
    progress = WaitProgress.model_validate(details[0]) if details else WaitProgress()
    if progress.polls:
        log.info("resuming poll from heartbeat", polls=progress.polls, phase=progress.phase)
    end = parse_time(timing.deadline) or datetime.now(UTC)
    if progress.polls == 0:
        await sleep_until(min(end, after(timing.first_poll_s)), progress)
    while True:
        seen, retry_after = await _read(read, info.attempt)
        phase = seen.phase if seen is not None else None
        progress = WaitProgress(phase=phase or progress.phase, polls=progress.polls + 1)
        activity.heartbeat(progress.model_dump())
        if seen is not None and holds(seen, progress):
            return progress
        if datetime.now(UTC) >= end:
            raise failure(
                f"{what} not {until} by its deadline {timing.deadline} "
                f"(last phase {progress.phase})",
                FailureDetails(attempt=info.attempt, error_code="Timeout", phase=progress.phase),
                type=errors.MESH_TIMEOUT,
                non_retryable=True,
            )
        wait_s = max(timing.poll_interval_s, retry_after or 0.0)
        await sleep_until(min(end, after(wait_s)), progress)


async def _read(
    read: Callable[[], Awaitable[Mesh]], attempt: int
) -> tuple[Seen | None, float | None]:
    """What one read saw, or None when it failed for a moment; and the seconds the server asked
    to wait (its ``Retry-After``), when it said."""
    try:
        mesh = await read()
    except AsmNotFoundError as exc:
        return Seen(missing=exc), None
    except AsmError as exc:
        if not exc.transient:
            raise application_error(exc, attempt=attempt, action="show mesh") from exc
        log.warning("poll failed; will poll again", error=str(exc), retry_after=exc.retry_after)
        return None, exc.retry_after
    return Seen(phase=mesh.phase, mesh=mesh), None


def ended_in(what: str, phase: str, attempt: int) -> ApplicationError:
    """The failure of a wait whose mesh reached a phase it never leaves for the one awaited."""
    return failure(
        f"{what} ended in phase {phase}",
        FailureDetails(attempt=attempt, error_code=phase, phase=phase),
        type=errors.MESH_FAILED,
        non_retryable=True,
    )


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
