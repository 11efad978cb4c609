"""What the CLI prints: manifest summaries, plans, and rollout progress, reports and documents."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from meshfleet.cli.exit_codes import ExitCode
from meshfleet.manifest.durations import format_duration
from meshfleet.manifest.load import describe_schedule, progressive_parts
from meshfleet.manifest.schedule import Schedule, ScheduledWave, count_of, schedule_of
from meshfleet.models import (
    RolloutProgress,
    RolloutSpec,
    RolloutState,
    TargetFailure,
    failure_summary,
)
from meshfleet.plan import PLAN_ACTIONS, PlannedTarget, Refusal, refusals_of
from meshfleet.timestamps import utc_text

# The --json contract: pipelines parse it, so keys are only ever added, and only by agreement.
REPORT_KEYS = (
    "rollout_id",
    "state",
    "total",
    "created",
    "adopted",
    "failed",
    "cancelled",
    "pending",
)
"""created + adopted + failed + cancelled + pending = total."""
FAILURE_KEYS = ("project_id", "region", "cluster_id", "mesh_name", "error_code", "message")
# Added with progressive delivery, after ``failures``; present in every document (null or []).
PROGRESSIVE_KEYS = ("region", "soaking_until", "halted_region", "halt_reason", "approvals")
APPROVAL_KEYS = ("wave", "region", "by", "at")
# States that exit 1 whatever the counts say (docs/rollout-states.md).
_NOT_AS_PLANNED = (
    RolloutState.HALTED,
    RolloutState.CANCELLING,
    RolloutState.CANCELLED,
    RolloutState.FAILED,
)


def manifest_summary(source: str | None, spec: RolloutSpec) -> str:
    """One line on a valid manifest: targets, projects, regions, waves and the rollout id.

    Args:
        source: The manifest's name, to start the line with ``SOURCE: valid:``; None for the
            summary alone (``validate --json``).
        spec: The validated manifest.
    """
    targets = spec.targets
    projects = count_of(len({t.project_id for t in targets}), "project")
    regions = count_of(len({t.region for t in targets}), "region")
    summary = (
        f"{count_of(len(targets))} in {projects} and {regions}; "
        f"{describe_schedule(spec.strategy, targets)}; rollout id {spec.rollout_id}"
    )
    return summary if source is None else f"{source}: valid: {summary}"


def schedule_lines(schedule: Schedule) -> list[str]:
    """The schedule for people: regions in order, the waves within them, soak, verify, gates."""
    budget = f"failure budget {schedule.failure_budget} for the whole rollout"
    heading = {
        "fleet": f"schedule: waves over the whole fleet, {budget}",
        "sequential": "schedule: regions one after another, each with its own waves and "
        f"failure budget; {budget}",
        "parallel": "schedule: waves over the whole fleet, regions in parallel, each with its "
        f"own failure budget; {budget}",
    }
    lines = [heading[schedule.mode]]
    for number, part in enumerate(schedule.regions, start=1):
        lines.append(
            f"  {number}. {part.region}: {count_of(part.size)}, "
            f"failure budget {part.failure_budget}"
        )
        if schedule.mode == "sequential":
            lines += [_wave_line(w, "     ") for w in schedule.waves if w.region == part.region]
    if schedule.mode != "sequential":
        lines += [_wave_line(w, "  ") for w in schedule.waves]
    lines += [f"  {part}" for part in progressive_parts(schedule)]
    return lines


def _wave_line(wave: ScheduledWave, indent: str) -> str:
    gate = " · then waits for `meshfleet approve`" if wave.approval else ""
    where = f"{wave.end}" if wave.size == 1 else f"{wave.start + 1}-{wave.end}"
    return f"{indent}wave {wave.number}: {count_of(wave.size)} (#{where}){gate}"


def schedule_document(schedule: Schedule) -> dict[str, Any]:
    """The schedule in the plan's ``--json`` document."""
    return {
        "mode": schedule.mode,
        "regions": [
            {"region": p.region, "targets": p.size, "failure_budget": p.failure_budget}
            for p in schedule.regions
        ],
        "waves": [
            {
                "region": w.region,
                "wave": w.number,
                "targets": w.size,
                "end": w.end,
                "approval": w.approval,
            }
            for w in schedule.waves
        ],
        "failure_budget": schedule.failure_budget,
        "soak_s": schedule.soak_s,
        "verify": schedule.verify,
        "webhook_host": schedule.webhook_host,
        "approve_after": schedule.approve_after,
    }


