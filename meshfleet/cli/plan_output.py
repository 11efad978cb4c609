"""What ``validate`` and ``plan`` print: manifest summaries, the schedule, the plan and its
documents."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal

from meshfleet.cli.tables import plan_table
from meshfleet.contract import failures as errors
from meshfleet.manifest.load import describe_schedule, progressive_parts
from meshfleet.manifest.schedule import Schedule, count_of, schedule_of
from meshfleet.models import ExistingMode, FinalizeMode, RolloutSpec
from meshfleet.plan import EXISTING, PLAN_ACTIONS, PlannedTarget, Refusal, refusals_of
from meshfleet.upgrades import UpgradeRefusal
from meshfleet.waves import Wave


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


def _wave_line(wave: Wave, indent: str) -> str:
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


Does = Literal["create", "nothing", "adopt", "update", "upgrade", "fail"]
"""What a rollout would do with a target, given its judgement and ``strategy.existing``."""
DOES: tuple[Does, ...] = ("create", "nothing", "adopt", "update", "upgrade", "fail")

UPGRADE_WORDS = "upgrade through ASM's canary upgrade: pre-check, control plane, data plane"
FINALIZE_WORDS: dict[FinalizeMode, str] = {
    "after_rollout": "finalized after the rollout",
    "manual": "finalized by `meshfleet finalize`",
}
"""When an upgraded mesh loses its old control plane, and with it the way back: per
``strategy.upgrade.finalize``."""
CONFIG_AFTER_UPGRADE = (
    "the fields below are left as they are during the upgrade; they converge on a run after "
    "finalize"
)

NOT_COMPARED = ("node_ids", "namespaces")
"""The target keys a plan cannot compare with the mesh: the API does not echo them."""
NOT_COMPARED_NOTE = (
    "note: ASM does not echo a cluster's installation nodes and injection namespaces, so a "
    "change to node_ids or namespaces is not seen"
)


def rollout_does(
    planned: PlannedTarget, existing: ExistingMode, *, finalize: FinalizeMode = "after_rollout"
) -> tuple[Does | None, str]:
    """What the rollout would do with ``planned`` under ``existing``, as a word and in words.

    The same order of questions as the rollout's (``workflows.converge_mesh``). The words are
    said only where the mode decides (a mesh that differs), else ``""``; for an upgrade they
    say when it is finalized (``finalize``). None for a target whose list call was refused:
    nothing is known of it.
    """
    action = planned.action
    if action == "create":
        return "create", ""
    if action == "in_sync":
        return "nothing", ""
    if action in ("update", "upgrade", "downgrade") and existing == "adopt":
        # Taken as it stands, as before there was any judgement: nothing is changed.
        return "adopt", "adopted as it stands (drifted)"
    refused = refused_under(planned, existing)
    if refused is not None:
        return "fail", f"fails {refused.code}: {refused.message}"
    if action in ("update", "upgrade"):
        if existing == "require_match":
            return "fail", f"fails {errors.MESH_DRIFTED}"
        if action == "upgrade":
            words = f"{UPGRADE_WORDS}; {FINALIZE_WORDS[finalize]}"
            # ASM's guide: no other change to a mesh while it is upgraded.
            return "upgrade", (f"{words}; {CONFIG_AFTER_UPGRADE}" if planned.changes else words)
        if planned.phase != "Running":
            # As the list shows it now; the rollout judges the mesh again when it gets there.
            return "fail", (
                f"fails {errors.MESH_NOT_RUNNING} while it is {planned.phase or 'in no phase'} "
                "(only a Running mesh takes a configuration change)"
            )
        return "update", "update in place"
    if action in ("conflict", "downgrade"):
        return "fail", ""
    return None, ""


def refused_under(planned: PlannedTarget, existing: ExistingMode) -> UpgradeRefusal | None:
    """The refusal of the version change ``planned`` asks for, when the rollout would meet it
    under ``existing``: a downgrade unless adopted, an upgrade refused (no path, too long a
    path, a mesh Upgrading or not Running, as listed now) when converging; else None."""
    if planned.action == "downgrade" and existing != "adopt":
        return planned.version_refusal
    if planned.action == "upgrade" and existing == "converge":
        return planned.version_refusal
    return None


def changes_pending(planned: Sequence[PlannedTarget]) -> bool:
    """Whether the fleet differs from the manifest: some target is not in sync (a rollout, or
    a person, has something to do about it)."""
    return any(not p.in_sync for p in planned)


def _under(planned: PlannedTarget, existing: ExistingMode, finalize: FinalizeMode) -> list[str]:
    _, words = rollout_does(planned, existing, finalize=finalize)
    return [*([f"rollout: {words}"] if words else []), *(c.text() for c in planned.changes)]


def rollout_plan_table(
    planned: Sequence[PlannedTarget],
    existing: ExistingMode = "adopt",
    *,
    finalize: FinalizeMode = "after_rollout",
) -> list[str]:
    """The plan table of a rollout: each target's judgement and cluster (an upgrade's path in
    it), and below a mesh that differs, what the rollout does with it (``existing``; when an
    upgrade is finalized, ``finalize``) and each differing field."""
    return plan_table(
        (
            (REFUSED_ROW if p.refusal is not None else p.describe(), p.target, p.target.cluster_id)
            for p in planned
        ),
        "CLUSTER",
        under=[_under(p, existing, finalize) for p in planned],
    )


def plan_counts(planned: list[PlannedTarget]) -> str:
    """``27 targets: 20 create, 4 in_sync, 1 update, 2 conflict``."""
    counts = Counter(p.action for p in planned)
    parts = [f"{counts[action]} {action}" for action in PLAN_ACTIONS if counts[action]]
    return f"{count_of(len(planned))}: {', '.join(parts)}"


def does_counts(planned: Sequence[PlannedTarget], existing: ExistingMode) -> dict[Does, int]:
    """How many targets the rollout would create, leave alone, adopt, update, upgrade, or
    fail."""
    counts = Counter(rollout_does(p, existing)[0] for p in planned)
    return {does: counts[does] for does in DOES}


UPGRADE_NOTE = (
    "note: upgraded meshes are finalized (their old control plane uninstalled: no rollback after "
    "that) only once the last wave has passed its soak, verify and gate too"
)


def plan_notes(planned: list[PlannedTarget], existing: ExistingMode) -> list[str]:
    """The lines after the counts, when some target's mesh exists: what the rollout does with
    the fleet under ``existing`` (``with existing adopt, the rollout does: 1 create, 3 nothing,
    2 adopt``), and what the plan cannot compare."""
    if not any(p.action in EXISTING for p in planned):
        return []
    counts = does_counts(planned, existing)
    parts = [f"{counts[does]} {does}" for does in DOES if counts[does]]
    unknown = sum(1 for p in planned if p.refusal is not None)
    parts += [f"{unknown} not planned"] if unknown else []
    notes = [f"with existing {existing}, the rollout does: {', '.join(parts)}"]
    if counts["upgrade"]:
        notes.append(UPGRADE_NOTE)
    return [*notes, NOT_COMPARED_NOTE]


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
    """The plan as one JSON document: the count of each judgement, what the rollout would do
    (``does``, under ``existing``), the schedule, the targets in rollout order with their
    changes, an upgrade's ``hops`` and the refusal of a version change (``refused``), and each
    refused list call once (top-level ``refused``; a refused target's ``detail`` repeats
    it)."""
    counts = Counter(p.action for p in planned)
    existing = spec.strategy.existing
    does = does_counts(planned, existing)
    extra = {} if schedule is None else {"schedule": schedule_document(schedule)}
    return {
        "rollout_id": spec.rollout_id,
        "total": len(planned),
        **{action: counts[action] for action in PLAN_ACTIONS},
        # No judgement any more: the meshes the rollout would take as they stand, read by
        # pipelines written when every existing mesh was adopted.
        "adopt": does["adopt"],
        "existing": existing,
        "does": does,
        "changes_pending": changes_pending(planned),
        "not_compared": list(NOT_COMPARED),
        **extra,
        "targets": [
            {
                "project_id": p.target.project_id,
                "region": p.target.region,
                "cluster_id": p.target.cluster_id,
                "mesh_name": p.target.mesh_name,
                "action": p.action,
                "does": rollout_does(p, existing)[0],
                "detail": p.detail,
                "phase": p.phase,
                "mesh_uid": p.mesh_uid,
                "mesh_version": p.mesh_version,
                "changes": [
                    {"path": c.path, "before": c.before, "after": c.after} for c in p.changes
                ],
                "hops": p.hops,
                "refused": _refused_entry(refused_under(p, existing)),
            }
            for p in planned
        ],
        "refused": [
            {key: getattr(refusal, key) for key in REFUSAL_KEYS} for refusal in refusals_of(planned)
        ],
    }


def _refused_entry(refused: UpgradeRefusal | None) -> dict[str, str] | None:
    return None if refused is None else {"code": refused.code, "message": refused.message}
