"""What the CLI prints of progressive delivery: the --json keys, lines and exit codes."""

from __future__ import annotations

from typing import Any

import pytest

from meshfleet.cli.exit_codes import ExitCode
from meshfleet.cli.output import (
    CONVERGE_KEYS,
    FAILURE_KEYS,
    PROGRESSIVE_KEYS,
    REPORT_KEYS,
    UPGRADE_KEYS,
    progress_line,
    report_document,
    report_lines,
    rollout_exit_code,
)
from meshfleet.cli.plan_output import REFUSED_ROW, plan_counts, refusal_lines, rollout_plan_table
from meshfleet.cli.rollbacks import plan_lines
from meshfleet.cli.tables import table
from meshfleet.models import Approval, MeshTarget, RolloutState, TargetFailure
from meshfleet.plan import PlannedTarget, Refusal
from meshfleet.rollback import PlannedDeletion
from tests.helpers.reports import progress_factory

# A rollout of 10 targets, 4 created, in wave 1 of 2 unless a test says else.
progress = progress_factory(
    rollout_id="rel-9",
    total=10,
    created=4,
    pending=6,
    wave=1,
    waves=2,
    failure_budget=1,
    seconds=40.0,
)


ALICE = Approval(wave=1, region="eu-west-101", by="alice", at="2026-11-25T10:20:30.5+00:00")


def test_the_document_keeps_its_keys_first_and_adds_the_new_ones() -> None:
    plain = report_document(progress())
    assert list(plain) == [
        *REPORT_KEYS,
        "failures",
        *PROGRESSIVE_KEYS,
        *CONVERGE_KEYS,
        *UPGRADE_KEYS,
    ]
    assert {key: plain[key] for key in UPGRADE_KEYS} == {
        "upgraded": 0,
        "finalized": 0,
        "upgrades": [],
    }
    assert {key: plain[key] for key in CONVERGE_KEYS} == {
        "updated": 0,
        "in_sync": 0,
        "drifted": 0,
        "drift": [],
    }
    assert {key: plain[key] for key in PROGRESSIVE_KEYS} == {
        "region": None,
        "soaking_until": None,
        "halted_region": None,
        "halt_reason": None,
        "approvals": [],
    }
    full = report_document(
        progress(
            state=RolloutState.HALTED,
            region="eu-west-101",
            halted_region="eu-west-101",
            halt_reason="verify webhook answered 503: not ready",
            approvals=[ALICE],
        )
    )
    assert full["approvals"] == [
        {"wave": 1, "region": "eu-west-101", "by": "alice", "at": "2026-11-25T10:20:30.5+00:00"}
    ]
    assert (full["region"], full["halted_region"], full["halt_reason"]) == (
        "eu-west-101",
        "eu-west-101",
        "verify webhook answered 503: not ready",
    )
    assert FAILURE_KEYS == (
        "project_id",
        "region",
        "cluster_id",
        "mesh_name",
        "error_code",
        "message",
    )


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"state": RolloutState.AWAITING_APPROVAL}, ExitCode.AWAITING_APPROVAL),
        # A gate wins over failures within the budget: the rollout waits, it has not failed.
        ({"state": RolloutState.AWAITING_APPROVAL, "failed": 1}, ExitCode.AWAITING_APPROVAL),
        ({"state": RolloutState.SOAKING}, ExitCode.OK),
        ({"state": RolloutState.VERIFYING}, ExitCode.OK),
        ({"state": RolloutState.SOAKING, "failed": 1}, ExitCode.FAILED),
        ({"state": RolloutState.HALTED, "halted_region": "eu-west-101"}, ExitCode.FAILED),
        ({"state": RolloutState.RUNNING}, ExitCode.OK),
    ],
)
def test_exit_codes_of_the_new_states(fields: dict[str, Any], code: ExitCode) -> None:
    assert rollout_exit_code(progress(**fields)) == code


