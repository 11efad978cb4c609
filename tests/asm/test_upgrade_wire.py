"""The canary upgrade task's wire and the values meshfleet assumes (meshfleet/asm/upgrade.py)."""

from __future__ import annotations

import pytest

from meshfleet.asm.upgrade import (
    UpgradeStep,
    UpgradeTask,
    UpgradeTaskRequest,
    lines_between,
    next_step,
)


def test_the_body_carries_every_mandatory_field() -> None:
    body = UpgradeTaskRequest.for_step("uid-1", "mesh-a", "1.18.7-r5", UpgradeStep.PRE_CHECK)
    assert body.to_wire() == {
        "kind": "MeshUpgrade",
        "apiVersion": "v1",
        "metadata": {"name": "mesh-a-to-1.18.7-r5"},
        "spec": {
            "meshId": "uid-1",
            "upgradeStrategy": "canary",
            "targetVersion": "1.18.7-r5",
            "targetType": "InCluster",
            "currentStep": {"name": "preCheck"},
        },
    }


def test_steps_go_in_order_and_end_with_finish() -> None:
    assert next_step(UpgradeStep.PRE_CHECK) is UpgradeStep.CONTROL_PLANE
    assert next_step(UpgradeStep.DATA_PLANE) is UpgradeStep.FINISH
    assert next_step(UpgradeStep.FINISH) is None
    assert next_step(UpgradeStep.ROLLBACK) is None


@pytest.mark.parametrize(
    ("current", "target", "hops"),
    [
        ("1.15.7-r3", "1.18.7-r5", [(1, 18)]),
        ("1.13.9-r2", "1.18.7-r5", [(1, 15), (1, 18)]),
        ("1.8.6-r1", "1.18.7-r5", [(1, 15), (1, 18)]),
        ("1.18.1-r1", "1.18.7-r5", []),
        ("1.18.7-r5", "1.15.7-r3", None),
        ("1.18", "1.15.7-r3", None),
    ],
)
def test_a_mesh_moves_one_line_per_upgrade(
    current: str, target: str, hops: list[tuple[int, int]] | None
) -> None:
    assert lines_between(current, target) == hops


def test_an_answer_with_unknown_fields_and_steps_reads() -> None:
    task = UpgradeTask.model_validate(
        {
            "metadata": {"uid": "t-1", "extra": 1},
            "status": {"phase": "Running", "step": "dataPlane", "jobId": "j-1"},
        }
    )
    assert (task.metadata.uid, task.step, task.status.job_id) == (
        "t-1",
        UpgradeStep.DATA_PLANE,
        "j-1",
    )
    assert UpgradeTask.model_validate({"status": {"step": "somethingNew"}}).step is None