VALIDATION_KEYS = (
    "valid",
    "source",
    "problems",
    "rollout_id",
    "targets",
    "projects",
    "regions",
    "summary",
    "schedule",
)
"""``validate --json``: every key always present; those after ``problems`` null while invalid."""


def validation_document(
    source: str, spec: RolloutSpec | None, problems: Sequence[tuple[str, str]] = ()
) -> dict[str, Any]:
    """``validate --json``: whether the manifest is valid, every problem, and what it holds.

    Args:
        source: The manifest's name, as given (``-`` for standard input).
        spec: The validated manifest; None when it is invalid.
        problems: (path, message) of each problem; the path is ``""`` for the document as a
            whole (unreadable, a syntax error).
    """
    document: dict[str, Any] = dict.fromkeys(VALIDATION_KEYS)
    document.update(
        valid=spec is not None,
        source=source,
        problems=[{"path": path, "message": message} for path, message in problems],
    )
    if spec is not None:
        schedule = schedule_of(spec.strategy, spec.targets)
        document.update(
            rollout_id=spec.rollout_id,
            targets=len(spec.targets),
            projects=len({t.project_id for t in spec.targets}),
            # In the order the rollout walks them.
            regions=list(dict.fromkeys(t.region for t in schedule.targets)),
            summary=manifest_summary(None, spec),
            schedule=schedule_document(schedule),
        )
    return document


REFUSED_ROW = "error (list call refused, see below)"
"""The action of a target whose project's list call was refused: the reason is said once, in
``refusal_lines``, not in every row of the project."""
REFUSAL_KEYS = ("project_id", "region", "status", "error_code", "message", "request_id")
_REFUSAL_HINTS = {
    401: "the ASM credentials were not accepted",
    403: "the credentials may not list this project's meshes",
}


def plan_table(planned: list[PlannedTarget]) -> list[str]:
    """Aligned lines, one per target: what the rollout would do, and where."""
    header = ("ACTION", "REGION", "PROJECT", "MESH", "CLUSTER")
    rows = [header] + [
        (
            REFUSED_ROW if p.refusal is not None else p.describe(),
            p.target.region,
            p.target.project_id,
            p.target.mesh_name,
            p.target.cluster_id,
        )
        for p in planned
    ]
    return aligned(rows)


def aligned(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows as lines, every column but the last padded to its widest cell."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  ".join([*(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)), row[-1]])
        for row in rows
    ]


def plan_counts(planned: list[PlannedTarget]) -> str:
    """``27 targets: 20 create, 5 adopt, 2 conflict``."""
    counts = Counter(p.action for p in planned)
    parts = [f"{counts[action]} {action}" for action in PLAN_ACTIONS if counts[action]]
    return f"{count_of(len(planned))}: {', '.join(parts)}"


def refusal_lines(planned: list[PlannedTarget]) -> list[str]:
    """One error line per refused list call (project and region), however many targets it has.

    ``project 0123… region ap-southeast-3: list call refused: HTTP 401 APIGW.0301: …
    (request id …); the ASM credentials were not accepted; 3 targets not planned``
    """
    affected = Counter(p.refusal for p in planned if p.refusal is not None)
    return [_refusal_line(refusal, affected[refusal]) for refusal in refusals_of(planned)]


