"""After a rollout: was every target created once, reported once, and counted once?

Three independent witnesses are compared: the rollout's report, the children's own results and
the outcomes each rollout run received in Temporal's history (a child's completion, or for a
child carried over continue-as-new, its ``await_target`` activity), and the simulator's per-name
counters.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowFailureError,
)

from meshfleet.contract.failures import carried
from meshfleet.contract.payloads import AWAIT_TARGET, CREATE_MESH_WORKFLOW, rollout_workflow_id
from meshfleet.models import MeshTarget, RolloutProgress, RolloutState, TargetOutcome
from meshfleet.simulator.state import SimulatorState
from tests.helpers.eventually import eventually_value

_CHILD_CLOSED = {
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED,
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED,
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_CANCELED,
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TIMED_OUT,
    EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_TERMINATED,
}
_ACTIVITY_ENDED = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
}


@dataclass(frozen=True)
class Audit:
    """What Temporal recorded for one rollout."""

    outcomes: dict[str, TargetOutcome]
    """Each child's result, by workflow id."""
    child_runs: Counter[str]
    """Executions per child workflow id (a target driven twice shows 2)."""
    reports: Counter[str]
    """Outcomes a rollout run received per child workflow id, over every run of the rollout."""
    rollout_runs: int
    """Runs of the rollout workflow (continue-as-new adds one)."""

    @property
    def slowest_s(self) -> float:
        """Seconds the slowest target took from its start to its outcome."""
        return max((o.seconds for o in self.outcomes.values()), default=0.0)


async def audit_rollout(client: Client, rollout_id: str, total: int, limit_s: float = 60) -> Audit:
    """Read every child of the rollout and every outcome its runs received, once all are visible."""
    query = f'MeshRolloutId = "{rollout_id}" AND WorkflowType = "{CREATE_MESH_WORKFLOW}"'

    async def listed() -> list[WorkflowExecution]:
        return [execution async for execution in client.list_workflows(query)]

    def all_closed(children: list[WorkflowExecution]) -> bool:
        closed = [c for c in children if c.status != WorkflowExecutionStatus.RUNNING]
        return len(closed) >= total and len(closed) == len(children)

    # Visibility trails history a little: wait until every child shows as closed.
    children = await eventually_value(
        listed, all_closed, limit_s, f"{total} children of {rollout_id} closed", interval=0.2
    )
    outcomes: dict[str, TargetOutcome] = {}
    for child in children:
        handle = client.get_workflow_handle(
            child.id, run_id=child.run_id, result_type=TargetOutcome
        )
        try:
            outcomes[child.id] = await handle.result()
        except WorkflowFailureError as err:
            failed = carried(err.cause, TargetOutcome)
            if failed is not None:
                # A failed target's workflow ends Failed with its outcome attached.
                outcomes[child.id] = failed
                continue
            # Terminated or timed out: no outcome of its own, so the rollout counts it failed.
            _, region, project_id, mesh_name = child.id.split("/", 3)
            outcomes[child.id] = TargetOutcome(
                workflow_id=child.id,
                project_id=project_id,
                region=region,
                cluster_id="",
                mesh_name=mesh_name,
                outcome="failed",
                message=str(err.cause or err),
            )
    reports: Counter[str] = Counter()
    runs = 0
    async for run in client.list_workflows(f'WorkflowId = "{rollout_workflow_id(rollout_id)}"'):
        runs += 1
        history = await client.get_workflow_handle(run.id, run_id=run.run_id).fetch_history()
        awaiting: dict[int, str] = {}
        for event in history.events:
            kind = event.WhichOneof("attributes")
            if kind is None:
                continue
            attrs = getattr(event, kind)
            if event.event_type in _CHILD_CLOSED:
                reports[attrs.workflow_execution.workflow_id] += 1
            elif (
                event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
                and attrs.activity_type.name == AWAIT_TARGET
            ):
                awaiting[event.event_id] = json.loads(attrs.input.payloads[0].data)["workflow_id"]
            elif event.event_type in _ACTIVITY_ENDED and attrs.scheduled_event_id in awaiting:
                reports[awaiting[attrs.scheduled_event_id]] += 1
    return Audit(outcomes, Counter(c.id for c in children), reports, runs)


def assert_reported_once(report: RolloutProgress, audit: Audit, targets: list[MeshTarget]) -> None:
    """Every target has exactly one child and one outcome, received once, counted once."""
    ids = {t.workflow_id for t in targets}
    assert len(ids) == len(targets)
    assert report.state == RolloutState.COMPLETED, report
    assert (report.in_flight, report.pending) == (0, 0), report
    assert report.created + report.adopted + report.failed + report.cancelled == report.total
    assert report.total == len(targets)
    # One execution per target: no child was started twice, none is missing, none is foreign.
    assert set(audit.child_runs) == ids
    assert set(audit.child_runs.values()) == {1}
    assert set(audit.reports) == ids
    assert set(audit.reports.values()) == {1}
    kinds = Counter(o.outcome for o in audit.outcomes.values())
    assert (kinds["created"], kinds["adopted"], kinds["failed"]) == (
        report.created,
        report.adopted,
        report.failed,
    )
    failed_keys = [(f.region, f.project_id, f.mesh_name) for f in report.failures]
    assert len(failed_keys) == len(set(failed_keys)), "a failure is listed twice"
    if report.failed <= len(report.failures):
        assert len(report.failures) == report.failed


def assert_created_once(
    state: SimulatorState, targets: Iterable[MeshTarget], *, phase: str = "Running"
) -> None:
    """Each target's mesh was created by exactly one POST and is now in ``phase``."""
    for t in targets:
        assert state.stats.creations(t.project_id, t.mesh_name) == 1, t.mesh_name
        record = state.find_mesh(t.project_id, t.mesh_name)
        assert record is not None, t.mesh_name
        assert str(record.phase(state.now())) == phase, (t.mesh_name, record.phase(state.now()))


def assert_all_created_once(
    report: RolloutProgress, audit: Audit, state: SimulatorState, targets: list[MeshTarget]
) -> None:
    """The clean ending of a disturbed rollout: every target reported once, created, by one POST."""
    assert_reported_once(report, audit, targets)
    assert (report.created, report.adopted, report.failed) == (len(targets), 0, 0), report.failures
    assert_created_once(state, targets)
