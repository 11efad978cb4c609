"""Which builds run a rollout's action: meshfleet's own versions from 0.3.0, and any build id
that is not a meshfleet version (an operator's own, taken to be current)."""

from __future__ import annotations

import pytest

from meshfleet.worker_builds import runs_actions


@pytest.mark.parametrize(
    ("build_id", "runs"),
    [
        ("0.1.0", False),
        ("0.2.0", False),
        ("0.2.9", False),
        ("0.3.0.dev0", True),
        ("0.3.0", True),
        ("0.10.0", True),
        ("1.0.0", True),
        ("release-2026-12-07", True),
    ],
)
def test_a_build_runs_actions_from_0_3_0(build_id: str, runs: bool) -> None:
    assert runs_actions(build_id) is runs
