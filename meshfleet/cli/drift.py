"""``meshfleet drift``: how the fleet stands against its manifest, now or on a schedule.

``drift FILE`` judges every target once, as ``plan`` does, and lists what is not in sync;
``drift FILE --every 6h --name NAME`` saves a Temporal Schedule that runs the same check on the
worker; ``--list`` and ``--delete NAME`` look at and remove those schedules.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from temporalio.client import Client

from meshfleet import rollouts
from meshfleet.asm.auth import auth_from_env
from meshfleet.asm.client import AsmClient
from meshfleet.cli.core import Command
from meshfleet.cli.emit import emit_json, emit_lines, note
from meshfleet.cli.exit_codes import CommandError, ExitCode, print_error
from meshfleet.cli.manifests import read_manifest
from meshfleet.cli.params import load_settings
from meshfleet.cli.plan_output import REFUSAL_KEYS, refusal_lines
from meshfleet.cli.tables import table
from meshfleet.cli.temporal import run_with_temporal
from meshfleet.contract.drift import DriftReport
from meshfleet.drift_check import drift_report, judge_fleet
from meshfleet.drift_schedules import (
    ListedSchedule,
    NoSuchDriftScheduleError,
    SavedSchedule,
    delete_drift_schedule,
    drift_name_problem,
    every_problem,
    list_drift_schedules,
    save_drift_schedule,
)
from meshfleet.manifest.durations import format_duration, parse_duration
from meshfleet.manifest.schedule import count_of, schedule_of
from meshfleet.models import MeshTarget, RolloutSpec
from meshfleet.plan import PlannedTarget, refusals_of
from meshfleet.settings import Settings
from meshfleet.timestamps import utc_or_none, utc_text

LIST_KEYS = (
    "name",
    "schedule_id",
    "every",
    "every_s",
    "source",
    "targets",
    "pages",
    "paused",
    "note",
    "webhook",
    "next_run",
    "last_run",
)
"""The keys of each entry of ``drift --list --json``, in order."""


def ordered_targets(spec: RolloutSpec) -> list[MeshTarget]:
    """The targets in the order a rollout walks them, as ``plan`` lists them."""
    return schedule_of(spec.strategy, spec.targets).targets


def drift_document(source: str, report: DriftReport, planned: list[PlannedTarget]) -> Any:
    """``drift FILE --json``: the source, the report's counts and drifted targets, and each
    refused list call once."""
    return {
        "source": source,
        **report.document(),
        "refused": [
            {key: getattr(refusal, key) for key in REFUSAL_KEYS} for refusal in refusals_of(planned)
        ],
    }


def drift_exit_code(report: DriftReport) -> ExitCode:
    """1 when a list call was refused (as ``plan``); 5 when anything is not in sync; else 0."""
    if report.error:
        return ExitCode.FAILED
    return ExitCode.CHANGES_PENDING if report.not_in_sync else ExitCode.OK


async def _judge(spec: RolloutSpec, settings: Settings) -> list[PlannedTarget]:
    auth = auth_from_env(os.environ)
    async with AsmClient(
        auth, endpoint=settings.asm_endpoint, request_timeout=settings.asm_request_timeout_s
    ) as api:
        return await judge_fleet(api, ordered_targets(spec))


def check_once(file: str, *, as_json: bool) -> NoReturn:
    """One check, here and now: the report on standard output, the exit code it means."""
    spec = read_manifest(file)
    settings = load_settings()
    planned = asyncio.run(_judge(spec, settings))
    report = drift_report(planned)
    if as_json:
        emit_json(drift_document(file, report, planned))
    else:
        emit_lines(report.lines())
    for line in refusal_lines(planned):
        print_error(line)
    raise typer.Exit(drift_exit_code(report))


def saved_document(saved: SavedSchedule) -> dict[str, Any]:
    """``drift FILE --every ... --name NAME --json``: the schedule as saved."""
    inp = saved.input
    return {
        "name": saved.name,
        "schedule_id": saved.schedule_id,
        "created": saved.created,
        "every": format_duration(saved.every_s),
        "every_s": saved.every_s,
        "source": saved.source,
        "targets": inp.total,
        "pages": inp.pages,
        "page_size": inp.page_size,
        "digest": inp.digest,
        "webhook": inp.webhook,
        "old_pages_terminated": saved.old_pages_terminated,
        "next_run": utc_or_none(saved.next_run),
    }


def saved_line(saved: SavedSchedule) -> str:
    """``created drift schedule nightly (drift/nightly): 10 targets of fleet.yaml every 6h, in 1
    page; next run 2026-12-07T00:00:00Z``."""
    inp = saved.input
    verb = "created" if saved.created else "updated"
    line = (
        f"{verb} drift schedule {saved.name} ({saved.schedule_id}): {count_of(inp.total)} of "
        f"{saved.source} every {format_duration(saved.every_s)}, in {count_of(inp.pages, 'page')}"
        f"; next run {utc_text(saved.next_run)}"
    )
    if saved.old_pages_terminated:
        line += (
            f"; {count_of(saved.old_pages_terminated, 'page')} of its previous targets terminated"
        )
    return line


async def save(
    client: Client,
    settings: Settings,
    spec: RolloutSpec,
    *,
    name: str,
    every_s: float,
    source: str,
    as_json: bool,
) -> int:
    """Create the schedule, or update it, and say what it now checks."""
    notify = spec.strategy.notify
    try:
        saved = await save_drift_schedule(
            client,
            name,
            ordered_targets(spec),
            every_s=every_s,
            source=source,
            task_queue=settings.task_queue,
            webhook=notify.webhook if notify is not None else None,
        )
    except NoSuchDriftScheduleError as exc:
        # A schedule of that id that runs something else: never overwritten.
        raise CommandError(ExitCode.INVALID, f"--name {name}: {exc}") from None
    if as_json:
        emit_json(saved_document(saved))
    else:
        emit_lines([saved_line(saved)])
    if saved.input.webhook:
        note(
            "drift found is posted to the notify webhook: the worker posts only under "
            "MESHFLEET_VERIFY_ALLOWED_URLS, with MESHFLEET_NOTIFY_TOKEN as its bearer token"
        )
    if not await rollouts.has_workers(client, settings.task_queue):
        note(
            f"no worker is polling task queue {settings.task_queue!r}: checks wait until one "
            "starts (`meshfleet worker`)"
        )
    return ExitCode.OK


def listed_document(found: list[ListedSchedule]) -> list[dict[str, Any]]:
    """``drift --list --json``: every schedule, its last run's counts (null before any)."""
    documents = []
    for s in found:
        last = s.last_run
        last_document: dict[str, Any] | None = None
        if last is not None:
            last_document = {
                "workflow_id": last.workflow_id,
                "run_id": last.run_id,
                "started": utc_or_none(last.started),
                "status": last.status,
            }
            if last.report is not None:
                last_document["checked_at"] = last.report.checked_at
                last_document["total"] = last.report.total
                last_document["not_in_sync"] = last.report.not_in_sync
                last_document.update(last.report.counts())
        documents.append(
            {
                "name": s.name,
                "schedule_id": s.schedule_id,
                "every": format_duration(s.every_s) if s.every_s is not None else None,
                "every_s": s.every_s,
                "source": s.source,
                "targets": s.input.total,
                "pages": s.input.pages,
                "paused": s.paused,
                "note": s.note,
                "webhook": s.input.webhook,
                "next_run": utc_or_none(s.next_run),
                "last_run": last_document,
            }
        )
    return documents


