"""What a person or a CI log sees of a rollout: the progress line, its ETA and the line view."""

from __future__ import annotations

import io
from typing import Any

import pytest

from meshfleet.cli.output import eta_seconds, progress_line, report_lines, whole_seconds
from meshfleet.cli.progress import LineView
from meshfleet.models import RolloutState, TargetFailure
from tests.helpers.reports import progress_factory

# A rollout of 40 targets in wave 2 of 3, 10 done after 100 s, unless a test says else.
progress = progress_factory(
    rollout_id="rel-7",
    total=40,
    created=6,
    adopted=2,
    failed=2,
    in_flight=5,
    pending=25,
    wave=2,
    waves=3,
    failure_budget=2,
    seconds=100.0,
)


def failure(name: str) -> TargetFailure:
    return TargetFailure(
        project_id="p1",
        region="ap-southeast-3",
        cluster_id=f"cluster-{name}",
        mesh_name=name,
        error_code="ASM.01000001",
        message="refused",
    )


def test_the_line_names_state_wave_counts_and_eta() -> None:
    # 10 of 40 done in 100 s: 30 more take 300 s at that pace.
    assert progress_line(progress()) == (
        "rel-7: running · wave 2/3 · 10/40 done (created 6, adopted 2, failed 2) · "
        "5 in flight · 25 pending · ETA 5m"
    )


def test_cancelled_targets_are_counted_done_and_named() -> None:
    line = progress_line(progress(state=RolloutState.CANCELLED, cancelled=30, in_flight=0))
    assert "40/40 done (created 6, adopted 2, failed 2, cancelled 30)" in line
    # A finished rollout has nothing left to estimate.
    assert "ETA" not in line


@pytest.mark.parametrize(
    ("fields", "eta"),
    [
        ({}, 300.0),
        ({"created": 0, "adopted": 0, "failed": 0}, None),  # nothing done yet: no pace
        ({"seconds": 0.0}, None),
        ({"state": RolloutState.COMPLETED}, None),
        ({"created": 36, "adopted": 2, "failed": 2, "in_flight": 0, "pending": 0}, None),
        # Targets stand still: the rest is a person's or a timer's time, not a pace.
        *(
            ({"state": state}, None)
            for state in (
                RolloutState.PAUSED,
                RolloutState.HALTED,
                RolloutState.CANCELLING,
                RolloutState.SOAKING,
                RolloutState.VERIFYING,
                RolloutState.AWAITING_APPROVAL,
            )
        ),
    ],
)
def test_eta_is_the_pace_so_far_or_nothing(fields: dict[str, Any], eta: float | None) -> None:
    assert eta_seconds(progress(**fields)) == eta


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.709, "1s"), (1.4, "1s"), (90.4, "1m30s"), (3725, "1h2m5s"), (0, "0s")]
)
def test_spans_are_whole_seconds(seconds: float, text: str) -> None:
    assert whole_seconds(seconds) == text
    assert "ms" not in progress_line(progress(seconds=seconds or 1.0, created=1, adopted=0))


def test_a_halted_report_says_how_to_go_on_and_lists_failures() -> None:
    halted = progress(
        state=RolloutState.HALTED, failed=3, failures=[failure("m-a"), failure("m-b")]
    )
    lines = report_lines(halted)

    assert lines[0].startswith("rel-7: halted · ")
    assert lines[1] == (
        "halted: 3 failures exceed the budget of 2; "
        "`meshfleet resume rel-7` goes on, `meshfleet cancel rel-7` stops"
    )
    assert "  ap-southeast-3 p1 m-a (cluster cluster-m-a): ASM.01000001 refused" in lines
    # Only the first failures travel in the report; the rest are counted, not lost.
    assert lines[-1] == "  … and 1 more (see each target's workflow)"


class Clock:
    """The line view's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_line_view_prints_on_change_at_a_bounded_rate() -> None:
    out, clock = io.StringIO(), Clock()
    view = LineView(out, every_s=5, quiet_s=60, clock=clock)

    view.show(progress())  # the first look is always printed
    clock.now = 1
    view.show(progress(created=7))  # finished targets, but within 5 s of the last line
    clock.now = 2
    view.show(progress(wave=3))  # a new wave is news at once
    clock.now = 8
    view.show(progress(wave=3, created=8))  # finished targets, 6 s after the last line
    clock.now = 20
    view.show(progress(wave=3, created=8))  # nothing new, and not yet quiet for a minute
    clock.now = 69
    view.show(progress(wave=3, created=8))  # a minute of silence: still alive

    lines = out.getvalue().splitlines()
    assert [line.split(" · ")[1] for line in lines] == [
        "wave 2/3",
        "wave 3/3",
        "wave 3/3",
        "wave 3/3",
    ]
    assert "created 8" in lines[2]
    assert lines[2] == lines[3]


def test_the_line_view_announces_each_failure_once() -> None:
    out, clock = io.StringIO(), Clock()
    view = LineView(out, clock=clock)

    view.show(progress(failures=[failure("m-a")]))
    clock.now = 1
    view.show(progress(failures=[failure("m-a"), failure("m-b")]))

    announced = [line for line in out.getvalue().splitlines() if line.startswith("failed:")]
    assert announced == [
        "failed: ap-southeast-3 p1 m-a (cluster cluster-m-a): ASM.01000001 refused",
        "failed: ap-southeast-3 p1 m-b (cluster cluster-m-b): ASM.01000001 refused",
    ]