def test_awaiting_approval_says_how_to_go_on() -> None:
    p = progress(state=RolloutState.AWAITING_APPROVAL, region="eu-west-101", approvals=[ALICE])
    line = progress_line(p)
    assert line.startswith("rel-9: awaiting_approval · wave 1/2 in eu-west-101 · 4/10 done")
    assert "ETA" not in line  # how long a person takes is no pace
    assert "approved wave 1 in eu-west-101 by alice" in line
    lines = report_lines(p)
    assert lines[1] == (
        "awaiting approval after wave 1 in eu-west-101: `meshfleet approve rel-9` goes on, "
        "`meshfleet cancel rel-9` stops"
    )
    assert lines[-2:] == ["approvals:", "  wave 1 in eu-west-101: by alice at 2026-11-25T10:20:30Z"]


def test_soaking_names_its_end() -> None:
    p = progress(state=RolloutState.SOAKING, soaking_until="2026-11-25T10:30:00+00:00")
    assert "· soaking until 2026-11-25T10:30:00Z" in progress_line(p)
    assert "soaking until 2026-11-25T10:30:00Z, then the next wave" in report_lines(p)
    # Not an ISO time: shown as given rather than lost.
    odd = progress(state=RolloutState.SOAKING, soaking_until="soon")
    assert "soaking until soon" in progress_line(odd)


def test_a_halt_by_a_region_or_the_webhook_says_which_and_why() -> None:
    by_region = progress(state=RolloutState.HALTED, failed=2, halted_region="eu-west-101")
    assert "· halted by region eu-west-101" in progress_line(by_region)
    assert report_lines(by_region)[1] == (
        "halted in eu-west-101: its failures exceed the region's own budget; "
        "`meshfleet resume rel-9` goes on, `meshfleet cancel rel-9` stops"
    )
    long_reason = "verify webhook answered 503: " + "x" * 400
    by_webhook = progress(state=RolloutState.HALTED, halt_reason=long_reason)
    line = progress_line(by_webhook)
    assert "· verify webhook answered 503: xxx" in line
    assert "x…" in line  # one readable line, however long the answer
    assert len(line) < 300
    assert report_lines(by_webhook)[1].startswith(f"halted: {long_reason}; `meshfleet resume")


def test_without_the_new_fields_the_lines_are_as_before() -> None:
    assert progress_line(progress()) == (
        "rel-9: running · wave 1/2 · 4/10 done (created 4, adopted 0, failed 0) · "
        "0 in flight · 6 pending · ETA 1m"
    )


@pytest.mark.parametrize(
    ("code", "message", "text"),
    [
        # An ASM error's message starts with its status and code: the code is not said twice.
        (
            "ASM.01010003",
            "409 ASM.01010003: a mesh named 'mesh-a' already exists",
            "409 ASM.01010003: a mesh named 'mesh-a' already exists",
        ),
        ("MeshGone", "mesh 'mesh-a' is gone", "MeshGone mesh 'mesh-a' is gone"),
        ("CreateFailed", None, "CreateFailed"),
        (None, "no code", "no code"),
    ],
)
def test_a_failure_line_names_its_code_once(
    code: str | None, message: str | None, text: str
) -> None:
    failure = TargetFailure(
        project_id="0" * 32,
        region="ap-southeast-3",
        cluster_id="c-1",
        mesh_name="mesh-a",
        error_code=code,
        message=message,
    )
    (line,) = [x for x in report_lines(progress(failed=1, failures=[failure])) if "mesh-a" in x]
    assert line.endswith(f"(cluster c-1): {text}")
    assert line.count("ASM.01010003") <= 1


# --- plan: a refused list call is said once ---------------------------------------------------