def _refusal_line(refusal: Refusal, targets: int) -> str:
    code = f" {refusal.error_code}" if refusal.error_code else ""
    rid = f" (request id {refusal.request_id})" if refusal.request_id else ""
    hint = _REFUSAL_HINTS.get(refusal.status)
    return (
        f"project {refusal.project_id} region {refusal.region}: list call refused: "
        f"HTTP {refusal.status}{code}: {' '.join(refusal.message.split())}{rid}"
        f"{f'; {hint}' if hint else ''}; {count_of(targets)} not planned"
    )


def plan_document(
    spec: RolloutSpec, planned: list[PlannedTarget], schedule: Schedule | None = None
) -> dict[str, Any]:
    """The plan as one JSON document: the counts, the schedule, the targets in rollout order,
    and each refused list call once (``refused``; a refused target's ``detail`` repeats it)."""
    counts = Counter(p.action for p in planned)
    extra = {} if schedule is None else {"schedule": schedule_document(schedule)}
    return {
        "rollout_id": spec.rollout_id,
        "total": len(planned),
        **{action: counts[action] for action in PLAN_ACTIONS},
        **extra,
        "targets": [
            {
                "project_id": p.target.project_id,
                "region": p.target.region,
                "cluster_id": p.target.cluster_id,
                "mesh_name": p.target.mesh_name,
                "action": p.action,
                "detail": p.detail,
                "phase": p.phase,
                "mesh_uid": p.mesh_uid,
            }
            for p in planned
        ],
        "refused": [
            {key: getattr(refusal, key) for key in REFUSAL_KEYS} for refusal in refusals_of(planned)
        ],
    }


ROLLBACK_KEYS = (
    "rollout_id",
    "kind",
    "state",
    "total",
    "deleted",
    "kept",
    "failed",
    "cancelled",
    "pending",
)
"""The first keys of a rollback's ``--json`` document (``total``: the meshes it deletes);
deleted + kept + failed + cancelled + pending = total."""
KEPT_KEYS = ("project_id", "region", "cluster_id", "mesh_name", "reason")
NOT_ROLLED_BACK_KEYS = ("adopted", "failed", "cancelled", "not_started")
"""Why a rollout's target is never touched by its rollback: every document has each (0 too)."""


def not_rolled_back_counts(counts: dict[str, int]) -> dict[str, int]:
    """The four ``NOT_ROLLED_BACK_KEYS``, then any rarer reason (``created_without_uid``)."""
    return {key: counts.get(key, 0) for key in NOT_ROLLED_BACK_KEYS} | {
        why: n for why, n in sorted(counts.items()) if why not in NOT_ROLLED_BACK_KEYS and n
    }


def not_rolled_back_text(counts: dict[str, int]) -> str:
    """``5 adopted, 2 failed``: the non-zero counts of ``not_rolled_back_counts``, for people."""
    return ", ".join(
        f"{n} {why.replace('_', ' ')}" for why, n in not_rolled_back_counts(counts).items() if n
    )


def rollback_document(progress: RolloutProgress) -> dict[str, Any]:
    """The stable ``--json`` document of a rollback (its counts add up as ``ROLLBACK_KEYS``)."""
    p = progress
    document: dict[str, Any] = {
        "rollout_id": p.rollout_id,
        "kind": "rollback",
        "state": p.state.value,
        "total": p.total,
        "deleted": p.deleted,
        "kept": p.kept,
        "failed": p.failed,
        "cancelled": p.cancelled,
        "pending": max(0, p.total - p.deleted - p.kept - p.failed - p.cancelled),
    }
    document["failures"] = [
        {key: getattr(failure, key) for key in FAILURE_KEYS} for failure in p.failures
    ]
    document["kept_meshes"] = [{key: getattr(k, key) for key in KEPT_KEYS} for k in p.kept_reasons]
    document["not_rolled_back"] = not_rolled_back_counts(p.not_rolled_back)
    document["halt_reason"] = p.halt_reason
    return document


