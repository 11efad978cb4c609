"""The bench's drift scenario end to end on a small fleet: one JSON line, every check met."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers.paths import REPO


def test_the_drift_scenario_on_400_targets_prints_one_line_with_its_figures() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "drift", "--targets=400"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    line = json.loads(lines[0])
    assert (line["scenario"], line["targets"], line["list_groups"]) == ("drift", 400, 200)
    assert line["expected"] == {"in_sync": 380, "missing": 4, "update": 8, "upgrade": 8}
    assert line["met"] == {
        "drift_cli_counts_as_expected": True,
        "scheduled_counts_as_expected": True,
        "one_list_per_project_and_region": True,
        "no_writes": True,
        "drift_exit_5": True,
    }
    for part in ("plan", "drift"):
        assert line[part]["wall_s"] > 0 and 20 < line[part]["peak_rss_mb"] < 1000
    assert line["scheduled"]["trigger_to_result_s"] > 0
    assert 20 < line["scheduled"]["worker_peak_rss_mb"] < 1000
