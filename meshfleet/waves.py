"""How a rollout walks its targets: regions first, then waves.

One rule for the workflow that walks the targets and for everything that shows the walk before
or while it happens (``meshfleet plan``, ``start --json``, ``status``), so that what a person is
shown is the walk the workflow takes. Pure and small: workflows import it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from meshfleet.models import RolloutStrategy


class Span(Protocol):
    """Where one region's targets lie in rollout order (a starter's segment, a plan's part)."""

    @property
    def region(self) -> str: ...

    @property
    def start(self) -> int: ...

    @property
    def end(self) -> int: ...


@dataclass(frozen=True)
class Wave:
    """One step of the walk: targets ``start``..``end`` in rollout order.

    ``number`` of ``count`` counts within ``region`` when regions go one after the other
    (each region walks every wave, with its own canary); otherwise waves span the whole fleet
    and ``region`` is None.
    """

    number: int
    region: str | None
    start: int
    end: int
    count: int
    approval: bool
    """An approval gate stands after this wave; never after the walk's very last one."""

    @property
    def size(self) -> int:
        """How many targets the wave starts."""
        return self.end - self.start

    @property
    def name(self) -> str:
        """``wave 2/3``, or ``wave 2/3 of eu-west-101`` in a region's own walk."""
        where = f" of {self.region}" if self.region else ""
        return f"wave {self.number}/{self.count}{where}"


def by_region(strategy: RolloutStrategy) -> bool:
    """Whether each region walks the waves on its own (``regions: {mode: sequential}``)."""
    return strategy.regions is not None and strategy.regions.mode == "sequential"


def lay_out(strategy: RolloutStrategy, total: int, segments: Sequence[Span] | None) -> list[Wave]:
    """The waves of ``total`` targets, within each of ``segments`` when regions go in sequence.

    ``segments`` are the regions' spans in rollout order; without them (no regions, or a
    rollout that predates them) the waves span the whole fleet. Empty spans hold no wave.
    """
    groups: list[tuple[str | None, int, int]] = (
        [(s.region, s.start, s.end) for s in segments]
        if segments and by_region(strategy)
        else [(None, 0, total)]
    )
    gates = set(strategy.approve_after)
    waves: list[Wave] = []
    for region, start, end in groups:
        if end <= start:
            continue
        ends = strategy.wave_ends(end - start)
        begin = start
        for number, wave_end in enumerate(ends, start=1):
            waves.append(Wave(number, region, begin, start + wave_end, len(ends), number in gates))
            begin = start + wave_end
    if waves and waves[-1].approval:
        # Nothing is held back after the walk's very last wave: no gate stands there.
        waves[-1] = replace(waves[-1], approval=False)
    return waves
