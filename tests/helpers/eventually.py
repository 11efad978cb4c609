"""Waiting on a condition instead of a fixed sleep, with a failure that names what was awaited.

Modelled on sdk-python's ``assert_eventually``: the condition is checked at once and then every
``interval`` until it holds or ``timeout_s`` seconds have passed. Conditions may be plain or async
callables, so the same helper waits on a counter of the simulator, a child process, a Temporal
query or a visibility list.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar, overload

T = TypeVar("T")

Probe = Callable[[], T | Awaitable[T]]


class NotYetError(Exception):
    """Raised by a probe to say "not yet, and here is why" (the reason shows in the failure)."""


async def _call(probe: Probe[T]) -> T:
    result = probe()
    if inspect.isawaitable(result):
        return await result
    return result


@overload
async def eventually_value(
    probe: Callable[[], Awaitable[T]],
    accept: Callable[[T], bool],
    timeout_s: float,
    what: str,
    *,
    interval: float = ...,
    retry_on: tuple[type[Exception], ...] = ...,
) -> T: ...


@overload
async def eventually_value(
    probe: Callable[[], T],
    accept: Callable[[T], bool],
    timeout_s: float,
    what: str,
    *,
    interval: float = ...,
    retry_on: tuple[type[Exception], ...] = ...,
) -> T: ...


async def eventually_value(
    probe: Probe[T],
    accept: Callable[[T], bool],
    timeout_s: float,
    what: str,
    *,
    interval: float = 0.05,
    retry_on: tuple[type[Exception], ...] = (),
) -> T:
    """Return the first value of ``probe()`` that ``accept`` takes, checking every ``interval``.

    ``probe`` raising ``NotYetError`` or one of ``retry_on`` counts as "not yet"; any other
    exception ends the wait at once (a worker that died will not come back by waiting).

    Raises:
        AssertionError: nothing acceptable within ``timeout_s`` seconds; the message names ``what``
            and shows the last value or error seen.
    """
    deadline = time.monotonic() + timeout_s
    not_yet: tuple[type[Exception], ...] = (NotYetError, *retry_on)
    last: str = "never checked"
    last_error: BaseException | None = None
    while True:
        try:
            value = await _call(probe)
        except not_yet as err:
            last, last_error = f"{type(err).__name__}: {err}", err
        else:
            if accept(value):
                return value
            seen = repr(value)
            last = f"last seen: {seen if len(seen) <= 300 else seen[:300] + '...'}"
            last_error = None
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"not within {timeout_s:g} s: {what} ({last})") from last_error
        await asyncio.sleep(min(interval, remaining))


async def eventually(
    condition: Probe[bool],
    timeout_s: float,
    what: str,
    *,
    interval: float = 0.05,
    retry_on: tuple[type[Exception], ...] = (),
) -> None:
    """Return as soon as ``condition()`` holds; fail after ``timeout_s`` seconds naming ``what``."""
    await eventually_value(condition, bool, timeout_s, what, interval=interval, retry_on=retry_on)