def _result(s: ListedSchedule) -> str:
    last = s.last_run
    if last is None:
        return "-"
    if last.report is None:
        return last.status
    report = last.report
    if not report.not_in_sync:
        return "in sync"
    return f"{report.not_in_sync} of {report.total} drifted"


def _next_run(s: ListedSchedule) -> str:
    if not s.paused:
        return utc_text(s.next_run)
    return f"paused ({s.note})" if s.note else "paused"


def listed_lines(found: list[ListedSchedule]) -> list[str]:
    """The table of ``drift --list``: a row per schedule, paused ones said so in NEXT RUN."""
    return table(
        ("NAME", "EVERY", "TARGETS", "LAST RUN", "RESULT", "NEXT RUN", "SOURCE"),
        (
            (
                s.name,
                format_duration(s.every_s) if s.every_s is not None else "-",
                str(s.input.total),
                utc_text(s.last_run.started if s.last_run else None),
                _result(s) + (" (running now)" if s.running else ""),
                _next_run(s),
                s.source or "-",
            )
            for s in found
        ),
    )


async def list_schedules(client: Client, settings: Settings, *, as_json: bool) -> int:
    """Every drift schedule, by name."""
    found = await list_drift_schedules(client)
    if as_json:
        emit_json(listed_document(found))
    elif not found:
        note(f"no drift schedules on namespace {client.namespace!r}")
    else:
        emit_lines(listed_lines(found))
    return ExitCode.OK


