"""Steering a running rollout: ``pause``, ``resume`` and ``cancel`` from one table, and ``approve``.

The three steering commands differ only in their name, their help and the update they send:
each is a row of ``STEERING``. ``approve`` is a command of its own: it names who approves
(``--by``), has no ``--rollback`` (a rollback has no gates), and a rollout that is not at a gate
refuses it with exit 1, not 2.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable
from typing import Annotated, Protocol

import typer
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError

from meshfleet import rollouts
from meshfleet.cli.core import Command
from meshfleet.cli.emit import emit_json, emit_lines
from meshfleet.cli.exit_codes import CommandError, ExitCode
from meshfleet.cli.on_rollout import RolloutCommand
from meshfleet.cli.output import progress_line, report_document
from meshfleet.cli.params import JsonFlag, RolloutIdArg, check_rollout_id
from meshfleet.cli.temporal import answer_from_worker, run_with_temporal
from meshfleet.cli.watching import check_workers, describe, ended, ended_phrase
from meshfleet.models import RolloutProgress
from meshfleet.settings import Settings


class _Update(Protocol):
    def __call__(
        self, client: Client, rollout_id: str, *, rollback: bool = False
    ) -> Awaitable[RolloutProgress]: ...


def _print_answer(action: str, progress: RolloutProgress, *, as_json: bool) -> None:
    if as_json:
        emit_json(report_document(progress))
    else:
        emit_lines([f"{action}: {progress_line(progress)}"])


async def _check_running(
    client: Client, rollout_id: str, action: str, *, rollback: bool = False
) -> None:
    # An ended rollout is refused with a reason instead of "workflow execution already
    # completed", and without waiting for a worker.
    desc = await describe(client, rollout_id, rollback=rollback)
    if desc.status != WorkflowExecutionStatus.RUNNING:
        state = await ended(client, rollout_id, desc, rollback=rollback)
        what = "the rollback of rollout" if rollback else "rollout"
        raise CommandError(
            ExitCode.INVALID, f"cannot {action} {what} {rollout_id!r}: {ended_phrase(state)}"
        )
    await check_workers(client, rollout_id, desc)


def _steering(action: str, update: _Update, short_help: str, help_text: str) -> RolloutCommand:
    """The command that sends ``update``: pause, resume or cancel a rollout, or its rollback;
    exit 0 once it accepted."""

    async def steer(
        client: Client,
        settings: Settings,
        rollout_id: str,
        *,
        as_json: bool,
        rollback: bool = False,
    ) -> int:
        await _check_running(client, rollout_id, action, rollback=rollback)
        progress = await answer_from_worker(
            update(client, rollout_id, rollback=rollback), settings, action
        )
        _print_answer(action, progress, as_json=as_json)
        return ExitCode.OK

    return RolloutCommand(action, steer, short_help, help_text)


STEERING = (
    _steering(
        "pause",
        rollouts.pause,
        "Start no new targets until resume.",
        "Start no new targets until resume; targets in flight go on.",
    ),
    _steering(
        "resume",
        rollouts.resume,
        "Go on after a pause, or after a halt.",
        "Go on after a pause, or after a halt (with a fresh failure budget).",
    ),
    _steering(
        "cancel",
        rollouts.cancel,
        "Start nothing more; in-flight meshes end.",
        "Start nothing more; in-flight meshes reach a final phase, the rest count as cancelled.",
    ),
)


async def approve_rollout(
    client: Client, settings: Settings, rollout_id: str, by: str, *, as_json: bool
) -> int:
    """Pass the approval gate the rollout waits at; exit 0 once it accepted.

    A rollout that does not wait at a gate (running, soaking, ended, ...) refuses with the
    reason and exit 1: a pipeline that approves twice learns the second did nothing.
    """
    desc = await describe(client, rollout_id)
    if desc.status != WorkflowExecutionStatus.RUNNING:
        state = await ended(client, rollout_id, desc)
        raise CommandError(
            ExitCode.FAILED,
            f"cannot approve rollout {rollout_id!r}: {ended_phrase(state)}, not awaiting approval",
        )
    await check_workers(client, rollout_id, desc)
    current = await answer_from_worker(rollouts.progress(client, rollout_id), settings, "approve")
    if not rollouts.at_gate(current):
        raise CommandError(
            ExitCode.FAILED,
            f"cannot approve rollout {rollout_id!r}: it is {current.state.value}, "
            "not awaiting approval",
        )
    try:
        progress = await answer_from_worker(
            rollouts.approve(client, rollout_id, by, current), settings, "approve"
        )
    except WorkflowUpdateFailedError as exc:
        # The state moved between the look and the update (a cancel, another approval): the
        # rollout's own reason, and exit 1 like the refusals above rather than the 2 a refused
        # update otherwise means.
        cause = getattr(exc.cause, "message", None) or str(exc.cause)
        raise CommandError(
            ExitCode.FAILED, f"cannot approve rollout {rollout_id!r}: {cause}"
        ) from exc
    _print_answer("approve", progress, as_json=as_json)
    return ExitCode.OK


def approve(
    rollout_id: RolloutIdArg,
    by: Annotated[
        str | None,
        typer.Option(
            "--by",
            metavar="NAME",
            help="Who approves, recorded in the rollout; default: $USER, or 'unknown'.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Pass the approval gate the rollout waits at (strategy.approve_after).

    The next wave starts. Exit 0 once accepted; 1 with the reason when the rollout is not
    awaiting approval.
    """
    check_rollout_id(rollout_id)
    who = (by if by is not None else os.environ.get("USER") or "unknown").strip()
    if not who:
        raise CommandError(ExitCode.INVALID, "--by must name who approves")
    run_with_temporal(
        lambda client, settings: approve_rollout(client, settings, rollout_id, who, as_json=as_json)
    )


def register(app: typer.Typer) -> None:
    """Add ``pause``, ``resume``, ``cancel`` and ``approve`` to ``app``."""
    for steering in STEERING:
        steering.register(app)
    app.command(cls=Command, short_help="Pass the approval gate the rollout waits at.")(approve)