def report_document(progress: RolloutProgress) -> dict[str, Any]:
    """The stable ``--json`` document of a rollout (of a rollback: ``rollback_document``).

    ``pending`` counts every target that is still to end: not started yet, or in flight; a
    target the rollout will never start (it was cancelled) counts as ``cancelled``. So
    created + adopted + failed + cancelled + pending = total, at every moment.
    """
    if progress.kind == "rollback":
        return rollback_document(progress)
    document: dict[str, Any] = {
        "rollout_id": progress.rollout_id,
        "state": progress.state.value,
        "total": progress.total,
        "created": progress.created,
        "adopted": progress.adopted,
        "failed": progress.failed,
        "cancelled": progress.cancelled,
        "pending": max(
            0,
            progress.total
            - progress.created
            - progress.adopted
            - progress.failed
            - progress.cancelled,
        ),
    }
    document["failures"] = [
        {key: getattr(failure, key) for key in FAILURE_KEYS} for failure in progress.failures
    ]
    document["region"] = progress.region
    document["soaking_until"] = progress.soaking_until
    document["halted_region"] = progress.halted_region
    document["halt_reason"] = progress.halt_reason
    document["approvals"] = [
        {key: getattr(approval, key) for key in APPROVAL_KEYS} for approval in progress.approvals
    ]
    return document


def failure_text(failure: TargetFailure) -> str:
    """A failure's code and message, the code once (``failure_summary``)."""
    return failure_summary(failure.error_code, failure.message)


def rollout_exit_code(progress: RolloutProgress) -> ExitCode:
    """4 at an approval gate; 1 when a target failed or the rollout halted, failed or was
    cancelled; else 0.

    The gate wins over failures within the budget: the rollout is neither over nor failed, it
    waits for a person, who sees the failures in the report before approving.
    """
    if progress.state == RolloutState.AWAITING_APPROVAL:
        return ExitCode.AWAITING_APPROVAL
    if progress.failed or progress.state in _NOT_AS_PLANNED:
        return ExitCode.FAILED
    if progress.state == RolloutState.COMPLETED and not progress.succeeded:
        return ExitCode.FAILED
    return ExitCode.OK


def eta_seconds(progress: RolloutProgress) -> float | None:
    """Seconds until every target is done at the pace so far; None unless targets are moving.

    Only a running rollout has a pace: paused, halted, soaking, verifying, at a gate or
    cancelling, the time to the end is a person's or a timer's, not the targets'.
    """
    done = (
        progress.created
        + progress.adopted
        + progress.deleted
        + progress.kept
        + progress.failed
        + progress.cancelled
    )
    if progress.state != RolloutState.RUNNING or not done or progress.seconds <= 0:
        return None
    if done >= progress.total:
        return None
    return progress.seconds / done * (progress.total - done)


def whole_seconds(seconds: float) -> str:
    """A span as progress lines write it: whole seconds and up (``1m30s``, ``1s``), never ms."""
    return format_duration(max(1, round(seconds))) if seconds > 0 else "0s"


