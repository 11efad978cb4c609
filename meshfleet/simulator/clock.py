"""The simulator's time: a monotonic clock for phases and token expiry, and a UTC wall clock."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Where the simulator reads time; tests inject a ``ManualClock`` to skip waits."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back; phases and token lifetimes use it."""
        ...

    def now(self) -> datetime:
        """The UTC wall time, for timestamps and the ``X-Sdk-Date`` skew check."""
        ...


class SystemClock:
    """The real clocks: ``time.monotonic()`` and ``datetime.now(UTC)``."""

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    def now(self) -> datetime:
        """``datetime.now(UTC)``."""
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to; both readings advance together."""

    def __init__(self, start: datetime | None = None) -> None:
        """Start at ``start`` (UTC; the current time by default) and monotonic 0."""
        self._start = start or datetime.now(UTC)
        self._elapsed = 0.0

    def monotonic(self) -> float:
        """Seconds advanced so far."""
        return self._elapsed

    def now(self) -> datetime:
        """The start time plus the seconds advanced so far."""
        return self._start + timedelta(seconds=self._elapsed)

    def advance(self, seconds: float) -> None:
        """Move both readings forward.

        Raises:
            ValueError: ``seconds`` is negative (a monotonic clock never goes back).
        """
        if seconds < 0:
            raise ValueError("a clock cannot go back")
        self._elapsed += seconds
