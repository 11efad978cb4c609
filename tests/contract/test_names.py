"""The names running executions, older clients and the UI's saved views know: they never change."""

from __future__ import annotations

import pytest
from temporalio import workflow

from meshfleet.contract import deletion, drift, payloads
from workflows.registry import ALL_WORKFLOWS, VERSIONED_WORKFLOWS

# Queries, updates and signals each workflow type registers.
HANDLERS: dict[str, tuple[set[str], set[str], set[str]]] = {
    payloads.ROLLOUT_WORKFLOW: (
        {payloads.PROGRESS_QUERY},
        {
            payloads.PAUSE_UPDATE,
            payloads.RESUME_UPDATE,
            payloads.CANCEL_UPDATE,
            payloads.APPROVE_UPDATE,
            payloads.FINALIZE_UPDATE,
        },
        set(),
    ),
    payloads.CREATE_MESH_WORKFLOW: ({payloads.PHASE_QUERY}, set(), set()),
    payloads.TARGET_PAGE_WORKFLOW: (set(), set(), set()),
    deletion.DELETE_MESH_WORKFLOW: ({payloads.PHASE_QUERY}, set(), set()),
    # A mesh's upgrade is told to stop after its running step when its rollout is cancelled.
    payloads.CONVERGE_MESH_WORKFLOW: ({payloads.PHASE_QUERY}, set(), {payloads.STOP_SIGNAL}),
    payloads.RESTORE_MESH_WORKFLOW: ({payloads.PHASE_QUERY}, set(), {payloads.STOP_SIGNAL}),
    payloads.FINALIZE_UPGRADE_WORKFLOW: ({payloads.PHASE_QUERY}, set(), {payloads.STOP_SIGNAL}),
    drift.DRIFT_CHECK_WORKFLOW: (set(), set(), set()),
    drift.DRIFT_PAGE_WORKFLOW: (set(), set(), set()),
}
# A rollback is steered as a rollout is (it inherits every handler; it never waits at a gate).
HANDLERS[deletion.ROLLBACK_WORKFLOW] = HANDLERS[payloads.ROLLOUT_WORKFLOW]


@pytest.mark.parametrize("cls", ALL_WORKFLOWS + VERSIONED_WORKFLOWS, ids=lambda c: c.__name__)
def test_workflows_answer_the_queries_and_updates_clients_call(cls: type) -> None:
    defn = workflow._Definition.must_from_class(cls)
    queries, updates, signals = HANDLERS[str(defn.name)]
    assert (set(defn.queries), set(defn.updates), set(defn.signals)) == (queries, updates, signals)


def test_names_are_those_release_0_1_0_used() -> None:
    assert (payloads.PROGRESS_QUERY, payloads.PHASE_QUERY) == ("progress", "phase")
    assert (payloads.PAUSE_UPDATE, payloads.RESUME_UPDATE, payloads.CANCEL_UPDATE) == (
        "pause",
        "resume",
        "cancel",
    )
    assert (
        payloads.ROLLOUT_WORKFLOW,
        payloads.CREATE_MESH_WORKFLOW,
        payloads.TARGET_PAGE_WORKFLOW,
    ) == ("MeshRolloutWorkflow", "CreateMeshWorkflow", "RolloutTargetPageWorkflow")
    assert (
        payloads.CREATE_MESH,
        payloads.WAIT_FOR_MESH,
        payloads.LOAD_TARGET_PAGE,
        payloads.AWAIT_TARGET,
    ) == ("create_mesh", "wait_for_mesh", "load_target_page", "await_target")


def test_names_added_since_0_1_0_stay_as_released_from_now_on() -> None:
    assert (payloads.VERIFY_WAVE, payloads.APPROVE_UPDATE) == ("verify_wave", "approve")
    assert (
        payloads.FINALIZE_UPDATE,
        payloads.STOP_SIGNAL,
        payloads.FINALIZE_UPGRADE_WORKFLOW,
        payloads.CREATE_UPGRADE_TASK,
        payloads.UPGRADE_STEP,
    ) == (
        "finalize",
        "stop_after_step",
        "FinalizeUpgradeWorkflow",
        "create_upgrade_task",
        "upgrade_step",
    )
    assert (deletion.ROLLBACK_WORKFLOW, deletion.DELETE_MESH_WORKFLOW) == (
        "MeshRollbackWorkflow",
        "DeleteMeshWorkflow",
    )
    assert (deletion.DELETE_MESH, deletion.WAIT_FOR_MESH_GONE) == (
        "delete_mesh",
        "wait_for_mesh_gone",
    )
    assert deletion.rollback_workflow_id("r1") == "rollback/r1"
