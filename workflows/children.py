"""How a rollout drives each target: the action's child workflow, started under the mesh's own
workflow id, then its outcome counted once, against the budgets.

A mixin of the rollout workflow. Children are abandoned on continue-as-new rather than waited
for: the next run awaits the ones still in flight through ``await_target``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ChildWorkflowError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from meshfleet.contract.actions import Action, target_action
    from meshfleet.contract.failures import carried, failure_type
    from meshfleet.contract.payloads import (
        AWAIT_TARGET,
        LOAD_TARGET_PAGE,
        AwaitTargetInput,
        LoadPageInput,
        MeshChangeInput,
        MeshTiming,
        RolloutCarry,
        RolloutInput,
        TargetPage,
    )
    from meshfleet.models import (
        MAX_REPORTED_FAILURES,
        DriftedMesh,
        KeptMesh,
        MeshTarget,
        RolloutState,
        TargetFailure,
        TargetOutcome,
    )
    from workflows import policies
    from workflows.budget import FailureBudget
    from workflows.change import search_attributes_for

# About a minute of patience (1+2+4+8+15+15+15 s) for a mesh whose workflow id is taken.
BUSY_START_ATTEMPTS = 7


class TargetChildren:
    """Each target's child workflow and its outcome, for ``MeshRolloutWorkflow``."""

    _inp: RolloutInput
    _carry: RolloutCarry
    _action: Action
    _budget: FailureBudget
    _page: TargetPage | None
    _starting: int
    _wake_run_loop: bool

    # What the rollout provides.
    def _publish_state(self) -> None:
        raise NotImplementedError

    def _show_details(self) -> None:
        raise NotImplementedError

    if TYPE_CHECKING:
        # What the finalize mixin provides (a stub here would shadow it).
        def _finalizing(self) -> bool: ...

        def _record_finalized(self, index: int, outcome: TargetOutcome) -> None: ...

        def _record_upgrade(self, index: int, outcome: TargetOutcome) -> None: ...

        def _stop_if_cancelled(self, workflow_id: str, run_id: str) -> None: ...

    def _page_input(self, page_no: int) -> LoadPageInput:
        return LoadPageInput(rollout_id=self._inp.rollout_id, page=page_no)

    async def _target(self, index: int) -> MeshTarget:
        if self._inp.targets is not None:
            return self._inp.targets[index]
        page_no, offset = divmod(index, self._inp.page_size)
        if self._page is None or self._page.page != page_no:
            self._page = await workflow.execute_activity(
                LOAD_TARGET_PAGE,
                self._page_input(page_no),
                result_type=TargetPage,
                start_to_close_timeout=timedelta(seconds=60),
                retry_policy=policies.page_load_retry(),
                summary=f"load targets page {page_no}",
            )
        return self._page.targets[offset]

    async def _run_child(self, target: MeshTarget) -> None:
        try:
            handle = await self._start_child(target)
        finally:
            self._starting -= 1
            self._wake_run_loop = True
        if handle is None:
            self._record(
                TargetOutcome.failed(
                    target, "MeshBusy", "another rollout is driving this mesh right now"
                )
            )
            return
        if handle.first_execution_run_id:
            self._carry.run_ids[target.workflow_id] = handle.first_execution_run_id
            self._stop_if_cancelled(target.workflow_id, handle.first_execution_run_id)
        try:
            outcome = await handle
        except ChildWorkflowError as err:
            # A failed target ends its workflow Failed with its outcome attached; timed out,
            # terminated or cancelled, the cause's kind is the target's error code.
            outcome = carried(err.cause, TargetOutcome) or TargetOutcome.failed(
                target, failure_type(err.cause, default=type(err).__name__), str(err.cause or err)
            )
        self._record(outcome)

    async def _await_carried(self, workflow_id: str, index: int) -> None:
        try:
            outcome = await workflow.execute_activity(
                AWAIT_TARGET,
                AwaitTargetInput(
                    workflow_id=workflow_id, run_id=self._carry.run_ids.get(workflow_id)
                ),
                result_type=TargetOutcome,
                # One attempt waits 30 s at most, then is retried (activities/targets.py).
                start_to_close_timeout=timedelta(seconds=60),
                retry_policy=policies.await_target_retry(),
                summary=f"await {workflow_id} (started by an earlier run)",
            )
        except ActivityError as err:
            cause = err.cause
            code = failure_type(cause)
            outcome = TargetOutcome.failed(await self._target(index), code, str(cause or err))
        self._record(outcome)

    async def _start_child(
        self, target: MeshTarget
    ) -> workflow.ChildWorkflowHandle[Any, TargetOutcome] | None:
        """Start the action's workflow for ``target`` under the mesh's own workflow id."""
        inp = self._inp
        arg = MeshChangeInput(
            rollout_id=inp.rollout_id,
            target=target,
            timing=MeshTiming.of(inp.strategy),
            search_attributes=inp.search_attributes,
            existing=inp.strategy.existing,
        )
        action = target_action(inp.action, target)
        for attempt in range(BUSY_START_ATTEMPTS):
            try:
                return await workflow.start_child_workflow(
                    action.workflow,
                    arg,
                    id=target.workflow_id,
                    result_type=TargetOutcome,
                    parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                    search_attributes=(
                        search_attributes_for(inp.rollout_id, target)
                        if inp.search_attributes
                        else None
                    ),
                    static_summary=(
                        f"{target.mesh_name} on cluster {target.cluster_id} "
                        f"({target.region}, project {target.project_id})"
                    ),
                )
            except WorkflowAlreadyStartedError:
                # The mesh's workflow id is taken: either another rollout drives this mesh now,
                # or a previous rollout's child has reported but not yet closed. Only the first
                # is a real conflict, so wait a little before calling the mesh busy.
                await workflow.sleep(min(2**attempt, 15))
        return None

    def _record(self, outcome: TargetOutcome) -> None:
        carry = self._carry
        # Count a target once, whatever path its outcome took.
        carry.run_ids.pop(outcome.workflow_id, None)
        index = carry.in_flight.pop(outcome.workflow_id, None)
        if index is None:
            return
        if self._finalizing():
            self._record_finalized(index, outcome)
            self._wake_run_loop = True
            self._show_details()
            return
        carry.counts.add(outcome.outcome)
        self._record_upgrade(index, outcome)
        if self._inp.strategy.verify is not None:
            # Only targets of the current wave are in flight: what its verify must know.
            if outcome.outcome == "adopted":
                carry.step_adopted.append(index)
            elif outcome.outcome == "failed":
                carry.step_failed.append(index)
            elif outcome.outcome in ("updated", "in_sync", "upgraded"):
                carry.step_converged[index] = outcome.outcome
        if outcome.drift:
            if outcome.outcome == "adopted":
                carry.counts.drifted += 1
            if len(carry.drift) < MAX_REPORTED_FAILURES:
                carry.drift.append(DriftedMesh.of(outcome))
        if outcome.outcome == "kept" and len(carry.kept) < MAX_REPORTED_FAILURES:
            carry.kept.append(KeptMesh.of(outcome))
        if outcome.outcome == "failed":
            if len(carry.failures) < MAX_REPORTED_FAILURES:
                carry.failures.append(TargetFailure.of(outcome))
            self._count_failure(index)
        self._wake_run_loop = True
        self._show_details()

    def _count_failure(self, index: int) -> None:
        """Count one more failed target against the budgets; halt when one of them is spent."""
        carry = self._carry
        region = self._budget.count(index)
        if carry.state not in (
            RolloutState.RUNNING,
            RolloutState.PAUSED,
            RolloutState.VERIFYING,
            RolloutState.FINALIZING,
        ):
            return
        if self._budget.region_spent(region):
            carry.halted_region = region
        elif not self._budget.fleet_spent():
            return
        carry.state = RolloutState.HALTED
        self._publish_state()
