"""The CLI commands that drive rollouts through Temporal: start, watch, report, steer."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from temporalio.client import (
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowUpdateFailedError,
)
from temporalio.common import SearchAttributeIndexedValueType
from temporalio.service import RPCError, RPCStatusCode

from meshfleet import rollouts
from meshfleet.cli.exit_codes import CommandError, ExitCode
from meshfleet.cli.output import (
    progress_line,
    report_document,
    report_lines,
    rollout_exit_code,
)
from meshfleet.cli.progress import progress_view
from meshfleet.cli.temporal import answer_from_worker
from meshfleet.contract import search_attributes as sa
from meshfleet.manifest.schedule import count_of
from meshfleet.models import RolloutProgress, RolloutSpec, RolloutState
from meshfleet.rollout_id import rollout_id_problem
from meshfleet.rollout_identity import RolloutIdReusedError
from meshfleet.settings import Settings


def note(message: str) -> None:
    """A line for people on standard error; standard output keeps to results."""
    print(message, file=sys.stderr, flush=True)


def emit_json(document: Any) -> None:
    """One JSON document on standard output."""
    print(json.dumps(document, indent=2, ensure_ascii=False), flush=True)


def check_rollout_id(rollout_id: str, *, what: str | None = None) -> str:
    """The id, if it can name a rollout.

    Args:
        rollout_id: The id as given.
        what: Where it was given (``ROLLOUT_ID``, ``--rollout-id``), to start the message with.

    Raises:
        CommandError: exit 2.
    """
    problem = rollout_id_problem(rollout_id)
    if problem is not None:
        raise CommandError(ExitCode.INVALID, problem if what is None else f"{what}: {problem}")
    return rollout_id


def ui_address(
    client: Client, settings: Settings, rollout_id: str, *, rollback: bool = False
) -> str:
    """The rollout's (or its rollback's) page in the Temporal Web UI."""
    workflow_id = rollouts.workflow_id_of(rollout_id, rollback=rollback)
    return rollouts.ui_url(settings.ui_url, client.namespace, workflow_id)


async def fetch_progress(
    client: Client, settings: Settings, rollout_id: str, *, rollback: bool = False
) -> RolloutProgress:
    """The rollout's progress, or its report once it ended.

    Raises:
        CommandError: exit 2 when there is no such rollout; exit 3 when it runs but no worker
            polls its task queue to answer.
    """
    desc = await _describe(client, rollout_id, rollback=rollback)
    if desc.status == WorkflowExecutionStatus.RUNNING:
        await _check_workers(client, rollout_id, desc)
    try:
        return await answer_from_worker(
            rollouts.progress(client, rollout_id, rollback=rollback), settings, "progress"
        )
    except RPCError as exc:
        if _not_found(exc):
            raise CommandError(ExitCode.INVALID, _no_such(rollout_id, rollback)) from exc
        raise


def _no_such(rollout_id: str, rollback: bool) -> str:
    return f"no rollback of rollout {rollout_id!r}" if rollback else f"no rollout {rollout_id!r}"


async def _describe(
    client: Client, rollout_id: str, *, rollback: bool = False
) -> WorkflowExecutionDescription:
    # Describe needs no worker: an unknown rollout is refused at once, with its name.
    try:
        return await rollouts.rollout_handle(client, rollout_id, rollback=rollback).describe()
    except RPCError as exc:
        if _not_found(exc):
            raise CommandError(ExitCode.INVALID, _no_such(rollout_id, rollback)) from exc
        raise


async def _check_workers(
    client: Client, rollout_id: str, desc: WorkflowExecutionDescription
) -> None:
    # Queries and updates are answered by a worker: without one, say so now (exit 3) rather
    # than after WORKER_ANSWER_S.
    if not await rollouts.has_workers(client, desc.task_queue):
        raise CommandError(
            ExitCode.UNREACHABLE,
            f"rollout {rollout_id!r} runs, but no worker polls its task queue "
            f"{desc.task_queue!r} to answer (`meshfleet worker`)",
        )


def _not_found(exc: BaseException) -> bool:
    return isinstance(exc, RPCError) and exc.status == RPCStatusCode.NOT_FOUND


async def _check_running(
    client: Client, rollout_id: str, action: str, *, rollback: bool = False
) -> None:
    # An ended rollout is refused with a reason instead of "workflow execution already
    # completed", and without waiting for a worker.
    desc = await _describe(client, rollout_id, rollback=rollback)
    if desc.status != WorkflowExecutionStatus.RUNNING:
        ended = await _ended(client, rollout_id, desc, rollback=rollback)
        what = "the rollback of rollout" if rollback else "rollout"
        raise CommandError(
            ExitCode.INVALID, f"cannot {action} {what} {rollout_id!r}: {ended_phrase(ended)}"
        )
    await _check_workers(client, rollout_id, desc)


async def _ended(
    client: Client, rollout_id: str, desc: WorkflowExecutionDescription, *, rollback: bool = False
) -> str:
    handle = rollouts.rollout_handle(client, rollout_id, rollback=rollback)
    return await rollouts.ended_state(handle, desc.status)


_PHRASES = {
    RolloutState.COMPLETED.value: "it has completed",
    RolloutState.FAILED.value: "it has failed",
    RolloutState.CANCELLED.value: "it was cancelled",
    "terminated": "it was terminated",
    "timed out": "it timed out",
}


def ended_phrase(state: str) -> str:
    """``it was cancelled``: how a refusal says the way a rollout ended."""
    return _PHRASES.get(state, f"it has ended ({state})")


async def start(
    client: Client, settings: Settings, spec: RolloutSpec, *, wait: bool, as_json: bool
) -> int:
    """Start the rollout, or attach to the one with the same id; with ``wait``, watch it end."""
    try:
        started = await rollouts.start_rollout(client, spec, task_queue=settings.task_queue)
    except RolloutIdReusedError as exc:
        raise CommandError(ExitCode.INVALID, str(exc)) from None
    if started.started:
        note(f"started rollout {spec.rollout_id}: {count_of(len(spec.targets))}")
    else:
        desc = await _describe(client, spec.rollout_id)
        state = (
            "running"
            if desc.status == WorkflowExecutionStatus.RUNNING
            else await _ended(client, spec.rollout_id, desc)
        )
        note(f"rollout {spec.rollout_id} already exists ({state}): attached, nothing new started")
    note(f"Temporal UI: {ui_address(client, settings, spec.rollout_id)}")
    if not started.search_attributes:
        note(
            "search attributes are not registered, so the UI cannot filter by rollout: "
            "`meshfleet search-attributes --register`"
        )
    if not await rollouts.has_workers(client, settings.task_queue):
        note(
            f"no worker is polling task queue {settings.task_queue!r}: the rollout waits "
            "until one starts (`meshfleet worker`)"
        )
    if not wait:
        if as_json:
            emit_json(report_document(await _start_progress(client, settings, spec, started)))
        return ExitCode.OK
    return await watch(client, settings, spec.rollout_id, as_json=as_json)


async def _start_progress(
    client: Client, settings: Settings, spec: RolloutSpec, started: rollouts.StartedRollout
) -> RolloutProgress:
    if not started.started:
        return await fetch_progress(client, settings, spec.rollout_id)
    # Just started: nothing has happened yet, and no worker needs to answer for that.
    total = len(spec.targets)
    return RolloutProgress(
        rollout_id=spec.rollout_id,
        state=RolloutState.RUNNING,
        total=total,
        created=0,
        adopted=0,
        failed=0,
        cancelled=0,
        in_flight=0,
        pending=total,
        wave=1,
        waves=len(spec.strategy.wave_ends(total)),
        failure_budget=spec.strategy.failure_budget(total),
    )


async def watch(
    client: Client, settings: Settings, rollout_id: str, *, as_json: bool, rollback: bool = False
) -> int:
    """Show progress on standard error until the rollout ends or waits for a person (at an
    approval gate, or halted); print its report; its exit code (4 at a gate, 1 halted)."""
    view = progress_view(Console(stderr=True))
    try:
        report = await rollouts.wait_for_report(
            client,
            rollout_id,
            on_progress=view.show,
            stop_when=rollouts.waits_for_a_person,
            rollback=rollback,
        )
    finally:
        view.close()
    _print_report(report, as_json=as_json)
    if rollouts.at_gate(report):
        note(
            f"rollout {rollout_id} waits for approval: `meshfleet approve {rollout_id}`, "
            f"then `meshfleet wait {rollout_id}`"
        )
    elif report.state == RolloutState.HALTED:
        flag = " --rollback" if rollback else ""
        what = "the rollback of rollout" if rollback else "rollout"
        note(
            f"{what} {rollout_id} halted: `meshfleet resume {rollout_id}{flag}` (then "
            f"`meshfleet wait {rollout_id}{flag}`) or `meshfleet cancel {rollout_id}{flag}`"
        )
    return rollout_exit_code(report)


async def wait(
    client: Client, settings: Settings, rollout_id: str, *, as_json: bool, rollback: bool = False
) -> int:
    """Attach to a rollout and watch it as ``start --wait`` does: same output, same exit codes."""
    desc = await _describe(client, check_rollout_id(rollout_id), rollback=rollback)
    note(f"Temporal UI: {ui_address(client, settings, rollout_id, rollback=rollback)}")
    if desc.status == WorkflowExecutionStatus.RUNNING and not await rollouts.has_workers(
        client, desc.task_queue
    ):
        note(
            f"no worker is polling task queue {desc.task_queue!r}: the rollout waits "
            "until one starts (`meshfleet worker`)"
        )
    return await watch(client, settings, rollout_id, as_json=as_json, rollback=rollback)


def _print_report(report: RolloutProgress, *, as_json: bool) -> None:
    if as_json:
        emit_json(report_document(report))
    else:
        print("\n".join(report_lines(report)), flush=True)


async def status(
    client: Client, settings: Settings, rollout_id: str, *, as_json: bool, rollback: bool = False
) -> int:
    """One line on where the rollout stands."""
    progress = await fetch_progress(
        client, settings, check_rollout_id(rollout_id), rollback=rollback
    )
    if as_json:
        emit_json(report_document(progress))
    else:
        print(progress_line(progress), flush=True)
        note(f"Temporal UI: {ui_address(client, settings, rollout_id, rollback=rollback)}")
    return rollout_exit_code(progress)


async def report(
    client: Client, settings: Settings, rollout_id: str, *, as_json: bool, rollback: bool = False
) -> int:
    """The report (or the progress so far) with every failure."""
    progress = await fetch_progress(
        client, settings, check_rollout_id(rollout_id), rollback=rollback
    )
    _print_report(progress, as_json=as_json)
    return rollout_exit_code(progress)


_STEERING = {"pause": rollouts.pause, "resume": rollouts.resume, "cancel": rollouts.cancel}


async def steer(
    client: Client,
    settings: Settings,
    action: str,
    rollout_id: str,
    *,
    as_json: bool,
    rollback: bool = False,
) -> int:
    """Pause, resume or cancel (a rollout, or its rollback); exit 0 once it accepted."""
    await _check_running(client, check_rollout_id(rollout_id), action, rollback=rollback)
    progress = await answer_from_worker(
        _STEERING[action](client, rollout_id, rollback=rollback), settings, action
    )
    if as_json:
        emit_json(report_document(progress))
    else:
        print(f"{action}: {progress_line(progress)}", flush=True)
    return ExitCode.OK


async def approve(
    client: Client, settings: Settings, rollout_id: str, by: str, *, as_json: bool
) -> int:
    """Pass the approval gate the rollout waits at; exit 0 once it accepted.

    A rollout that does not wait at a gate (running, soaking, ended, ...) refuses with the
    reason and exit 1: a pipeline that approves twice learns the second did nothing.
    """
    who = by.strip()
    if not who:
        raise CommandError(ExitCode.INVALID, "--by must name who approves")
    desc = await _describe(client, check_rollout_id(rollout_id))
    if desc.status != WorkflowExecutionStatus.RUNNING:
        ended = await _ended(client, rollout_id, desc)
        raise CommandError(
            ExitCode.FAILED,
            f"cannot approve rollout {rollout_id!r}: {ended_phrase(ended)}, not awaiting approval",
        )
    await _check_workers(client, rollout_id, desc)
    current = await answer_from_worker(rollouts.progress(client, rollout_id), settings, "approve")
    if not rollouts.at_gate(current):
        raise CommandError(
            ExitCode.FAILED,
            f"cannot approve rollout {rollout_id!r}: it is {current.state.value}, "
            "not awaiting approval",
        )
    try:
        progress = await answer_from_worker(
            rollouts.approve(client, rollout_id, who, current), settings, "approve"
        )
    except WorkflowUpdateFailedError as exc:
        # The state moved between the look and the update (a cancel, another approval): the
        # rollout's own reason.
        cause = getattr(exc.cause, "message", None) or str(exc.cause)
        raise CommandError(
            ExitCode.FAILED, f"cannot approve rollout {rollout_id!r}: {cause}"
        ) from exc
    if as_json:
        emit_json(report_document(progress))
    else:
        print(f"approve: {progress_line(progress)}", flush=True)
    return ExitCode.OK


# The type names of `temporal operator search-attribute create --type`.
_TYPE_NAMES = {
    SearchAttributeIndexedValueType.TEXT: "Text",
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.INT: "Int",
    SearchAttributeIndexedValueType.DOUBLE: "Double",
    SearchAttributeIndexedValueType.BOOL: "Bool",
    SearchAttributeIndexedValueType.DATETIME: "Datetime",
    SearchAttributeIndexedValueType.KEYWORD_LIST: "KeywordList",
}


def search_attribute_lines() -> list[str]:
    """``Name=Type`` of each custom search attribute."""
    return [f"{key.name}={_TYPE_NAMES[key.indexed_value_type]}" for key in sa.ALL]


async def register_search_attributes(client: Client, settings: Settings) -> int:
    """Create the missing search attributes on the connected namespace."""
    added = await rollouts.register_search_attributes(client)
    if added:
        note(f"registered on namespace {client.namespace!r}: {', '.join(added)}")
    else:
        note(f"all already registered on namespace {client.namespace!r}")
    print("\n".join(search_attribute_lines()), flush=True)
    return ExitCode.OK