def progress_line(progress: RolloutProgress) -> str:
    """One line on where a rollout stands."""
    p = progress
    if p.kind == "rollback":
        done = p.deleted + p.kept + p.failed + p.cancelled
        outcomes = f"deleted {p.deleted}, kept {p.kept}, failed {p.failed}"
        line = f"rollback of {p.rollout_id}: {p.state.value} · wave {p.wave}/{p.waves}"
    else:
        done = p.created + p.adopted + p.failed + p.cancelled
        outcomes = f"created {p.created}, adopted {p.adopted}, failed {p.failed}"
        line = f"{p.rollout_id}: {p.state.value} · wave {p.wave}/{p.waves}"
    if p.cancelled:
        outcomes += f", cancelled {p.cancelled}"
    if p.region:
        line += f" in {p.region}"
    line += f" · {done}/{p.total} done ({outcomes}) · {p.in_flight} in flight · {p.pending} pending"
    if p.state == RolloutState.SOAKING and p.soaking_until:
        line += f" · soaking until {utc_text(p.soaking_until)}"
    if p.halted_region and p.state in (RolloutState.HALTED, RolloutState.FAILED):
        line += f" · halted by region {p.halted_region}"
    if p.halt_reason and p.state in (RolloutState.HALTED, RolloutState.FAILED):
        line += f" · {_short(p.halt_reason)}"
    if p.approvals:
        last = p.approvals[-1]
        line += f" · approved wave {last.wave}{_in(last.region)} by {last.by}"
    eta = eta_seconds(p)
    if eta is not None:
        line += f" · ETA {whole_seconds(eta)}"
    return line


def _in(region: str | None) -> str:
    return f" in {region}" if region else ""


def _short(text: str, limit: int = 160) -> str:
    # A webhook's answer can be long: a status line stays one readable line.
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _failures_exceed(p: RolloutProgress) -> str:
    verb = "exceeds" if p.failed == 1 else "exceed"
    return f"{count_of(p.failed, 'failure')} {verb} the budget of {p.failure_budget}"


def report_lines(progress: RolloutProgress) -> list[str]:
    """A rollout's progress or final report, for people."""
    p = progress
    lines = [progress_line(p)]
    flag = " --rollback" if p.kind == "rollback" else ""
    steer = (
        f"`meshfleet resume {p.rollout_id}{flag}` goes on, "
        f"`meshfleet cancel {p.rollout_id}{flag}` stops"
    )
    if p.state == RolloutState.HALTED and (p.halted_region or p.halt_reason):
        why = p.halt_reason or "its failures exceed the region's own budget"
        lines.append(f"halted{_in(p.halted_region)}: {why}; {steer}")
    elif p.state == RolloutState.HALTED:
        lines.append(f"halted: {_failures_exceed(p)}; {steer}")
    if p.state == RolloutState.AWAITING_APPROVAL:
        lines.append(
            f"awaiting approval after wave {p.wave}{_in(p.region)}: "
            f"`meshfleet approve {p.rollout_id}` goes on, `meshfleet cancel {p.rollout_id}` stops"
        )
    if p.state == RolloutState.SOAKING and p.soaking_until:
        lines.append(f"soaking until {utc_text(p.soaking_until)}, then the next wave")
    if p.state == RolloutState.FAILED and p.halted_region:
        lines.append(
            f"failed: the failures of region {p.halted_region} exceed its own budget "
            "(every target had started)"
        )
    elif p.state == RolloutState.FAILED:
        lines.append(f"failed: {_failures_exceed(p)} (every target had started)")
    if p.finished_at:
        lines.append(f"finished {utc_text(p.finished_at)} after {whole_seconds(p.seconds)}")
    if p.approvals:
        lines.append("approvals:")
        lines += [
            f"  wave {a.wave}{_in(a.region)}: by {a.by} at {utc_text(a.at)}" for a in p.approvals
        ]
    if p.failures:
        lines.append("failures:")
        lines += [
            f"  {f.region} {f.project_id} {f.mesh_name} (cluster {f.cluster_id}): {failure_text(f)}"
            for f in p.failures
        ]
        if p.failed > len(p.failures):
            lines.append(f"  … and {p.failed - len(p.failures)} more (see each target's workflow)")
    if p.kept_reasons:
        lines.append("kept:")
        lines += [
            f"  {k.region} {k.project_id} {k.mesh_name} (cluster {k.cluster_id}): {k.reason}"
            for k in p.kept_reasons
        ]
    if p.not_rolled_back:
        left = not_rolled_back_text(p.not_rolled_back)
        lines.append(f"not rolled back (the rollout did not create them): {left}")
    return lines
