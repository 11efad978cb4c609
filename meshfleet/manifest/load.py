"""The rollout manifest: YAML or JSON into a validated ``RolloutSpec``, every problem at once.

What a manifest may hold is modelled in ``meshfleet.manifest.document``; this module reads a
source, validates it there, and hands the rest of meshfleet the payload models.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Collection, Iterable, Sequence
from typing import Any, BinaryIO

from pydantic import BaseModel, ValidationError

from meshfleet.manifest.document import MAX_TARGETS, Manifest
from meshfleet.manifest.durations import format_duration
from meshfleet.manifest.problems import Problem, manifest_problems
from meshfleet.manifest.schedule import Schedule, count_of, schedule_of
from meshfleet.manifest.source import ManifestError, parse_document, read_source
from meshfleet.models import MeshTarget, RolloutSpec, RolloutStrategy
from meshfleet.rollout_id import rollout_id_problem

__all__ = [
    "MAX_TARGETS",
    "ManifestError",
    "derive_rollout_id",
    "describe_schedule",
    "load_manifest",
    "parse_manifest",
    "validate_document",
]


def load_manifest(
    source: str | os.PathLike[str],
    rollout_id: str | None = None,
    *,
    stdin: BinaryIO | None = None,
    extra_regions: Collection[str] = (),
) -> RolloutSpec:
    """Read and validate a manifest file (``-`` reads standard input).

    Args:
        source: Path of a YAML or JSON manifest, or ``-``.
        rollout_id: The rollout's id; derived from the manifest's content when None.
        stdin: Replaces standard input (tests).
        extra_regions: Regions to accept besides those ASM is known to be served in
            (``meshfleet.asm.regions``); the CLI passes ``MESHFLEET_EXTRA_REGIONS``.

    Raises:
        ManifestError: listing every problem found, each with its path.
    """
    return parse_manifest(read_source(source, stdin), rollout_id, extra_regions=extra_regions)


def parse_manifest(
    content: str | bytes, rollout_id: str | None = None, *, extra_regions: Collection[str] = ()
) -> RolloutSpec:
    """Validate a manifest given as text (YAML or JSON, told apart by content).

    Args:
        content: The manifest's text or bytes.
        rollout_id: As ``load_manifest``.
        extra_regions: As ``load_manifest``.

    Raises:
        ManifestError: listing every problem found, each with its path.
    """
    return validate_document(parse_document(content), rollout_id, extra_regions=extra_regions)


def validate_document(
    data: Any, rollout_id: str | None = None, *, extra_regions: Collection[str] = ()
) -> RolloutSpec:
    """Validate an already parsed manifest document.

    Every check runs, whatever else is wrong: a part that is invalid only keeps out the checks
    that need it (the approval gates need the waves, gates and regions, and every target).

    Args:
        data: The parsed document.
        rollout_id: As ``load_manifest``.
        extra_regions: As ``load_manifest``.

    Raises:
        ManifestError: listing every problem found, each with its path.
    """
    problems: list[Problem] = []
    document: Manifest | None = None
    try:
        document = Manifest.model_validate(
            data, context={"extra_regions": frozenset(extra_regions)}
        )
    except ValidationError as exc:
        problems = manifest_problems(exc, Manifest)
    problem = None if rollout_id is None else rollout_id_problem(rollout_id)
    if problem is not None:
        problems.append(("rollout_id", problem))
    if problems or document is None:
        raise ManifestError(problems)
    strategy, targets = document.payload()
    return RolloutSpec(
        rollout_id=rollout_id or derive_rollout_id(strategy, targets),
        strategy=strategy,
        targets=targets,
    )


# Keys added after the derived id was defined (0.2.0): they enter the hash only when set, so a
# manifest that does not use them keeps the id an earlier release derived for it.
LATER_STRATEGY_KEYS = ("existing", "notify", "upgrade")
LATER_TARGET_KEYS = ("restore", "upgrade")


def _without_later_defaults(model: BaseModel, later: tuple[str, ...]) -> dict[str, Any]:
    dumped = model.model_dump(mode="json")
    defaults = type(model).model_fields
    for key in later:
        if getattr(model, key) == defaults[key].get_default(call_default_factory=True):
            dumped.pop(key, None)
    return dumped


def derive_rollout_id(strategy: RolloutStrategy, targets: Iterable[MeshTarget]) -> str:
    """``fleet-`` and 12 hex digits of the SHA-256 of the validated rollout.

    Hashing the validated form (defaults applied, durations in seconds, keys sorted) means
    formatting, comments, YAML vs JSON and moving a value into ``defaults`` keep the id; any
    change to what would be rolled out, including the order of targets, changes it.
    """
    canonical = json.dumps(
        {
            "strategy": _without_later_defaults(strategy, LATER_STRATEGY_KEYS),
            "targets": [_without_later_defaults(t, LATER_TARGET_KEYS) for t in targets],
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,  # a lone surrogate from a JSON escape must still hash
    )
    return "fleet-" + hashlib.sha256(canonical.encode()).hexdigest()[:12]


def describe_strategy(strategy: RolloutStrategy, total: int) -> str:
    """One line on how a rollout of ``total`` targets proceeds, for summaries."""
    ends = strategy.wave_ends(total)
    first, every = format_duration(strategy.first_poll_s), format_duration(strategy.poll_interval_s)
    return (
        f"{count_of(len(ends), 'wave')} ending at {'/'.join(map(str, ends))}, "
        f"window {strategy.window}, "
        f"failure budget {strategy.failure_budget(total)}, first poll {first}, every {every}, "
        f"timeout {format_duration(strategy.timeout_s)}"
    )


def describe_schedule(strategy: RolloutStrategy, targets: Sequence[MeshTarget]) -> str:
    """``describe_strategy``, with the regions, soak, verification and approval gates."""
    schedule = schedule_of(strategy, targets)
    timings = describe_strategy(strategy, len(targets))
    if schedule.mode == "sequential":
        ends = {
            part.region: "/".join(
                str(w.end - part.start) for w in schedule.waves if w.region == part.region
            )
            for part in schedule.regions
        }
        regions = ", ".join(
            f"{part.region} ({count_of(part.size)}, waves ending at {ends[part.region]}, "
            f"budget {part.failure_budget})"
            for part in schedule.regions
        )
        # Each region walks its own waves: the fleet-wide wave ends would mislead.
        timings = f"regions one after another: {regions}, " + timings.split(", ", 1)[1]
    elif schedule.mode == "parallel":
        regions = ", ".join(
            f"{part.region} ({count_of(part.size)}, budget {part.failure_budget})"
            for part in schedule.regions
        )
        timings += f", regions in parallel: {regions}"
    return "; ".join([timings, *progressive_parts(schedule)])


def progressive_parts(schedule: Schedule) -> list[str]:
    """Soak, verification and gates in words (nothing for a strategy without them)."""
    parts: list[str] = []
    if schedule.soak_s:
        parts.append(f"soak {format_duration(schedule.soak_s)} between waves")
    if schedule.verify:
        host = schedule.webhook_host
        parts.append(
            f"verify each wave but the last (webhook {host})"
            if host
            else "verify each wave but the last"
        )
    if schedule.approve_after:
        waves = ", ".join(map(str, schedule.approve_after))
        within = " of each region" if schedule.mode == "sequential" else ""
        plural = "s" if len(schedule.approve_after) > 1 else ""
        parts.append(f"approval after wave{plural} {waves}{within}")
    return parts
