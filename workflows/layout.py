"""The walk of a rollout run: its region segments, checked, and its waves.

The waves themselves come from ``meshfleet.waves``, the one layout that ``plan`` and
``start --json`` show too; this adds what only a running rollout knows: whether it walks by
region (decided once, by its first run) and where in the walk a target index lies.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from temporalio.exceptions import ApplicationError

from meshfleet.contract.payloads import RegionSegment, RolloutInput
from meshfleet.waves import Wave, lay_out


@dataclass(frozen=True)
class Walk:
    """The steps of one rollout: ``waves`` in order, within ``segments`` when it walks by
    region (empty otherwise)."""

    segments: list[RegionSegment]
    waves: list[Wave]
    ends: list[int] = field(init=False)
    """Where each wave ends: the index of the first target of the next."""
    _starts: list[int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ends", [w.end for w in self.waves])
        object.__setattr__(self, "_starts", [s.start for s in self.segments])

    def region_of(self, index: int) -> str | None:
        """The region of the target at ``index``, when the rollout walks by region."""
        if not self.segments:
            return None
        return self.segments[bisect.bisect_right(self._starts, index) - 1].region

    def size_of(self, region: str) -> int:
        """How many of the rollout's targets lie in ``region``."""
        return sum(s.end - s.start for s in self.segments if s.region == region)


def walk_of(inp: RolloutInput, *, by_region: bool) -> Walk:
    """The walk of ``inp``'s targets: by region when ``by_region`` (and the input has segments).

    Raises:
        ApplicationError: the segments do not cover the targets in order.
    """
    segments = checked_segments(inp) if by_region else []
    return Walk(segments, lay_out(inp.strategy, inp.total, segments))


def checked_segments(inp: RolloutInput) -> list[RegionSegment]:
    """The input's non-empty region segments, which must cover its targets in order.

    Raises:
        ApplicationError: a gap or an overlap, which means the targets are not in the order the
            regions promise (the starter sorts them by region and cuts them into segments).
    """
    segments = [s for s in inp.segments or [] if s.end > s.start]
    covered = 0
    for segment in segments:
        if segment.start != covered:
            break
        covered = segment.end
    if not segments or covered != inp.total:
        raise ApplicationError(
            f"the region segments do not cover targets 0..{inp.total} in order: "
            + ", ".join(f"{s.region} {s.start}..{s.end}" for s in segments),
            type="InvalidRegionSegments",
            non_retryable=True,
        )
    return segments
