"""Shared arithmetic of the scenario lines: ratios, rounding, the API-cost ideal."""

from __future__ import annotations

import math

from bench.fleet import Timing


def ratio(numerator: float, denominator: float) -> float | None:
    """``numerator / denominator`` to three places, None when the denominator is zero."""
    return round(numerator / denominator, 3) if denominator else None


def ideal_gets_per_mesh(timing: Timing) -> int:
    """Show calls a perfect poller needs: ceil(create time / poll interval), at least one."""
    return max(1, math.ceil(timing.create_s / timing.poll_s))


def ideal_calls_per_mesh(timing: Timing) -> int:
    """Every API call a perfect client needs: one POST plus the ideal polls."""
    return 1 + ideal_gets_per_mesh(timing)


def timing_figures(timing: Timing) -> dict[str, float]:
    """The timings a line was measured with."""
    return {
        "create_s": timing.create_s,
        "first_poll_s": timing.first_poll_s,
        "poll_s": timing.poll_s,
        "window": timing.window,
    }
