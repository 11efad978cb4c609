"""How a command ends: the exit codes a release pipeline acts on, and the one shape of an error.

Every error the CLI reports is one line ``WHO: message`` on standard error, printed by
``print_error``; a command deep in a call stack raises ``CommandError`` and the command's
runner prints it. Ending the process after using Temporal is ``meshfleet.process_exit``.
"""

from __future__ import annotations

import sys
from enum import IntEnum
from typing import TextIO


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
    AWAITING_APPROVAL = 4
    """The rollout waits at an approval gate (`meshfleet approve`); a pipeline stage may end."""
    CHANGES_PENDING = 5
    """`plan` or `drift`: the fleet differs from the manifest (a rollout would change it); 0 from
    them means no change is pending."""
    AWAITING_FINALIZE = 6
    """The rollout's upgraded meshes wait for `meshfleet finalize` (strategy.upgrade.finalize:
    manual); a pipeline stage may end."""


class CommandError(Exception):
    """Ends a command with one line on standard error and an exit code."""

    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def print_error(message: str, *, about: str = "meshfleet", stream: TextIO | None = None) -> None:
    """``ABOUT: message`` on standard error (or ``stream``), flushed at once.

    Args:
        message: What went wrong, and what to do about it when there is something to do.
        about: What the line is about: the program, or a manifest for its problems
            (``fleet.yaml: targets[3].mesh_name: ...``, the shape compilers use).
        stream: Another stream for tests and the dev stack's own output; standard error when
            None (looked up at call time, so a captured stream is honoured).
    """
    print(f"{about}: {message}", file=stream or sys.stderr, flush=True)
