"""How a failure ends a command: one table from what went wrong to an exit code and its words.

Commands do not catch errors to report them: whatever a command raises passes through
``reported_failures`` (applied to every command by the ``meshfleet`` group, ``core.Group``),
which looks the exception up in ``_FAILURES`` and ends the command with one line on standard
error and the exit code of ``exit_codes.ExitCode``. A manifest's problems are the one case of
several lines, each ``FILE: path: message`` and then their count, the shape compilers use.

An exception that is not in the table is a bug, not a failure to explain: its traceback shows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import typer
from temporalio.client import (
    RPCTimeoutOrCancelledError,
    WorkflowFailureError,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
)
from temporalio.service import RPCError, RPCStatusCode

from meshfleet.asm.errors import AsmConnectionError, AsmError, AsmValidationError
from meshfleet.cli.exit_codes import CommandError, ExitCode, print_error
from meshfleet.cli.temporal import temporal_address
from meshfleet.manifest.load import ManifestError
from meshfleet.manifest.schedule import count_of
from meshfleet.rollback import RollbackRefusedError
from meshfleet.rollout_identity import RolloutIdReusedError
from meshfleet.worker_builds import OlderWorkersError


class ManifestRefusedError(Exception):
    """A manifest the CLI read has problems: ``error`` lists them, ``source`` names the file."""

    def __init__(self, source: str, error: ManifestError) -> None:
        super().__init__(str(error))
        self.source = source
        self.error = error


@dataclass(frozen=True)
class Failure:
    """How a command ends: its exit code, and the lines on standard error, each ``ABOUT: line``."""

    code: int
    lines: tuple[str, ...]
    about: str = "meshfleet"


def _one(code: ExitCode, line: str) -> Failure:
    return Failure(code, (line,))


def _manifest(source: str, error: ManifestError) -> Failure:
    count = count_of(len(error.problems), "problem")
    return Failure(ExitCode.INVALID, (*error.problems, count), about=source)


# Temporal answers that mean it, or the way to it, is not there: exit 3, as a pipeline retries.
_UNREACHABLE = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.UNAUTHENTICATED,
    RPCStatusCode.PERMISSION_DENIED,
    RPCStatusCode.INTERNAL,
    RPCStatusCode.UNKNOWN,
    RPCStatusCode.CANCELLED,
}


def _rpc(exc: RPCError) -> Failure:
    if exc.status == RPCStatusCode.NOT_FOUND:
        return _one(ExitCode.INVALID, f"not found: {exc.message}")
    if exc.status in _UNREACHABLE:
        return _one(
            ExitCode.UNREACHABLE,
            f"Temporal at {temporal_address()} did not answer: {exc.status.name}: {exc.message}",
        )
    return _one(ExitCode.INVALID, f"Temporal refused the request: {exc.status.name}: {exc.message}")


def _cause(exc: WorkflowUpdateFailedError | WorkflowFailureError) -> str:
    """The workflow's own reason: the message of the failure it raised."""
    return getattr(exc.cause, "message", None) or str(exc.cause)


_Kinds = type[BaseException] | tuple[type[BaseException], ...]

# Most specific first: the first entry whose classes the exception is an instance of decides.
_FAILURES: tuple[tuple[_Kinds, Callable[[Any], Failure]], ...] = (
    (CommandError, lambda e: _one(e.code, e.message)),
    (ManifestRefusedError, lambda e: _manifest(e.source, e.error)),
    (ManifestError, lambda e: _manifest("meshfleet", e)),
    # The ASM API, for the commands that call it themselves (plan, rollback --plan).
    (AsmValidationError, lambda e: _one(ExitCode.INVALID, str(e))),  # credentials, ASM_ENDPOINT
    (AsmConnectionError, lambda e: _one(ExitCode.UNREACHABLE, f"ASM unreachable: {e}")),
    (AsmError, lambda e: _one(ExitCode.FAILED, f"ASM refused the request: {e}")),
    # What the rollout's own records refuse.
    (RolloutIdReusedError, lambda e: _one(ExitCode.INVALID, str(e))),
    (OlderWorkersError, lambda e: _one(ExitCode.INVALID, str(e))),
    (RollbackRefusedError, lambda e: _one(ExitCode.INVALID, f"cannot roll back: {e}")),
    # Temporal: the server, and the workflows and workers behind it.
    (RPCError, _rpc),
    (
        RPCTimeoutOrCancelledError,
        lambda e: _one(ExitCode.UNREACHABLE, f"Temporal gave up waiting for an answer: {e}"),
    ),
    (
        WorkflowUpdateFailedError,
        lambda e: _one(ExitCode.INVALID, f"refused by the rollout: {_cause(e)}"),
    ),
    (
        (WorkflowQueryFailedError, WorkflowQueryRejectedError),
        lambda e: _one(ExitCode.UNREACHABLE, f"the rollout could not answer: {e}"),
    ),
    (
        WorkflowFailureError,
        lambda e: _one(
            ExitCode.FAILED, f"the rollout workflow ended without a report: {_cause(e)}"
        ),
    ),
)


def failure_of(exc: BaseException) -> Failure | None:
    """How ``exc`` ends a command; None for an exception that is no failure to explain (a bug,
    ``typer.Exit``, a usage error click reports itself)."""
    for kinds, failure in _FAILURES:
        if isinstance(exc, kinds):
            return failure(exc)
    return None


@contextmanager
def reported_failures() -> Iterator[None]:
    """Run a command; a failure of the table ends it with its lines and exit code.

    Raises:
        typer.Exit: with the failure's exit code, once its lines are on standard error.
    """
    try:
        yield
    except Exception as exc:
        failure = failure_of(exc)
        if failure is None:
            raise
        for line in failure.lines:
            print_error(line, about=failure.about)
        raise typer.Exit(failure.code) from None
