"""Running a CLI command against Temporal: where it is, connecting, and waiting for a worker."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from typing import NoReturn, TypeVar

import typer
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from meshfleet.cli.exit_codes import CommandError, ExitCode, print_error
from meshfleet.cli.params import load_settings
from meshfleet.settings import Settings
from meshfleet.temporal import DEFAULT_ADDRESS, connect, connect_config

T = TypeVar("T")

# Queries and updates are answered by a worker; without one they wait for ever (a query gives up
# after the server's 30 s, an update never). A pipeline needs an answer, or a clear reason.
WORKER_ANSWER_S = 20.0

_ADDRESS: ContextVar[str] = ContextVar("temporal_address", default=DEFAULT_ADDRESS)

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


def temporal_address() -> str:
    """Where the command looks for Temporal: TEMPORAL_ADDRESS, a temporal.toml profile or the
    default, as ``run_with_temporal`` found it."""
    return _ADDRESS.get()


def run_with_temporal(work: Work) -> NoReturn:
    """Connect, run ``work``, and end the command with its exit code.

    A failure is raised on, for the error wrapper every command runs in (``errors``) to turn
    into one line and an exit code: 3 when Temporal (or a worker) does not answer, 2 for a
    request Temporal refuses as invalid, 1 when the rollout's workflow itself failed. The
    process then ends in ``app.main`` through ``flush_and_exit``, never by an interpreter
    shutdown with the Temporal client loaded (docs/operations.md).

    Raises:
        typer.Exit: with the exit code of ``work``.
    """
    settings = load_settings()
    _ADDRESS.set(_configured_address())
    try:
        code = asyncio.run(_run(work, settings))
    except KeyboardInterrupt:
        print_error("interrupted; a started rollout goes on (`meshfleet status ID` to look again)")
        code = 130
    raise typer.Exit(code)


def _configured_address() -> str:
    try:
        return str(connect_config().get("target_host", DEFAULT_ADDRESS))
    except Exception as exc:  # a malformed TEMPORAL_* variable or temporal.toml profile
        raise _bad_connection_settings(exc) from exc


async def _run(work: Work, settings: Settings) -> int:
    address = temporal_address()
    try:
        client = await connect()
    except RuntimeError as exc:
        raise CommandError(ExitCode.UNREACHABLE, unreachable_message(address, exc)) from exc
    except ValueError as exc:  # an address that is none, such as TEMPORAL_ADDRESS=::::
        raise _bad_connection_settings(exc) from exc
    return await work(client, settings)


def _bad_connection_settings(exc: BaseException) -> CommandError:
    text = " ".join(str(exc).split())
    short = text if len(text) <= 300 else text[:297] + "..."
    return CommandError(ExitCode.INVALID, f"Temporal connection settings: {short}")


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
