"""What the CLI prints of a rollout or rollback: progress lines, reports, ``--json`` documents,
and the exit code its state means. (What ``validate`` and ``plan`` print: ``plan_output``.)"""

from __future__ import annotations

from typing import Any

from meshfleet.cli.exit_codes import ExitCode
from meshfleet.manifest.durations import format_duration
from meshfleet.manifest.schedule import count_of
from meshfleet.models import (
    RolloutProgress,
    RolloutState,
    TargetFailure,
    UpgradedMesh,
    failure_summary,
)
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
"""created + adopted + updated + in_sync + upgraded + failed + cancelled + pending = total."""
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


CONVERGE_KEYS = ("updated", "in_sync", "drifted", "drift")
"""Added with converging, after the progressive keys; present in every document (0 or [])."""
DRIFT_KEYS = ("project_id", "region", "cluster_id", "mesh_name", "outcome", "fields")
UPGRADE_KEYS = ("upgraded", "finalized", "upgrades")
"""Added with upgrades, after the converge keys; present in every document (0 or [])."""
UPGRADED_KEYS = (
    "project_id",
    "region",
    "cluster_id",
    "mesh_name",
    "version_before",
    "version",
    "task_id",
    "step",
    "finalized",
    "can_roll_back",
    "outcome",
)
"""Each ``upgrades[]`` entry: where one mesh's upgrade stands (``step``: the last that
succeeded) and whether ASM can still roll it back."""
"""Each ``drift[]`` entry of a rollout's ``--json``: a mesh found differing from the manifest,
what the rollout did about it, and each field ``path: before -> after``."""

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
"""The first keys of a rollback's ``--json`` document (``total``: the meshes it deletes or
restores); deleted + restored + kept + failed + cancelled + pending = total (``restored`` comes
last in the document, added with restores)."""
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
        "pending": max(0, p.total - p.done),
    }
    document["failures"] = [
        {key: getattr(failure, key) for key in FAILURE_KEYS} for failure in p.failures
    ]
    document["kept_meshes"] = [{key: getattr(k, key) for key in KEPT_KEYS} for k in p.kept_reasons]
    document["not_rolled_back"] = not_rolled_back_counts(p.not_rolled_back)
    document["halt_reason"] = p.halt_reason
    document["restored"] = p.restored
    return document


def report_document(progress: RolloutProgress) -> dict[str, Any]:
    """The stable ``--json`` document of a rollout (of a rollback: ``rollback_document``).

    ``pending`` counts every target that is still to end: not started yet, or in flight; a
    target the rollout will never start (it was cancelled) counts as ``cancelled``. So
    created + adopted + updated + in_sync + upgraded + failed + cancelled + pending = total, at
    every moment (``finalized`` counts among ``upgraded``).
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
        "pending": max(0, progress.total - progress.done),
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
    document["updated"] = progress.updated
    document["in_sync"] = progress.in_sync
    document["drifted"] = progress.drifted
    document["drift"] = [
        {key: getattr(drifted, key) for key in DRIFT_KEYS} for drifted in progress.drift
    ]
    document["upgraded"] = progress.upgraded
    document["finalized"] = progress.finalized
    document["upgrades"] = [
        {key: getattr(upgrade, key) for key in UPGRADED_KEYS} for upgrade in progress.upgrades
    ]
    return document


def failure_text(failure: TargetFailure) -> str:
    """A failure's code and message, the code once (``failure_summary``)."""
    return failure_summary(failure.error_code, failure.message)


def rollout_exit_code(progress: RolloutProgress) -> ExitCode:
    """4 at an approval gate; 6 waiting to finalize; 1 when a target failed or the rollout
    halted, failed or was cancelled; else 0.

    The gate wins over failures within the budget: the rollout is neither over nor failed, it
    waits for a person, who sees the failures in the report before approving.
    """
    if progress.state == RolloutState.AWAITING_APPROVAL:
        return ExitCode.AWAITING_APPROVAL
    if progress.state == RolloutState.AWAITING_FINALIZE:
        return ExitCode.AWAITING_FINALIZE
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
    done = progress.done
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
        restored = f", restored {p.restored}" if p.restored else ""
        outcomes = f"deleted {p.deleted}{restored}, kept {p.kept}, failed {p.failed}"
        line = f"rollback of {p.rollout_id}: {p.state.value} · wave {p.wave}/{p.waves}"
    else:
        outcomes = f"created {p.created}"
        if p.updated or p.in_sync:
            outcomes += f", updated {p.updated}, in sync {p.in_sync}"
        if p.upgraded:
            outcomes += f", upgraded {p.upgraded} ({p.finalized} finalized)"
        outcomes += f", adopted {p.adopted}"
        if p.drifted:
            outcomes += f" ({p.drifted} drifted)"
        outcomes += f", failed {p.failed}"
        line = f"{p.rollout_id}: {p.state.value} · wave {p.wave}/{p.waves}"
    if p.cancelled:
        outcomes += f", cancelled {p.cancelled}"
    if p.region:
        line += f" in {p.region}"
    line += (
        f" · {p.done}/{p.total} done ({outcomes}) · {p.in_flight} in flight · {p.pending} pending"
    )
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
    if p.state == RolloutState.AWAITING_FINALIZE:
        lines.append(
            f"awaiting finalize: {p.upgraded - p.finalized} upgraded mesh(es) run the new version "
            f"with the old control plane still installed; `meshfleet finalize {p.rollout_id}` "
            "uninstalls it (no rollback after that), `meshfleet cancel "
            f"{p.rollout_id}` then `meshfleet rollback {p.rollout_id}` rolls them back"
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
    if p.drift:
        lines.append("drift (meshes that differed from the manifest):")
        for d in p.drift:
            lines.append(
                f"  {d.region} {d.project_id} {d.mesh_name} (cluster {d.cluster_id}): {d.outcome}"
            )
            lines += [f"    {field}" for field in d.fields]
        if len(p.drift) < p.drifted:
            lines.append("  … and more (see each target's workflow)")
    if p.upgrades:
        lines.append("upgrades (where each mesh stands):")
        lines += [f"  {upgrade_text(u)}" for u in p.upgrades]
        if len(p.upgrades) < p.upgraded:
            lines.append("  … and more (see each target's workflow)")
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


def upgrade_text(u: UpgradedMesh) -> str:
    """One mesh's upgrade: where it stands, and whether it can still be rolled back."""
    if u.finalized:
        where = "finalized (old control plane uninstalled; cannot be rolled back)"
    elif u.outcome == "upgraded":
        where = "upgraded, not finalized (old control plane installed; can be rolled back)"
    elif u.outcome == "restored":
        where = "rolled back"
    else:
        where = f"{u.outcome} {u.ref.reached} (task open; can be rolled back)"
    return (
        f"{u.region} {u.project_id} {u.mesh_name} (cluster {u.cluster_id}): "
        f"{u.version_before} -> {u.version}, {where}, task {u.task_id}"
    )
