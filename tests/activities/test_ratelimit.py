"""The per-worker pace of POSTs, on a frozen clock (no timing in tests)."""

from __future__ import annotations

import asyncio

import pytest

from activities.ratelimit import Pacer
from meshfleet.settings import Settings
from tests.helpers.eventually import eventually


async def test_callers_are_spaced_in_arrival_order() -> None:
    now = [100.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(round(seconds, 6))

    pacer = Pacer(20, clock=lambda: now[0], sleep=sleep)
    await asyncio.gather(*(pacer.wait() for _ in range(4)))
    # The first goes at once, each next one 50 ms behind the one before.
    assert slept == [0.05, 0.1, 0.15]

    # After a quiet second the budget does not pile up: one goes at once, the next waits.
    slept.clear()
    now[0] += 1.0
    await pacer.wait()
    await pacer.wait()
    assert slept == [0.05]


@pytest.mark.parametrize("rate", [0, -1, float("nan")])
def test_a_rate_that_is_not_positive_is_refused(rate: float) -> None:
    with pytest.raises(ValueError, match="per_second"):
        Pacer(rate)


def test_the_pace_comes_from_the_environment() -> None:
    settings = Settings.model_validate(
        {
            "MESHFLEET_MAX_CREATES_PER_SECOND": "2.5",
            "MESHFLEET_MAX_CONCURRENT_LOCAL_ACTIVITIES": "7",
        }
    )
    assert (settings.max_creates_per_second, settings.max_concurrent_local_activities) == (2.5, 7)
    with pytest.raises(ValueError, match="MESHFLEET_MAX_CREATES_PER_SECOND"):
        Settings.model_validate({"MESHFLEET_MAX_CREATES_PER_SECOND": "0"})


async def test_a_cancelled_last_caller_gives_its_slot_back() -> None:
    now = [100.0]
    slept: list[float] = []
    hold = asyncio.Event()  # set: callers' sleeps block until cancelled

    async def sleep(seconds: float) -> None:
        slept.append(round(seconds, 6))
        if hold.is_set():
            await asyncio.Event().wait()

    pacer = Pacer(10, clock=lambda: now[0], sleep=sleep)
    await pacer.wait()  # the first caller goes at once and takes the slot at 100.0
    hold.set()
    waiting = asyncio.create_task(pacer.wait())  # queued for 100.1
    await eventually(lambda: slept == [0.1], 5, "the second caller asleep until its slot")
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    hold.clear()

    await pacer.wait()
    # It gets the cancelled caller's slot, 0.1 s after the first, not 0.2 s.
    assert slept == [0.1, 0.1]
