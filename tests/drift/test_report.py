"""A drift report from judged targets (meshfleet/drift_check.py), its text and its document,
and the list-only API a check calls ASM through."""

from __future__ import annotations

from typing import Any

import pytest

from meshfleet.asm.models import Mesh
from meshfleet.contract.drift import (
    DriftCheckInput,
    DriftPages,
    DriftReport,
    drift_page_workflow_id,
)
from meshfleet.drift import FieldChange
from meshfleet.drift_check import ListOnly, ReadOnlyError, drift_report
from meshfleet.models import MeshTarget
from meshfleet.plan import PlanAction, PlannedTarget
from tests.helpers.fleet import SAMPLE_TARGET, target
from workflows.drift import details_of

SAMPLING = "config.telemetryConfig.tracing.randomSamplingPercentage"


def planned(i: int, action: PlanAction, detail: str = "", **extra: Any) -> PlannedTarget:
    return PlannedTarget(target(i), action, detail, **extra)


def test_every_judgement_is_counted_and_only_what_is_not_in_sync_is_listed() -> None:
    fleet = [
        planned(0, "in_sync", "exists, phase Running", mesh_version="1.18.7-r5"),
        planned(1, "create"),
        planned(
            2,
            "update",
            "1 field differs, phase Running",
            changes=(FieldChange(SAMPLING, 1, 10),),
            mesh_version="1.18.7-r5",
        ),
        planned(3, "upgrade", "1.15.7-r1 -> 1.18.7-r5, phase Running", mesh_version="1.15.7-r1"),
        planned(4, "downgrade", "1.19.1-r1 -> 1.18.7-r5, phase Running", mesh_version="1.19.1-r1"),
        planned(5, "conflict", "cluster in mesh other"),
        planned(6, "error", "HTTP 403 APIGW.0303: forbidden"),
    ]

    report = drift_report(fleet)

    assert report.counts() == {
        "in_sync": 1,
        "missing": 1,
        "update": 1,
        "upgrade": 1,
        "downgrade": 1,
        "conflict": 1,
        "error": 1,
    }
    assert (report.total, report.not_in_sync, report.unlisted) == (7, 6, 0)
    assert [t.judgement for t in report.drifted] == [
        "missing",
        "update",
        "upgrade",
        "downgrade",
        "conflict",
        "error",
    ]
    assert [t.mesh_name for t in report.drifted] == [f"mesh-{i:05d}" for i in range(1, 7)]
    update = report.drifted[1]
    assert [(c.path, c.before, c.after) for c in update.changes] == [(SAMPLING, 1, 10)]
    assert report.drifted[2].mesh_version == "1.15.7-r1"


def test_the_list_is_capped_and_the_counts_stay_whole() -> None:
    fleet = [planned(i, "create") for i in range(250)] + [planned(250, "in_sync")]

    report = drift_report(fleet)

    assert (report.total, report.missing, report.in_sync) == (251, 250, 1)
    assert len(report.drifted) == 200
    assert report.unlisted == 50
    assert report.lines()[-1] == "… and 50 more"
    assert report.document()["unlisted"] == 50


def test_the_text_names_each_target_and_each_field_beneath_it() -> None:
    fleet = [
        planned(0, "in_sync"),
        PlannedTarget(
            SAMPLE_TARGET, "update", "1 field differs", changes=(FieldChange(SAMPLING, 1, 10),)
        ),
        planned(1, "create"),
    ]

    report = drift_report(fleet)

    assert report.lines() == [
        "3 targets: 1 in sync, 2 drifted (1 missing, 1 update)",
        f"update     ap-southeast-3  {SAMPLE_TARGET.project_id}  mesh-a  cluster cluster-a  "
        "1 field differs",
        f"    {SAMPLING}: 1 -> 10",
        f"missing    {target(1).region}  {target(1).project_id}  mesh-00001  cluster cluster-00001",
    ]
    assert report.lines(limit=1)[-1] == "… and 1 more"
    assert drift_report([planned(0, "in_sync")]).lines() == ["1 target: all in sync"]


def test_the_document_holds_the_agreed_keys_in_order() -> None:
    report = drift_report(
        [planned(0, "update", "1 field differs", changes=(FieldChange(SAMPLING, None, 10),))]
    )

    document = report.document()

    assert list(document) == [
        "total",
        "not_in_sync",
        "in_sync",
        "missing",
        "update",
        "upgrade",
        "downgrade",
        "conflict",
        "error",
        "drifted",
        "unlisted",
    ]
    [entry] = document["drifted"]
    assert list(entry) == [
        "project_id",
        "region",
        "cluster_id",
        "mesh_name",
        "judgement",
        "changes",
        "mesh_version",
        "detail",
    ]
    assert entry["changes"] == [{"path": SAMPLING, "before": None, "after": 10}]
    # A report survives the trip through a payload unchanged.
    assert DriftReport.model_validate_json(report.model_dump_json()) == report


def test_pages_are_named_by_the_schedule_and_a_digest_of_their_targets() -> None:
    pages = DriftPages(name="nightly", digest="sha256:" + "ab" * 32, total=801, page_size=400)

    assert pages.pages == 3
    assert pages.page_ids() == [f"drift/nightly/targets/{'ab' * 6}/{n}" for n in range(3)]
    assert drift_page_workflow_id("nightly", "sha256:" + "cd" * 32, 0) == (
        f"drift/nightly/targets/{'cd' * 6}/0"
    )


class _Lister:
    def __init__(self) -> None:
        self.listed: list[tuple[str, str]] = []

    async def meshes(self, project_id: str, region: str) -> list[Mesh]:
        self.listed.append((project_id, region))
        return []


async def test_a_check_lists_through_and_refuses_anything_else() -> None:
    lister = _Lister()
    told: list[tuple[str, str]] = []
    api = ListOnly(lister, lambda p, r: told.append((p, r)))
    target_: MeshTarget = SAMPLE_TARGET

    assert await api.meshes(target_.project_id, target_.region) == []
    with pytest.raises(ReadOnlyError, match="never writes"):
        await api.create_mesh(target_.project_id, target_.region, target_.to_request())
    with pytest.raises(ReadOnlyError, match="only lists"):
        await api.mesh(target_.project_id, target_.region, "uid-1")

    assert lister.listed == told == [(target_.project_id, target_.region)]


def test_the_ui_details_name_the_first_targets_and_count_the_rest() -> None:
    inp = DriftCheckInput(name="nightly", digest="sha256:" + "0" * 64, total=26)
    fleet = [planned(0, "in_sync")] + [planned(i, "create") for i in range(1, 26)]
    fleet[1] = PlannedTarget(
        target(1), "update", "1 field differs", changes=(FieldChange(SAMPLING, 1, 10),)
    )
    report = drift_report(fleet, checked_at="2026-12-06T22:00:00+00:00")

    details = details_of(inp, report).split("\n\n")

    assert details[0] == "**drift found** · drift schedule nightly · checked 2026-12-06T22:00:00Z"
    assert details[1] == "26 targets: 1 in sync, 25 drifted (24 missing, 1 update)"
    items = details[2].splitlines()
    assert items[0].startswith("- update ") and items[1] == f"  - {SAMPLING}: 1 -> 10"
    assert sum(item.startswith("- missing ") for item in items) == 19
    assert items[-1] == "- … and 5 more"
    in_sync = details_of(inp, drift_report([planned(0, "in_sync")], checked_at=None))
    assert in_sync.split("\n\n") == [
        "**in sync** · drift schedule nightly · checked -",
        "1 target: all in sync",
    ]