def _refused_plan() -> list[PlannedTarget]:
    forbidden = Refusal(
        "0123456789abcdef0123456789abcdef",
        "eu-west-101",
        403,
        "APIGW.0302",
        "The IAM user  is\nnot authorized",
        "req-7",
    )
    targets = [
        MeshTarget(
            project_id=forbidden.project_id,
            region=forbidden.region,
            cluster_id=f"c-{i}",
            mesh_name=f"mesh-{i}",
            node_ids=[f"n-{i}"],
        )
        for i in range(3)
    ]
    return [PlannedTarget(t, "error", "HTTP 403 ...", refusal=forbidden) for t in targets]


def test_a_refused_list_call_is_one_line_however_many_targets_it_holds() -> None:
    planned = _refused_plan()
    assert refusal_lines(planned) == [
        "project 0123456789abcdef0123456789abcdef region eu-west-101: list call refused: HTTP 403 "
        "APIGW.0302: The IAM user is not authorized (request id req-7); the credentials may not "
        "list this project's meshes; 3 targets not planned"
    ]
    assert [row.split("  ")[0] for row in rollout_plan_table(planned)[1:]] == [REFUSED_ROW] * 3
    assert plan_counts(planned) == "3 targets: 3 error"
    with_one = plan_counts(planned[:1])
    assert with_one == "1 target: 1 error"


def test_a_cancelled_rollout_counts_its_unstarted_targets_cancelled_not_pending() -> None:
    cancelled = progress(state=RolloutState.CANCELLED, cancelled=6, pending=0)
    document = report_document(cancelled)
    assert (document["cancelled"], document["pending"]) == (6, 0)
    assert "0 pending" in progress_line(cancelled) and "cancelled 6" in progress_line(cancelled)
    running = report_document(progress(in_flight=2, pending=4))
    assert (running["cancelled"], running["pending"]) == (0, 6)  # in flight is still to end


def test_every_moment_is_iso_8601_utc_to_the_second() -> None:
    lines = report_lines(
        progress(
            state=RolloutState.SOAKING,
            soaking_until="2026-11-25T11:20:30.25+01:00",
            approvals=[ALICE],
            finished_at=None,
        )
    )
    text = "\n".join(lines)
    assert "soaking until 2026-11-25T10:20:30Z" in text
    assert "by alice at 2026-11-25T10:20:30Z" in text


def test_a_table_pads_every_column_but_the_last_to_its_widest_cell() -> None:
    lines = table(("A", "LONGER", "LAST"), [("wide cell", "x", "has spaces"), ("b", "yy", "z")])
    assert lines == [
        "A          LONGER  LAST",
        "wide cell  x       has spaces",
        "b          yy      z",
    ]
    assert table(("ONLY",), []) == ["ONLY"]


def test_the_plans_of_a_rollout_and_of_its_rollback_are_one_table() -> None:
    target = MeshTarget(
        project_id="0123456789abcdef0123456789abcdef",
        region="eu-west-101",
        cluster_id="cluster-one",
        mesh_name="mesh-one",
        node_ids=["n-1"],
    )
    rollout = rollout_plan_table(
        [PlannedTarget(target, "in_sync", "exists, phase Running"), PlannedTarget(target, "create")]
    )
    rollback = plan_lines(
        [PlannedDeletion(target, "uid-1", "keep", "re-created since: uid uid-2 is not uid-1")]
    )
    assert [line.split("  ")[0].strip() for line in rollout[1:]] == [
        "in_sync (exists, phase Running)",
        "create",
    ]
    assert rollout[0].split() == ["ACTION", "REGION", "PROJECT", "MESH", "CLUSTER"]
    assert rollback[0].split() == ["ACTION", "REGION", "PROJECT", "MESH", "WHY"]
    assert rollback[1].split(maxsplit=4) == [
        "keep",
        "eu-west-101",
        target.project_id,
        "mesh-one",
        "re-created since: uid uid-2 is not uid-1",
    ]
    # Each value starts under its heading, in both.
    for lines in (rollout, rollback):
        for heading, value in (("REGION", "eu-west-101"), ("MESH", "mesh-one")):
            assert {line.index(value) for line in lines[1:]} == {lines[0].index(heading)}
