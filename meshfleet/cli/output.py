"""What the CLI prints: manifest summaries, plans, and rollout progress, reports and documents."""

from __future__ import annotations

from collections import Counter
from typing import Any

from meshfleet.cli.exit_codes import ExitCode
from meshfleet.manifest.durations import format_duration
from meshfleet.manifest.load import describe_strategy
from meshfleet.models import RolloutProgress, RolloutSpec, RolloutState
from meshfleet.plan import PLAN_ACTIONS, PlannedTarget

# The --json contract: pipelines parse it, so keys are only ever added, and only by agreement.
REPORT_KEYS = ("rollout_id", "state", "total", "created", "adopted", "failed", "pending")
FAILURE_KEYS = ("project_id", "region", "cluster_id", "mesh_name", "error_code", "message")
# States that exit 1 whatever the counts say (docs/rollout-states.md).
_NOT_AS_PLANNED = (
    RolloutState.HALTED,
    RolloutState.CANCELLING,
    RolloutState.CANCELLED,
    RolloutState.FAILED,
)


def manifest_summary(source: str, spec: RolloutSpec) -> str:
    """One line on a valid manifest: targets, projects, regions, waves and the rollout id."""
    targets = spec.targets
    projects = len({t.project_id for t in targets})
    regions = len({t.region for t in targets})
    return (
        f"{source}: valid: {len(targets)} targets in {projects} projects and {regions} regions; "
        f"{describe_strategy(spec.strategy, len(targets))}; rollout id {spec.rollout_id}"
    )


def plan_table(planned: list[PlannedTarget]) -> list[str]:
    """Aligned lines, one per target: what the rollout would do, and where."""
    header = ("ACTION", "REGION", "PROJECT", "MESH", "CLUSTER")
    rows = [header] + [
        (
            p.describe(),
            p.target.region,
            p.target.project_id,
            p.target.mesh_name,
            p.target.cluster_id,
        )
        for p in planned
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    return [
        "  ".join([*(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)), row[-1]])
        for row in rows
    ]


def plan_counts(planned: list[PlannedTarget]) -> str:
    """``27 targets: 20 create, 5 adopt, 2 conflict``."""
    counts = Counter(p.action for p in planned)
    parts = [f"{counts[action]} {action}" for action in PLAN_ACTIONS if counts[action]]
    return f"{len(planned)} targets: {', '.join(parts)}"


def plan_document(spec: RolloutSpec, planned: list[PlannedTarget]) -> dict[str, Any]:
    """The plan as one JSON document."""
    counts = Counter(p.action for p in planned)
    return {
        "rollout_id": spec.rollout_id,
        "total": len(planned),
        **{action: counts[action] for action in PLAN_ACTIONS},
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
    }


def report_document(progress: RolloutProgress) -> dict[str, Any]:
    """The stable ``--json`` document of a rollout.

    ``pending`` counts every target that has neither reached Running nor failed: not started,
    in flight, or cancelled, so that created + adopted + failed + pending = total.
    """
    document: dict[str, Any] = {
        "rollout_id": progress.rollout_id,
        "state": progress.state.value,
        "total": progress.total,
        "created": progress.created,
        "adopted": progress.adopted,
        "failed": progress.failed,
        "pending": max(0, progress.total - progress.created - progress.adopted - progress.failed),
    }
    document["failures"] = [
        {key: getattr(failure, key) for key in FAILURE_KEYS} for failure in progress.failures
    ]
    return document


def rollout_exit_code(progress: RolloutProgress) -> ExitCode:
    """1 when a target failed or the rollout halted, failed or was cancelled, else 0."""
    if progress.failed or progress.state in _NOT_AS_PLANNED:
        return ExitCode.FAILED
    if progress.state == RolloutState.COMPLETED and not progress.succeeded:
        return ExitCode.FAILED
    return ExitCode.OK


def eta_seconds(progress: RolloutProgress) -> float | None:
    """Seconds until every target is done at the pace so far, or None before the first."""
    done = progress.created + progress.adopted + progress.failed + progress.cancelled
    if progress.state.finished or not done or progress.seconds <= 0:
        return None
    return progress.seconds / done * (progress.total - done)


def progress_line(progress: RolloutProgress) -> str:
    """One line on where a rollout stands."""
    p = progress
    done = p.created + p.adopted + p.failed + p.cancelled
    outcomes = f"created {p.created}, adopted {p.adopted}, failed {p.failed}"
    if p.cancelled:
        outcomes += f", cancelled {p.cancelled}"
    line = (
        f"{p.rollout_id}: {p.state.value} · wave {p.wave}/{p.waves} · {done}/{p.total} done "
        f"({outcomes}) · {p.in_flight} in flight · {p.pending} pending"
    )
    eta = eta_seconds(p)
    if eta is not None:
        line += f" · ETA {format_duration(eta)}"
    return line


def report_lines(progress: RolloutProgress) -> list[str]:
    """A rollout's progress or final report, for people."""
    p = progress
    lines = [progress_line(p)]
    if p.state == RolloutState.HALTED:
        lines.append(
            f"halted: {p.failed} failures exceed the budget of {p.failure_budget}; "
            f"`meshfleet resume {p.rollout_id}` goes on, `meshfleet cancel {p.rollout_id}` stops"
        )
    if p.state == RolloutState.FAILED:
        lines.append(
            f"failed: {p.failed} failures exceed the budget of {p.failure_budget} "
            "(every target had started)"
        )
    if p.finished_at:
        lines.append(f"finished {p.finished_at} after {format_duration(p.seconds)}")
    if p.failures:
        lines.append("failures:")
        lines += [
            f"  {f.region} {f.project_id} {f.mesh_name} (cluster {f.cluster_id}): "
            f"{f.error_code or '-'} {f.message or ''}".rstrip()
            for f in p.failures
        ]
        if p.failed > len(p.failures):
            lines.append(f"  … and {p.failed - len(p.failures)} more (see each target's workflow)")
    return lines
