"""The effective schedule of a rollout: targets in rollout order, regions, waves, soak and gates.

The starter, ``meshfleet validate``, ``meshfleet plan`` and the manifest's own checks all read
the schedule from here, so what a person is shown is the order the workflow walks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from meshfleet.models import MeshTarget, RolloutStrategy
from meshfleet.waves import Wave, lay_out

ScheduleMode = Literal["fleet", "sequential", "parallel"]


@dataclass(frozen=True)
class RegionPart:
    """The targets of one region: ``start``..``end`` in rollout order, with its own budget."""

    region: str
    start: int
    end: int
    failure_budget: int

    @property
    def size(self) -> int:
        """How many targets the region holds."""
        return self.end - self.start


@dataclass(frozen=True)
class Schedule:
    """How a rollout of given targets proceeds."""

    mode: ScheduleMode
    """``fleet`` without ``strategy.regions``; else the regions' mode."""
    targets: list[MeshTarget]
    """In the order the rollout walks them."""
    regions: list[RegionPart]
    waves: list[Wave]
    """The walk's own waves (``meshfleet.waves``)."""
    failure_budget: int
    soak_s: float
    verify: bool
    webhook_host: str | None
    approve_after: list[int]

    @property
    def max_waves(self) -> int:
        """The most waves any region (or the whole fleet) has: a gate beyond it never stands."""
        return max((wave.number for wave in self.waves), default=0)


def order_targets(
    strategy: RolloutStrategy, targets: Sequence[MeshTarget]
) -> tuple[list[MeshTarget], list[RegionPart]]:
    """The targets in rollout order, and the region parts (none without ``strategy.regions``).

    With regions, targets are grouped by the regions' order; within a region they keep the
    manifest's order (a stable sort), so the canary is still the first target written there.
    Regions of the order without targets have no part.

    Raises:
        ValueError: a target's region is not in ``strategy.regions.order`` (the manifest
            loader reports that with the target's path; a spec built in code may still hold it).
    """
    regions = strategy.regions
    if regions is None:
        return list(targets), []
    rank = {region: i for i, region in enumerate(regions.order)}
    outside = sorted({t.region for t in targets if t.region not in rank})
    if outside:
        raise ValueError(f"regions {', '.join(outside)} are not in strategy.regions.order")
    ordered = sorted(targets, key=lambda t: rank[t.region])
    parts: list[RegionPart] = []
    start = 0
    for region in regions.order:
        size = sum(1 for t in ordered if t.region == region)
        if size:
            budget = regions.budget(strategy.max_failures, size)
            parts.append(RegionPart(region, start, start + size, budget))
            start += size
    return ordered, parts


def count_of(count: int, noun: str = "target") -> str:
    """``1 target``, ``2 targets``, ``1 mesh``, ``2 meshes``: every count meshfleet prints.

    Args:
        count: How many.
        noun: The singular of what is counted; a noun ending in s, x, z, ch or sh takes "es".
    """
    if count == 1:
        return f"{count} {noun}"
    return f"{count} {noun}{'es' if noun.endswith(('s', 'x', 'z', 'ch', 'sh')) else 's'}"


def webhook_host(strategy: RolloutStrategy) -> str | None:
    """The verify webhook's host only: its path or query may hold a signature, never shown."""
    if strategy.verify is None or strategy.verify.webhook is None:
        return None
    return urlsplit(strategy.verify.webhook).hostname


def schedule_of(strategy: RolloutStrategy, targets: Sequence[MeshTarget]) -> Schedule:
    """The schedule of ``targets`` under ``strategy``.

    Raises:
        ValueError: as ``order_targets``.
    """
    ordered, parts = order_targets(strategy, targets)
    mode: ScheduleMode = "fleet" if strategy.regions is None else strategy.regions.mode
    return Schedule(
        mode=mode,
        targets=ordered,
        regions=parts,
        waves=lay_out(strategy, len(ordered), parts),
        failure_budget=strategy.failure_budget(len(ordered)),
        soak_s=strategy.soak_s,
        verify=strategy.verify is not None,
        webhook_host=webhook_host(strategy),
        approve_after=list(strategy.approve_after),
    )
