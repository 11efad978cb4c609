"""The bench's api_cost scenario end to end on a tiny fleet: one JSON line with sane figures."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers.paths import REPO

ROOT = REPO
REQUIRED = {
    "scenario",
    "targets",
    "wall_s",
    "meshes_per_s",
    "gets_per_mesh",
    "ideal_gets_per_mesh",
    "history_events_per_target",
    "history_events_per_rollout_run",
    "worker_peak_rss_mb",
}


def test_api_cost_on_five_targets_prints_one_line_with_the_issue_figures() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "api_cost",
            "--targets=5",
            "--create-s=0.5",
            "--first-poll-s=0.2",
            "--poll-s=0.2",
            "--window=5",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    line = json.loads(lines[0])
    assert not REQUIRED - set(line), REQUIRED - set(line)
    assert line["scenario"] == "api_cost"
    assert line["targets"] == 5
    assert line["meshfleet"]["running"] == 5
    assert line["posts_per_mesh"] == 1.0
    # Polls at 0.2, 0.4 and 0.6 s find a mesh that takes 0.5 s: three, and never fewer than one.
    assert line["ideal_gets_per_mesh"] == 3
    assert 1 <= line["gets_per_mesh"] <= 2 * line["ideal_gets_per_mesh"]
    assert line["wall_s"] > 0 and line["meshes_per_s"] > 0
    assert 10 <= line["history_events_per_target"] <= 100
    assert line["history_events_per_rollout_run"] >= 5 * 3  # initiated, started, completed each
    assert line["rollout_runs"] == 1
    assert 20 < line["worker_peak_rss_mb"] < 1000
