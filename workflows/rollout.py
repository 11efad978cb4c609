"""``MeshRolloutWorkflow``: walk a fleet's targets in waves through a sliding window of children."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ChildWorkflowError,
    WorkflowAlreadyStartedError,
)

with workflow.unsafe.imports_passed_through():
    from meshfleet import __version__
    from meshfleet.contract import search_attributes as sa
    from meshfleet.contract.failures import failure_type
    from meshfleet.contract.payloads import (
        AWAIT_TARGET,
        CANCEL_UPDATE,
        CREATE_MESH_WORKFLOW,
        LOAD_TARGET_PAGE,
        PAUSE_UPDATE,
        PROGRESS_QUERY,
        RESUME_UPDATE,
        ROLLOUT_WORKFLOW,
        AwaitTargetInput,
        CreateMeshInput,
        LoadPageInput,
        MeshTiming,
        RolloutCarry,
        RolloutInput,
        TargetPage,
    )
    from meshfleet.models import (
        FINAL_STATES,
        MAX_REPORTED_FAILURES,
        MeshTarget,
        RolloutProgress,
        RolloutState,
        TargetFailure,
        TargetOutcome,
    )
    from workflows.create_mesh import search_attributes_for


# About a minute of patience (1+2+4+8+15+15+15 s) for a mesh whose workflow id is taken.
BUSY_START_ATTEMPTS = 7

# Executions whose history already ended "completed" over budget replay that ending.
PATCH_FAILED_OVER_BUDGET = "final-state-failed-over-budget"


@workflow.defn(name=ROLLOUT_WORKFLOW)
class MeshRolloutWorkflow:
    """A fleet rollout: waves, a window of in-flight targets, a failure budget, pause and cancel.

    Children are abandoned on continue-as-new rather than waited for: the next run waits for the
    ones still in flight through ``await_target``, so a slow mesh never stalls the window.
    Outcomes arrive only as the children's completions: a signal from every child as well would
    double the server's work per target (docs/performance.md).
    """

    @workflow.init
    def __init__(self, inp: RolloutInput) -> None:
        carry = inp.carry or RolloutCarry(allowed_failures=inp.strategy.failure_budget(inp.total))
        self._inp = inp
        self._carry = carry
        self._wave_ends = inp.strategy.wave_ends(inp.total)
        self._page: TargetPage | None = None
        self._starts_this_run = 0
        self._wake_run_loop = False
        self._children: set[asyncio.Task[None]] = set()
        self._starting = 0

    # --- run loop ----------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: RolloutInput) -> RolloutProgress:
        """Drive every target to an outcome, or stop early on cancel; return the report."""
        carry = self._carry
        if carry.started_at is None:
            carry.started_at = workflow.now().isoformat()
        self._publish_state()
        for workflow_id, index in list(carry.in_flight.items()):
            self._track(self._await_carried(workflow_id, index), f"carried-{index}")
        while True:
            try:
                await self._step()
                if self._finished():
                    break
                if self._should_continue_as_new():
                    # A child whose start is not yet confirmed would be lost with this run.
                    await workflow.wait_condition(
                        lambda: not self._starting and workflow.all_handlers_finished()
                    )
                    workflow.continue_as_new(self._next_input())
                await workflow.wait_condition(lambda: self._wake_run_loop)
                self._wake_run_loop = False
            except asyncio.CancelledError:
                # A cancel from the UI or CLI is the same as the ``cancel`` update: start nothing
                # new, let every in-flight mesh reach a final phase, then report.
                self._cancel()
        return self._finish()

    async def _step(self) -> None:
        carry = self._carry
        self._advance_wave()
        while self._can_start():
            index = carry.next_index
            target = await self._target(index)
            if not self._can_start() or carry.next_index != index:
                return
            carry.in_flight[target.workflow_id] = index
            carry.next_index += 1
            self._starts_this_run += 1
            self._starting += 1
            self._track(self._run_child(target), f"target-{index}")
            if self._should_continue_as_new():
                return
            self._advance_wave()

    def _track(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        # Hold a reference: the loop keeps only weak ones, and a collected task loses a child.
        self._children.add(task)
        task.add_done_callback(self._child_closed)

    def _child_closed(self, task: asyncio.Task[None]) -> None:
        self._children.discard(task)
        self._wake_run_loop = True

    def _advance_wave(self) -> None:
        carry = self._carry
        while (
            carry.state == RolloutState.RUNNING
            and carry.next_index >= self._wave_ends[carry.wave]
            and not carry.in_flight
            and carry.wave < len(self._wave_ends) - 1
        ):
            carry.wave += 1
            self._publish_state()

    def _can_start(self) -> bool:
        carry = self._carry
        return (
            carry.state == RolloutState.RUNNING
            and carry.next_index < self._wave_ends[carry.wave]
            and len(carry.in_flight) < self._inp.strategy.window
        )

    def _finished(self) -> bool:
        carry = self._carry
        # Wait for this run's children to close too, so the next rollout of the same meshes
        # never finds their workflow ids still taken.
        if carry.in_flight or self._children:
            return False
        return carry.state == RolloutState.CANCELLING or carry.next_index >= self._inp.total

    def _should_continue_as_new(self) -> bool:
        limit = self._inp.max_starts_per_run
        if limit is not None and self._starts_this_run >= limit:
            # With every target started, a new run would only wait; history size still counts.
            return self._carry.next_index < self._inp.total or self._history_is_large()
        return self._history_is_large()

    @staticmethod
    def _history_is_large() -> bool:
        return workflow.info().is_continue_as_new_suggested()

    def _next_input(self) -> RolloutInput:
        self._carry.runs += 1
        # Which release wrote a run's input tells an operator, and the next release's code,
        # what shape of state a long rollout carried across an upgrade.
        self._carry.written_by = __version__
        return self._inp.model_copy(update={"carry": self._carry})

    def _finish(self) -> RolloutProgress:
        carry = self._carry
        if carry.state == RolloutState.CANCELLING:
            not_started = self._inp.total - carry.next_index
            carry.counts.cancelled += not_started
            carry.next_index = self._inp.total
            carry.state = RolloutState.CANCELLED
        elif carry.counts.failed > carry.allowed_failures and workflow.patched(
            PATCH_FAILED_OVER_BUDGET
        ):
            # Every target had started before the budget ran out, so nothing was held back, but
            # the rollout did not go as planned: say so rather than "completed".
            carry.state = RolloutState.FAILED
        else:
            carry.state = RolloutState.COMPLETED
        self._publish_state()
        return self.progress()

    # --- targets -------------------------------------------------------------------------------

    async def _target(self, index: int) -> MeshTarget:
        if self._inp.targets is not None:
            return self._inp.targets[index]
        page_no, offset = divmod(index, self._inp.page_size)
        if self._page is None or self._page.page != page_no:
            self._page = await workflow.execute_activity(
                LOAD_TARGET_PAGE,
                LoadPageInput(rollout_id=self._inp.rollout_id, page=page_no),
                result_type=TargetPage,
                start_to_close_timeout=timedelta(seconds=60),
                retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
                summary=f"load targets page {page_no}",
            )
        return self._page.targets[offset]

    async def _run_child(self, target: MeshTarget) -> None:
        inp = CreateMeshInput(
            rollout_id=self._inp.rollout_id,
            target=target,
            timing=MeshTiming.of(self._inp.strategy),
            search_attributes=self._inp.search_attributes,
        )
        try:
            handle = await self._start_child(inp)
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
        try:
            outcome = await handle
        except ChildWorkflowError as err:
            # Timed out, terminated or cancelled: the cause's kind is the target's error code.
            outcome = TargetOutcome.failed(
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
                # One attempt waits 30 s at most, then is retried (activities/targets.py); the
                # target ends by its own deadline, so the attempts end too.
                start_to_close_timeout=timedelta(seconds=60),
                retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
                summary=f"await {workflow_id} (started by an earlier run)",
            )
        except ActivityError as err:
            cause = err.cause
            code = failure_type(cause)
            outcome = TargetOutcome.failed(await self._target(index), code, str(cause or err))
        self._record(outcome)

    async def _start_child(
        self, inp: CreateMeshInput
    ) -> workflow.ChildWorkflowHandle[Any, TargetOutcome] | None:
        target = inp.target
        for attempt in range(BUSY_START_ATTEMPTS):
            try:
                return await workflow.start_child_workflow(
                    CREATE_MESH_WORKFLOW,
                    inp,
                    id=target.workflow_id,
                    result_type=TargetOutcome,
                    parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                    search_attributes=(
                        search_attributes_for(inp) if self._inp.search_attributes else None
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
        if carry.in_flight.pop(outcome.workflow_id, None) is None:
            return
        carry.counts.add(outcome.outcome)
        if outcome.outcome == "failed":
            if len(carry.failures) < MAX_REPORTED_FAILURES:
                carry.failures.append(TargetFailure.of(outcome))
            if carry.counts.failed > carry.allowed_failures and carry.state in (
                RolloutState.RUNNING,
                RolloutState.PAUSED,
            ):
                carry.state = RolloutState.HALTED
                self._publish_state()
        self._wake_run_loop = True
        self._show_details()

    # --- handlers ------------------------------------------------------------------------------

    @workflow.query(name=PROGRESS_QUERY)
    def progress(self) -> RolloutProgress:
        """Counts by outcome, in flight, pending, wave and state."""
        carry = self._carry
        counts = carry.counts
        return RolloutProgress(
            rollout_id=self._inp.rollout_id,
            state=carry.state,
            total=self._inp.total,
            created=counts.created,
            adopted=counts.adopted,
            failed=counts.failed,
            cancelled=counts.cancelled,
            in_flight=len(carry.in_flight),
            pending=self._inp.total - carry.next_index,
            wave=carry.wave + 1,
            waves=len(self._wave_ends),
            failure_budget=self._inp.strategy.failure_budget(self._inp.total),
            failures=list(carry.failures),
            started_at=carry.started_at,
            finished_at=workflow.now().isoformat() if carry.state.finished else None,
            seconds=self._elapsed(),
        )

    @workflow.update(name=PAUSE_UPDATE)
    def pause(self) -> RolloutProgress:
        """Start no new targets until ``resume``; in-flight ones go on."""
        if self._carry.state == RolloutState.RUNNING:
            self._set_state(RolloutState.PAUSED)
        return self.progress()

    @pause.validator
    def _validate_pause(self) -> None:
        self._refuse_when(RolloutState.CANCELLING, *FINAL_STATES)

    @workflow.update(name=RESUME_UPDATE)
    def resume(self) -> RolloutProgress:
        """Go on after a pause or a halt; a halted rollout gets a fresh failure budget."""
        carry = self._carry
        if carry.state == RolloutState.HALTED:
            carry.allowed_failures = carry.counts.failed + self._inp.strategy.failure_budget(
                self._inp.total
            )
        if carry.state in (RolloutState.PAUSED, RolloutState.HALTED):
            self._set_state(RolloutState.RUNNING)
        return self.progress()

    @resume.validator
    def _validate_resume(self) -> None:
        self._refuse_when(RolloutState.CANCELLING, *FINAL_STATES)

    @workflow.update(name=CANCEL_UPDATE)
    def cancel(self) -> RolloutProgress:
        """Start nothing more; in-flight meshes reach a final phase; the rest count as cancelled."""
        self._cancel()
        return self.progress()

    @cancel.validator
    def _validate_cancel(self) -> None:
        self._refuse_when(*FINAL_STATES)

    def _refuse_when(self, *states: RolloutState) -> None:
        if self._carry.state in states:
            raise ValueError(f"rollout is {self._carry.state.value}")

    def _cancel(self) -> None:
        if not self._carry.state.finished:
            self._set_state(RolloutState.CANCELLING)

    def _set_state(self, state: RolloutState) -> None:
        self._carry.state = state
        self._wake_run_loop = True
        self._publish_state()

    # --- visibility ----------------------------------------------------------------------------

    def _publish_state(self) -> None:
        if self._inp.search_attributes:
            workflow.upsert_search_attributes(
                [
                    sa.ROLLOUT_ID.value_set(self._inp.rollout_id),
                    sa.ROLLOUT_STATE.value_set(self._carry.state.value),
                ]
            )
        self._show_details()

    def _show_details(self) -> None:
        carry = self._carry
        c = carry.counts
        workflow.set_current_details(
            f"**{carry.state.value}** · wave {carry.wave + 1}/{len(self._wave_ends)} · "
            f"{c.done}/{self._inp.total} done: {c.created} created, {c.adopted} adopted, "
            f"{c.failed} failed, {c.cancelled} cancelled · {len(carry.in_flight)} in flight · "
            f"{self._inp.total - carry.next_index} pending"
        )

    def _elapsed(self) -> float:
        if self._carry.started_at is None:
            return 0.0
        started = datetime.fromisoformat(self._carry.started_at)
        return round((workflow.now() - started).total_seconds(), 3)
