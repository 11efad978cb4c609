"""Steering a running rollout: ``pause``, ``resume`` and ``cancel`` from one table, and the
two gates a person passes, ``approve`` and ``finalize``.

The three steering commands differ only in their name, their help and the update they send:
each is a row of ``STEERING``. ``approve`` and ``finalize`` name who passes the gate (``--by``),
have no ``--rollback`` (a rollback has no gates), and a rollout that does not wait there refuses
with exit 1, not 2.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class _Gate:
    """A state only a person moves a rollout out of, and the update that does."""

    command: str
    waiting: str
    """How the refusal names the state: ``awaiting approval``."""
    at: Callable[[RolloutProgress], bool]
    send: Callable[[Client, str, str, RolloutProgress], Awaitable[RolloutProgress]]


APPROVAL = _Gate("approve", "awaiting approval", rollouts.at_gate, rollouts.approve)
FINALIZE = _Gate("finalize", "awaiting finalize", rollouts.at_finalize, rollouts.finalize)


async def pass_gate(
    client: Client, settings: Settings, gate: _Gate, rollout_id: str, by: str, *, as_json: bool
) -> int:
    """Pass the gate the rollout waits at; exit 0 once it accepted.

    A rollout that does not wait there (running, soaking, ended, ...) refuses with the reason
    and exit 1: a pipeline that approves (or finalizes) twice learns the second did nothing.
    """
    action = gate.command
    desc = await describe(client, rollout_id)
    if desc.status != WorkflowExecutionStatus.RUNNING:
        state = await ended(client, rollout_id, desc)
        raise CommandError(
            ExitCode.FAILED,
            f"cannot {action} rollout {rollout_id!r}: {ended_phrase(state)}, not {gate.waiting}",
        )
    await check_workers(client, rollout_id, desc)
    current = await answer_from_worker(rollouts.progress(client, rollout_id), settings, action)
    if not gate.at(current):
        raise CommandError(
            ExitCode.FAILED,
            f"cannot {action} rollout {rollout_id!r}: it is {current.state.value}, "
            f"not {gate.waiting}",
        )
    try:
        progress = await answer_from_worker(
            gate.send(client, rollout_id, by, current), settings, action
        )
    except WorkflowUpdateFailedError as exc:
        # The state moved between the look and the update (a cancel, another approval): the
        # rollout's own reason, and exit 1 like the refusals above rather than the 2 a refused
        # update otherwise means.
        cause = getattr(exc.cause, "message", None) or str(exc.cause)
        raise CommandError(
            ExitCode.FAILED, f"cannot {action} rollout {rollout_id!r}: {cause}"
        ) from exc
    _print_answer(action, progress, as_json=as_json)
    return ExitCode.OK


def _who(by: str | None, what: str) -> str:
    who = (by if by is not None else os.environ.get("USER") or "unknown").strip()
    if not who:
        raise CommandError(ExitCode.INVALID, f"--by must name who {what}")
    return who


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
    who = _who(by, "approves")
    run_with_temporal(
        lambda client, settings: pass_gate(
            client, settings, APPROVAL, rollout_id, who, as_json=as_json
        )
    )


def finalize(
    rollout_id: RolloutIdArg,
    by: Annotated[
        str | None,
        typer.Option(
            "--by",
            metavar="NAME",
            help="Who finalizes, recorded in the rollout's history; default: $USER, or 'unknown'.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Finalize the upgraded meshes of a rollout that waits for it (strategy.upgrade.finalize:
    manual).

    Each upgraded mesh's old control plane is uninstalled, in the rollout's waves; after that
    ASM cannot roll the upgrade back. Exit 0 once accepted; 1 with the reason when the rollout
    is not awaiting finalize.
    """
    check_rollout_id(rollout_id)
    who = _who(by, "finalizes")
    run_with_temporal(
        lambda client, settings: pass_gate(
            client, settings, FINALIZE, rollout_id, who, as_json=as_json
        )
    )


def register(app: typer.Typer) -> None:
    """Add ``pause``, ``resume``, ``cancel``, ``approve`` and ``finalize`` to ``app``."""
    for steering in STEERING:
        steering.register(app)
    app.command(cls=Command, short_help="Pass the approval gate the rollout waits at.")(approve)
    app.command(cls=Command, short_help="Finalize the upgraded meshes a rollout waits with.")(
        finalize
    )
