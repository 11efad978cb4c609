"""Exit codes a release pipeline acts on, and the one way a command that used Temporal ends."""

from __future__ import annotations

import contextlib
import os
import sys
from enum import IntEnum
from typing import NoReturn


class ExitCode(IntEnum):
    """The ``meshfleet`` exit codes."""

    OK = 0
    """Every target is Running (created or adopted); or the command did what it was asked."""
    FAILED = 1
    """Some target failed, or the rollout halted or was cancelled."""
    INVALID = 2
    """Invalid input or usage: a bad manifest, option, rollout id or setting."""
    UNREACHABLE = 3
    """Temporal or the ASM API did not answer."""


def leave(code: int) -> NoReturn:
    """Flush the output and end the process now, with ``code``.

    The Temporal SDK can abort while the interpreter shuts down after its work is done (exit 134
    or 139; docs/operations.md, "Exiting after using the Temporal client"). ``os._exit`` skips
    that shutdown, so a pipeline sees the intended code every time. Only the streams need
    flushing: nothing else is left to finish.
    """
    for stream in (sys.stdout, sys.stderr):
        # A closed pipe or stream must not change the exit code.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(int(code))
