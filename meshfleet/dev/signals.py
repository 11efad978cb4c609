"""Stop signals for a process that owns child processes: every way out runs ``finally``."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """A stop signal, turned into the same unwinding as Ctrl-C."""


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signal.Signals(signum).name)


@contextlib.contextmanager
def handling_stop_signals(handler: signal._HANDLER) -> Iterator[None]:
    """Run ``handler`` on SIGINT, SIGTERM and SIGHUP inside the block; restore the old ones after.

    Outside the main thread signals cannot be handled, and are left alone.
    """
    previous = {}
    try:
        for signum in STOP_SIGNALS:
            previous[signum] = signal.signal(signum, handler)
    except ValueError:  # not the main thread: leave signals alone
        pass
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Turn SIGINT, SIGTERM and SIGHUP into KeyboardInterrupt, so every way out runs ``finally``.

    SIGINT too: a process started in the background by a non-interactive shell (``cmd &`` in a
    script, CI) inherits SIGINT ignored, and Python then leaves it ignored, so ``kill -INT``
    would never stop the stack.
    """
    with handling_stop_signals(_raise_interrupted):
        yield
