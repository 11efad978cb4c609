"""``meshfleet validate`` and ``plan``: a manifest checked, and what it would do; no Temporal."""

from __future__ import annotations

import asyncio
import os
from typing import Annotated

import typer

from meshfleet.asm.auth import auth_from_env
from meshfleet.asm.client import AsmClient
from meshfleet.cli.core import Command
from meshfleet.cli.emit import emit_json, emit_lines, note
from meshfleet.cli.errors import ManifestRefusedError
from meshfleet.cli.exit_codes import ExitCode, print_error
from meshfleet.cli.params import (
    ManifestFile,
    RolloutIdOption,
    check_rollout_id,
    extra_regions,
    load_settings,
)
from meshfleet.cli.plan_output import (
    changes_pending,
    manifest_summary,
    plan_counts,
    plan_document,
    plan_notes,
    refusal_lines,
    rollout_plan_table,
    schedule_lines,
    validation_document,
)
from meshfleet.manifest.load import ManifestError, load_manifest
from meshfleet.manifest.schedule import schedule_of
from meshfleet.models import RolloutSpec
from meshfleet.plan import PlannedTarget, plan_rollout
from meshfleet.settings import Settings


def read_manifest(source: str, rollout_id: str | None = None) -> RolloutSpec:
    """The validated manifest, read with the extra regions of ``MESHFLEET_EXTRA_REGIONS``.

    A bad --rollout-id or MESHFLEET_EXTRA_REGIONS is a usage error, said without the manifest's
    name: it is no problem of the file.

    Raises:
        CommandError: exit 2 for a bad --rollout-id or MESHFLEET_EXTRA_REGIONS.
        ManifestRefusedError: every problem of the manifest, for the error wrapper to list (exit 2).
    """
    extra = extra_regions()
    if rollout_id is not None:
        check_rollout_id(rollout_id, what="--rollout-id")
    try:
        return load_manifest(source, rollout_id, extra_regions=extra)
    except ManifestError as exc:
        raise ManifestRefusedError(source, exc) from None


def validate(
    file: ManifestFile,
    rollout_id: RolloutIdOption = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print one JSON document, also when invalid (exit 2): valid, source, "
            "problems[{path, message}], rollout_id, targets, projects, regions[], summary, "
            "schedule{} (the keys after problems null while invalid).",
        ),
    ] = False,
) -> None:
    """Check a manifest, starting nothing.

    Prints a one-line summary (exit 0), or every problem with its path, all at once (exit 2).
    Regions must be ones ASM is served in; MESHFLEET_EXTRA_REGIONS (comma-separated) adds
    others. A bad --rollout-id or MESHFLEET_EXTRA_REGIONS is a usage error: one line on
    standard error, no JSON.
    """
    try:
        spec = read_manifest(file, rollout_id)
    except ManifestRefusedError as refused:
        if not as_json:
            raise
        # With --json the document is the whole answer, the problems included.
        emit_json(validation_document(file, None, refused.error.entries))
        raise typer.Exit(ExitCode.INVALID) from None
    if as_json:
        emit_json(validation_document(file, spec))
    else:
        emit_lines([manifest_summary(file, spec)])


def plan(
    file: ManifestFile,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print one JSON document: rollout_id, total, the count of each action, "
            "adopt, existing, does{create, nothing, adopt, update, upgrade, fail}, "
            "changes_pending, not_compared[], targets[{..., action, does, changes[{path, "
            "before, after}], mesh_version, hops[], refused{code, message}}] in rollout "
            "order, schedule{mode, regions, waves, failure_budget, "
            "soak_s, verify, webhook_host, approve_after}, refused[].",
        ),
    ] = False,
) -> None:
    """Dry run: how the fleet differs from the manifest.

    One list call per project and region, changing nothing. Per target, in the order the
    rollout walks them: create, in_sync, update (the configuration differs: each field on a
    line below), upgrade or downgrade (the mesh runs an older or newer version; an upgrade's
    row shows its path), conflict
    (cluster in mesh Y, or the name used on another cluster), or error (the list call was
    refused: said once per project and region on standard error, with the reason). Below a
    mesh that differs, what a rollout would do with it under strategy.existing. Then, on
    standard error, the counts and the schedule. Reads ASM_ENDPOINT and the ASM credentials
    like the worker. Exit 0 when every target is in sync; 5 when some target is not (a
    rollout has something to do, or would fail it); 1 when a list call was refused; 2 for a
    bad manifest or settings; 3 when ASM does not answer.
    """
    spec = read_manifest(file)
    settings = load_settings()
    schedule = schedule_of(spec.strategy, spec.targets)
    ordered = spec.model_copy(update={"targets": schedule.targets})
    planned = asyncio.run(_plan(ordered, settings))
    existing = spec.strategy.existing
    if as_json:
        emit_json(plan_document(spec, planned, schedule))
    else:
        # A row a target, as pipelines read them; what differs on indented lines below it. The
        # counts and the schedule are for people.
        emit_lines(rollout_plan_table(planned, existing, finalize=spec.strategy.upgrade.finalize))
    # Errors, in either mode: each refused list call once, however many targets it holds.
    for line in refusal_lines(planned):
        print_error(line)
    if not as_json:
        note("\n".join([plan_counts(planned), *plan_notes(planned, existing)]))
        note("\n".join(schedule_lines(schedule)))
    if any(p.action == "error" for p in planned):
        # Part of the fleet went unseen: whether anything is pending cannot be said.
        raise typer.Exit(ExitCode.FAILED)
    if changes_pending(planned):
        raise typer.Exit(ExitCode.CHANGES_PENDING)


async def _plan(spec: RolloutSpec, settings: Settings) -> list[PlannedTarget]:
    auth = auth_from_env(os.environ)
    async with AsmClient(
        auth, endpoint=settings.asm_endpoint, request_timeout=settings.asm_request_timeout_s
    ) as api:
        return await plan_rollout(api, spec.targets)


def register(app: typer.Typer) -> None:
    """Add ``validate`` and ``plan`` to ``app``."""
    app.command(cls=Command)(validate)
    app.command(cls=Command)(plan)
