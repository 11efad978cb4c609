"""Running a CLI command against Temporal: connect, turn failures into exit codes, end at once."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import NoReturn, TypeVar

from pydantic import ValidationError
from temporalio.client import (
    Client,
    WorkflowFailureError,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
)
from temporalio.service import RPCError, RPCStatusCode

from meshfleet.cli.exit_codes import CommandError, ExitCode, print_error
from meshfleet.process_exit import flush_and_exit
from meshfleet.settings import Settings
from meshfleet.temporal import DEFAULT_ADDRESS, connect, connect_config

T = TypeVar("T")

# Queries and updates are answered by a worker; without one they wait for ever (a query gives up
# after the server's 30 s, an update never). A pipeline needs an answer, or a clear reason.
WORKER_ANSWER_S = 20.0

_UNREACHABLE = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.UNAUTHENTICATED,
    RPCStatusCode.PERMISSION_DENIED,
    RPCStatusCode.INTERNAL,
    RPCStatusCode.UNKNOWN,
    RPCStatusCode.CANCELLED,
}


Work = Callable[[Client, Settings], Awaitable[int]]

# The OS's reason inside the SDK's connect error: `... Os { code: 111, ..., message: "Connection
# refused" } ...`; the rest of that text is the transport's internals.
_OS_REASON = re.compile(r'message: "([^"]+)"')


def unreachable_message(
    address: str, exc: BaseException, environ: Mapping[str, str] | None = None
) -> str:
    """One line on a Temporal that does not answer: where it was looked for, why, and what to do.

    ``cannot reach Temporal at 127.0.0.1:7233: connection refused (address from
    TEMPORAL_ADDRESS); start one with `meshfleet dev```.
    """
    env = os.environ if environ is None else environ
    if env.get("TEMPORAL_ADDRESS", "").strip():
        source = "address from TEMPORAL_ADDRESS"
    elif address != DEFAULT_ADDRESS:
        profile = env.get("TEMPORAL_PROFILE", "").strip() or "default"
        source = f"address from temporal.toml profile {profile}"
    else:
        source = "the default address; TEMPORAL_ADDRESS names another"
    found = _OS_REASON.search(str(exc))
    reason = found.group(1).lower() if found else "no answer"
    hint = (
        "start one with `meshfleet dev`"
        if _is_local(address)
        else "check that it is up and that the address is right"
    )
    return f"cannot reach Temporal at {address}: {reason} ({source}); {hint}"


def _is_local(address: str) -> bool:
    host = address.rsplit(":", 1)[0].strip("[]") if ":" in address else address
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run_with_temporal(work: Work) -> NoReturn:
    """Connect, run ``work``, and end the process with its exit code through ``flush_and_exit``.

    Every failure becomes one line on standard error and an exit code: 3 when Temporal (or a
    worker) does not answer, 2 for a request Temporal refuses as invalid, 1 when the rollout's
    workflow itself failed.
    """
    try:
        settings = Settings()
    except ValidationError as exc:
        for problem in exc.errors(include_url=False):
            print_error(f"setting {'.'.join(map(str, problem['loc']))}: {problem['msg']}")
        flush_and_exit(ExitCode.INVALID)
    try:
        code = asyncio.run(_run(work, settings))
    except KeyboardInterrupt:
        print_error("interrupted; a started rollout goes on (`meshfleet status ID` to look again)")
        code = 130
    flush_and_exit(code)


async def _run(work: Work, settings: Settings) -> int:
    address = DEFAULT_ADDRESS
    try:
        try:
            address = connect_config().get("target_host", DEFAULT_ADDRESS)
        except Exception as exc:  # a malformed TEMPORAL_* variable or temporal.toml profile
            raise CommandError(
                ExitCode.INVALID, f"Temporal connection settings: {_short(exc)}"
            ) from exc
        try:
            client = await connect()
        except RuntimeError as exc:
            raise CommandError(ExitCode.UNREACHABLE, unreachable_message(address, exc)) from exc
        return await work(client, settings)
    except CommandError as exc:
        print_error(exc.message)
        return exc.code
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            print_error(f"not found: {exc.message}")
            return ExitCode.INVALID
        if exc.status in _UNREACHABLE:
            print_error(f"Temporal at {address} did not answer: {exc.status.name}: {exc.message}")
            return ExitCode.UNREACHABLE
        print_error(f"Temporal refused the request: {exc.status.name}: {exc.message}")
        return ExitCode.INVALID
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause.message if hasattr(exc.cause, "message") else str(exc.cause)
        print_error(f"refused by the rollout: {cause}")
        return ExitCode.INVALID
    except (WorkflowQueryFailedError, WorkflowQueryRejectedError) as exc:
        print_error(f"the rollout could not answer: {exc}")
        return ExitCode.UNREACHABLE
    except WorkflowFailureError as exc:
        cause = getattr(exc.cause, "message", None) or str(exc.cause)
        print_error(f"the rollout workflow ended without a report: {cause}")
        return ExitCode.FAILED


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."


async def answer_from_worker(step: Awaitable[T], settings: Settings, what: str) -> T:
    """Await a query or update, or fail with exit 3 when no worker answers in time."""
    try:
        return await asyncio.wait_for(step, WORKER_ANSWER_S)
    except TimeoutError as exc:
        raise CommandError(
            ExitCode.UNREACHABLE,
            f"{what}: no answer within {WORKER_ANSWER_S:g} s; is a worker polling task queue "
            f"{settings.task_queue!r} (`meshfleet worker`)?",
        ) from exc
    except RPCError as exc:
        # The server gives up on an unanswered query after 30 s, as DEADLINE_EXCEEDED or as
        # CANCELLED "Timeout expired", depending on where the deadline struck.
        if exc.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
            raise CommandError(
                ExitCode.UNREACHABLE,
                f"{what}: no answer in time; is a worker polling task queue "
                f"{settings.task_queue!r} (`meshfleet worker`)?",
            ) from exc
        raise
