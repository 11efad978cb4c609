"""Finding a rollout (or its rollback) on Temporal and following it: what it is, where it
stands, and a watch until it ends or waits for a person. Every command on a rollout uses these.
"""

from __future__ import annotations

from rich.console import Console
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from meshfleet import rollouts
from meshfleet.cli.emit import emit_json, emit_lines, note
from meshfleet.cli.exit_codes import CommandError, ExitCode
from meshfleet.cli.output import report_document, report_lines, rollout_exit_code
from meshfleet.cli.progress import progress_view
from meshfleet.cli.temporal import answer_from_worker
from meshfleet.models import RolloutProgress, RolloutState
from meshfleet.settings import Settings


def ui_address(
    client: Client, settings: Settings, rollout_id: str, *, rollback: bool = False
) -> str:
    """The rollout's (or its rollback's) page in the Temporal Web UI."""
    workflow_id = rollouts.workflow_id_of(rollout_id, rollback=rollback)
    return rollouts.ui_url(settings.ui_url, client.namespace, workflow_id)


def _no_such(rollout_id: str, rollback: bool) -> str:
    return f"no rollback of rollout {rollout_id!r}" if rollback else f"no rollout {rollout_id!r}"


def _not_found(exc: BaseException) -> bool:
    return isinstance(exc, RPCError) and exc.status == RPCStatusCode.NOT_FOUND


async def describe(
    client: Client, rollout_id: str, *, rollback: bool = False
) -> WorkflowExecutionDescription:
    """The rollout's workflow execution, as Temporal describes it.

    Raises:
        CommandError: exit 2 when there is no such rollout. Describe needs no worker, so an
            unknown rollout is refused at once, with its name.
    """
    try:
        return await rollouts.rollout_handle(client, rollout_id, rollback=rollback).describe()
    except RPCError as exc:
        if _not_found(exc):
            raise CommandError(ExitCode.INVALID, _no_such(rollout_id, rollback)) from exc
        raise


async def check_workers(
    client: Client, rollout_id: str, desc: WorkflowExecutionDescription
) -> None:
    """Queries and updates are answered by a worker: without one, say so now (exit 3) rather
    than after ``WORKER_ANSWER_S``.

    Raises:
        CommandError: exit 3 when no worker polls the rollout's task queue.
    """
    if not await rollouts.has_workers(client, desc.task_queue):
        raise CommandError(
            ExitCode.UNREACHABLE,
            f"rollout {rollout_id!r} runs, but no worker polls its task queue "
            f"{desc.task_queue!r} to answer (`meshfleet worker`)",
        )


async def ended(
    client: Client, rollout_id: str, desc: WorkflowExecutionDescription, *, rollback: bool = False
) -> str:
    """How a rollout that no longer runs ended: its final state, or Temporal's reason."""
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


async def fetch_progress(
    client: Client, settings: Settings, rollout_id: str, *, rollback: bool = False
) -> RolloutProgress:
    """The rollout's progress, or its report once it ended.

    Raises:
        CommandError: exit 2 when there is no such rollout; exit 3 when it runs but no worker
            polls its task queue to answer.
    """
    desc = await describe(client, rollout_id, rollback=rollback)
    if desc.status == WorkflowExecutionStatus.RUNNING:
        await check_workers(client, rollout_id, desc)
    try:
        return await answer_from_worker(
            rollouts.progress(client, rollout_id, rollback=rollback), settings, "progress"
        )
    except RPCError as exc:
        if _not_found(exc):
            raise CommandError(ExitCode.INVALID, _no_such(rollout_id, rollback)) from exc
        raise


def print_report(report: RolloutProgress, *, as_json: bool) -> None:
    """The report on standard output: the ``--json`` document, or lines for people."""
    if as_json:
        emit_json(report_document(report))
    else:
        emit_lines(report_lines(report))


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
    print_report(report, as_json=as_json)
    if rollouts.at_gate(report):
        note(
            f"rollout {rollout_id} waits for approval: `meshfleet approve {rollout_id}`, "
            f"then `meshfleet wait {rollout_id}`"
        )
    elif rollouts.at_finalize(report):
        note(
            f"rollout {rollout_id} waits to finalize {report.upgraded - report.finalized} "
            f"upgraded mesh(es): `meshfleet finalize {rollout_id}`, then `meshfleet wait "
            f"{rollout_id}`; or `meshfleet cancel {rollout_id}` and `meshfleet rollback "
            f"{rollout_id}` to roll them back"
        )
    elif report.state == RolloutState.HALTED:
        flag = " --rollback" if rollback else ""
        what = "the rollback of rollout" if rollback else "rollout"
        note(
            f"{what} {rollout_id} halted: `meshfleet resume {rollout_id}{flag}` (then "
            f"`meshfleet wait {rollout_id}{flag}`) or `meshfleet cancel {rollout_id}{flag}`"
        )
    return rollout_exit_code(report)