async def delete(client: Client, settings: Settings, *, name: str) -> int:
    """Delete the schedule and end the page workflows that keep its targets."""
    try:
        ended = await delete_drift_schedule(client, name)
    except NoSuchDriftScheduleError as exc:
        raise CommandError(
            ExitCode.INVALID, f"{exc} (`meshfleet drift --list` names the drift schedules)"
        ) from None
    note(f"deleted drift schedule {name}; {count_of(ended, 'page')} of its targets terminated")
    return ExitCode.OK


def _usage(message: str) -> CommandError:
    return CommandError(ExitCode.INVALID, f"{message} (see 'meshfleet drift --help')")


def _name(value: str, what: str) -> str:
    problem = drift_name_problem(value)
    if problem is not None:
        raise CommandError(ExitCode.INVALID, f"{what}: {problem}")
    return value


def _every(value: str) -> float:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise CommandError(ExitCode.INVALID, f"--every: {exc}") from None
    problem = every_problem(seconds)
    if problem is not None:
        raise CommandError(ExitCode.INVALID, f"--every: {problem}")
    return seconds


def drift(
    file: Annotated[
        str | None,
        typer.Argument(
            metavar="FILE",
            help="The manifest, YAML or JSON; '-' reads stdin. Not with --list or --delete.",
            show_default=False,
        ),
    ] = None,
    every: Annotated[
        str | None,
        typer.Option(
            "--every",
            metavar="DURATION",
            help="Save a schedule (with --name) that checks FILE's targets this often on the "
            "worker: '6h', '30m', '1h30m'; at least 1m.",
        ),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            metavar="NAME",
            help="The schedule's name (schedule id drift/NAME); saving it again updates it.",
        ),
    ] = None,
    list_: Annotated[
        bool,
        typer.Option("--list", help="List the drift schedules: last run, its result, next run."),
    ] = False,
    delete_name: Annotated[
        str | None,
        typer.Option(
            "--delete",
            metavar="NAME",
            help="Delete the drift schedule NAME and the stored pages of its targets.",
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print one JSON document. A check: source, total, not_in_sync, in_sync, "
            "missing, update, upgrade, downgrade, conflict, error, drifted[{project_id, region, "
            "cluster_id, mesh_name, judgement, changes[{path, before, after}], mesh_version, "
            "detail}], unlisted, refused[]. --list: a list of {name, schedule_id, every, "
            "every_s, source, targets, pages, paused, note, webhook, next_run, last_run}.",
        ),
    ] = False,
) -> None:
    """Which targets are not in sync with the manifest.

    Changes nothing. One list call per project and region, as `plan` makes; each target is in
    sync, missing, an update (each differing field listed below it), an upgrade or a downgrade
    (the versions), a conflict, or an error (its list call refused, said once on standard
    error). At most 200 are listed; the counts are whole. Exit 0 when every target is in sync;
    5 when any is not; 1 when a list call was refused; 2 for a bad manifest or usage; 3 when
    ASM or Temporal does not answer.

    With --every and --name, saves a Temporal Schedule (drift/NAME) that runs the same check
    on the worker, read-only, and posts what drifted to strategy.notify.webhook when there is
    one; saving it again with a changed manifest updates it. --list shows the schedules, and
    --delete NAME removes one.
    """
    if list_ or delete_name is not None:
        if file is not None or every is not None or name is not None:
            raise _usage("--list and --delete take no FILE, --every or --name")
        if list_ and delete_name is not None:
            raise _usage("--list and --delete go alone")
        if list_:
            run_with_temporal(
                lambda client, settings: list_schedules(client, settings, as_json=as_json)
            )
        target = _name(delete_name or "", "--delete")
        run_with_temporal(lambda client, settings: delete(client, settings, name=target))
    if file is None:
        raise _usage("missing FILE, or --list, or --delete NAME")
    if every is None and name is None:
        check_once(file, as_json=as_json)
    if every is None or name is None:
        raise _usage("--every and --name go together: a schedule needs both")
    every_s = _every(every)
    schedule_name = _name(name, "--name")
    spec = read_manifest(file)
    run_with_temporal(
        lambda client, settings: save(
            client,
            settings,
            spec,
            name=schedule_name,
            every_s=every_s,
            source=file if file == "-" else str(Path(file).resolve()),
            as_json=as_json,
        )
    )


def register(app: typer.Typer) -> None:
    """Add ``drift`` to ``app``."""
    app.command(cls=Command)(drift)
