"""``meshfleet validate``: every problem at once, and ``--json``'s one document either way."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from meshfleet.cli.app import app
from meshfleet.cli.exit_codes import ExitCode
from meshfleet.cli.plan_output import VALIDATION_KEYS
from tests.helpers.cli_run import manifest_target, write_manifest
from tests.helpers.paths import EXAMPLE_MANIFEST

P1 = "0123456789abcdef0123456789abcdef"
P2 = "fedcba9876543210fedcba9876543210"
runner = CliRunner()

TWO_WRONGS = {
    "waves": [1, "100%"],
    "verify": {"webhook": "http://checks.example.com/verify"},
    "approve_after": [3],
}
WEBHOOK_PROBLEM = (
    "strategy.verify.webhook",
    "'http://checks.example.com/verify' must be https:// (plain http only to loopback: "
    "127.0.0.0/8, ::1, localhost)",
)
GATE_PROBLEM = (
    "strategy.approve_after[0]",
    "wave 3 is beyond the last wave: the rollout has 2 waves (ending at 1/2)",
)


def two_wrongs(tmp_path: Path) -> Path:
    targets = [manifest_target(P1, "mesh-one"), manifest_target(P2, "mesh-two")]
    return write_manifest(tmp_path / "fleet.yaml", targets, **TWO_WRONGS)


def test_a_bad_webhook_and_a_gate_beyond_the_last_wave_are_both_reported(tmp_path: Path) -> None:
    path = two_wrongs(tmp_path)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == ExitCode.INVALID
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{path}: {': '.join(WEBHOOK_PROBLEM)}",
        f"{path}: {': '.join(GATE_PROBLEM)}",
        f"{path}: 2 problems",
    ]


def test_json_of_an_invalid_manifest_lists_every_problem_and_exits_2(tmp_path: Path) -> None:
    path = two_wrongs(tmp_path)
    result = runner.invoke(app, ["validate", str(path), "--json"])
    assert result.exit_code == ExitCode.INVALID
    document = json.loads(result.stdout)
    assert list(document) == list(VALIDATION_KEYS)
    assert document == {
        "valid": False,
        "source": str(path),
        "problems": [
            {"path": WEBHOOK_PROBLEM[0], "message": WEBHOOK_PROBLEM[1]},
            {"path": GATE_PROBLEM[0], "message": GATE_PROBLEM[1]},
        ],
        "rollout_id": None,
        "targets": None,
        "projects": None,
        "regions": None,
        "summary": None,
        "schedule": None,
    }
    # The document is the whole answer: nothing repeats it on standard error.
    assert result.stderr == ""


def test_json_of_a_valid_manifest_summarises_it() -> None:
    result = runner.invoke(
        app, ["validate", str(EXAMPLE_MANIFEST), "--json", "--rollout-id", "rel-2026.11.25"]
    )
    assert result.exit_code == ExitCode.OK, result.output
    document = json.loads(result.stdout)
    assert list(document) == list(VALIDATION_KEYS)
    assert document["valid"] is True
    assert document["source"] == str(EXAMPLE_MANIFEST)
    assert document["problems"] == []
    assert document["rollout_id"] == "rel-2026.11.25"
    assert (document["targets"], document["projects"], len(document["regions"])) == (27, 6, 5)
    assert document["regions"][0] == "ap-southeast-3"
    assert document["summary"].startswith("27 targets in 6 projects and 5 regions; 3 waves")
    assert [w["end"] for w in document["schedule"]["waves"]] == [1, 7, 27]
    text = runner.invoke(app, ["validate", str(EXAMPLE_MANIFEST), "--rollout-id", "rel-2026.11.25"])
    assert text.stdout.strip() == f"{EXAMPLE_MANIFEST}: valid: {document['summary']}"


def test_json_of_an_unreadable_document_has_a_problem_without_a_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("targets: [\n")
    result = runner.invoke(app, ["validate", str(bad), "--json"])
    assert result.exit_code == ExitCode.INVALID
    (problem,) = json.loads(result.stdout)["problems"]
    assert problem["path"] == ""
    assert problem["message"].startswith("YAML syntax error at line 2")


def test_json_reads_stdin_and_the_extra_regions(tmp_path: Path) -> None:
    targets = [{**manifest_target(P1, "mesh-new"), "region": "ap-southeast-99"}]
    text = write_manifest(tmp_path / "fleet.yaml", targets).read_text()
    refused = runner.invoke(app, ["validate", "-", "--json"], input=text)
    assert refused.exit_code == ExitCode.INVALID
    assert [p["path"] for p in json.loads(refused.stdout)["problems"]] == ["targets[0].region"]
    accepted = runner.invoke(
        app,
        ["validate", "-", "--json"],
        input=text,
        env={"MESHFLEET_EXTRA_REGIONS": "ap-southeast-99"},
    )
    assert accepted.exit_code == ExitCode.OK, accepted.output
    assert json.loads(accepted.stdout)["regions"] == ["ap-southeast-99"]


def test_a_bad_rollout_id_is_a_usage_error_even_with_json() -> None:
    result = runner.invoke(
        app, ["validate", str(EXAMPLE_MANIFEST), "--json", "--rollout-id", "a/b"]
    )
    assert result.exit_code == ExitCode.INVALID
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "meshfleet: --rollout-id: 'a/b' is not a rollout id: 1-128 letters, digits, '.', '_', "
        "':' or '-', starting with a letter or digit"
    ]
