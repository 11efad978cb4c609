"""``MeshRolloutWorkflow``: walk a fleet's targets in waves through a sliding window of children."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    is_cancelled_exception,
)

with workflow.unsafe.imports_passed_through():
    from meshfleet import __version__
    from meshfleet.contract import search_attributes as sa
    from meshfleet.contract.actions import ACTIONS
    from meshfleet.contract.failures import (
        ROLLBACK_FAILED,
        ROLLOUT_FAILED,
    )
    from meshfleet.contract.payloads import (
        APPROVE_UPDATE,
        CANCEL_UPDATE,
        FINALIZE_UPDATE,
        PAUSE_UPDATE,
        PROGRESS_QUERY,
        REQUEST_CANCEL,
        RESUME_UPDATE,
        ROLLOUT_WORKFLOW,
        ApproveInput,
        FinalizeInput,
        RequestCancelInput,
        RolloutCarry,
        RolloutInput,
        TargetPage,
    )
    from meshfleet.models import (
        FINAL_STATES,
        Approval,
        RolloutProgress,
        RolloutState,
    )
    from workflows import policies, view
    from workflows.budget import FailureBudget
    from workflows.checks import BANNER_TIMER, PATCH_WAIT_BANNER, WaveChecks
    from workflows.children import TargetChildren
    from workflows.finalize import UpgradeFinalize
    from workflows.layout import walk_of


# Executions whose history already ended "completed" over budget replay that ending.
PATCH_FAILED_OVER_BUDGET = "final-state-failed-over-budget"

# Region order and budgets: decided by a rollout's first run, kept by every later one.
PATCH_REGIONS = "region-order-and-region-budgets"

# A rollout (or rollback) ends in Temporal's status for its state: Failed when it ended failed,
# Canceled when cancelled. Histories that completed such an ending replay it as they were.
PATCH_END_IN_STATUS = "rollout-ends-in-its-execution-status"
# A cancel that arrives while the loop awaits an activity (a page load) cancels the rollout as
# any cancel does; before, it ended the run Canceled with its report still saying running.
PATCH_CANCEL_DURING_ACTIVITY = "cancel-during-an-activity-of-the-loop"
# How long an ending rollout waits for the cancellation it asked for: normally a moment.
CANCEL_REQUEST_WAIT = timedelta(minutes=10)


@workflow.defn(name=ROLLOUT_WORKFLOW)
class MeshRolloutWorkflow(TargetChildren, WaveChecks, UpgradeFinalize):
    """A fleet rollout: waves, a window of in-flight targets, a failure budget, pause and cancel.

    What happens to each target's mesh is the input's ``action`` (``meshfleet.contract.actions``):
    its child workflow, started under the mesh's own workflow id, drives one mesh through it.

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
        self._action = ACTIONS[inp.action]
        strategy = inp.strategy
        self._has_checks = (
            strategy.soak_s > 0 or strategy.verify is not None or bool(strategy.approve_after)
        )
        self._lay_out()
        self._page: TargetPage | None = None
        self._starts_this_run = 0
        self._wake_run_loop = False
        self._children: set[asyncio.Task[None]] = set()
        self._starting = 0
        # Stop signals to in-flight upgrades not yet sent.
        self._stopping = 0
        # Whether Temporal delivered a cancellation request to this run (the UI's or a client's).
        self._cancel_requested = False

    def _lay_out(self) -> None:
        self._walk = walk_of(self._inp, by_region=self._carry.by_region)
        self._budget = FailureBudget(self._inp, self._carry, self._walk)

    # --- run loop ----------------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: RolloutInput) -> RolloutProgress:
        """Drive every target to an outcome, or stop early on cancel; return the report."""
        carry = self._carry
        if carry.started_at is None:
            carry.started_at = workflow.now().isoformat()
        if inp.carry is None and inp.strategy.regions is not None:
            # Decided once, by the first run: a rollout never changes its walk half-way.
            if inp.segments:
                carry.by_region = workflow.patched(PATCH_REGIONS)
                self._lay_out()
            else:
                workflow.logger.warning(
                    "strategy.regions without segments from the starter: regions are ignored"
                )
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
                        lambda: (
                            not self._starting
                            and not self._stopping
                            and workflow.all_handlers_finished()
                        )
                    )
                    workflow.continue_as_new(self._next_input())
                await self._wait_for_wake()
                self._wake_run_loop = False
            except asyncio.CancelledError:
                # A cancel from the UI or CLI is the same as the ``cancel`` update: start nothing
                # new, let every in-flight mesh reach a final phase, then report.
                self._cancel_requested = True
                self._cancel()
            except ActivityError as err:
                # The same cancel, struck while the loop awaited an activity of its own (a page
                # of targets loading): it arrives as that activity's cancellation.
                if not is_cancelled_exception(err) or not workflow.patched(
                    PATCH_CANCEL_DURING_ACTIVITY
                ):
                    raise
                self._cancel_requested = True
                self._cancel()
        report = self._finish()
        if report.state in (RolloutState.FAILED, RolloutState.CANCELLED) and workflow.patched(
            PATCH_END_IN_STATUS
        ):
            await self._end_in_status(report)
        return report

    async def _wait_for_wake(self) -> None:
        """Until something happened that the loop must look at; a banner meanwhile, if the
        rollout waits for a person."""
        banner = view.banner(self._carry, self._inp.rollout_id, self._cli_flag())
        if banner is None or not workflow.patched(PATCH_WAIT_BANNER):
            await workflow.wait_condition(lambda: self._wake_run_loop)
            return
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: self._wake_run_loop, timeout=BANNER_TIMER, timeout_summary=banner
            )

    def _cli_flag(self) -> str:
        """What the CLI needs after the rollout id to act on this workflow."""
        return ""

    async def _step(self) -> None:
        carry = self._carry
        if self._checks_due():
            await self._between_waves()
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
        await self._finalize_step()

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
        ends = self._walk.ends
        while (
            carry.state == RolloutState.RUNNING
            and carry.next_index >= ends[carry.wave]
            and not carry.in_flight
            and carry.wave < len(ends) - 1
            and not self._checks_pending()
        ):
            carry.wave += 1
            # What the checks tracked belongs to the wave that just passed them.
            carry.checks_passed = []
            carry.step_failed = []
            carry.step_adopted = []
            carry.step_converged = {}
            self._publish_state()

    def _can_start(self) -> bool:
        carry = self._carry
        return (
            carry.state == RolloutState.RUNNING
            and carry.next_index < self._walk.ends[carry.wave]
            and len(carry.in_flight) < self._inp.strategy.window
        )

    # --- handlers ------------------------------------------------------------------------------

    @workflow.query(name=PROGRESS_QUERY)
    def progress(self) -> RolloutProgress:
        """Counts by outcome, in flight, pending, wave and state."""
        report = view.progress_report(self._inp, self._carry, self._wave, workflow.now())
        return self._report(report)

    def _report(self, report: RolloutProgress) -> RolloutProgress:
        """What ``progress`` answers, from the rollout's counts (a rollback adds its own)."""
        return report

    @workflow.update(name=PAUSE_UPDATE)
    def pause(self) -> RolloutProgress:
        """Start no new targets until ``resume``; in-flight ones go on."""
        if self._carry.state in (RolloutState.RUNNING, RolloutState.FINALIZING):
            self._set_state(RolloutState.PAUSED)
        return self.progress()

    @pause.validator
    def _validate_pause(self) -> None:
        self._refuse_when(RolloutState.CANCELLING, *FINAL_STATES)
        self._refuse_at_gate("there is nothing to pause")

    @workflow.update(name=RESUME_UPDATE)
    def resume(self) -> RolloutProgress:
        """Go on after a pause or a halt; a halted rollout gets a fresh failure budget."""
        carry = self._carry
        if carry.state == RolloutState.HALTED:
            self._budget.refresh()
            carry.halted_region = None
            carry.halt_reason = None
        if carry.state in (RolloutState.PAUSED, RolloutState.HALTED):
            self._set_state(RolloutState.RUNNING)
        return self.progress()

    @resume.validator
    def _validate_resume(self) -> None:
        self._refuse_when(RolloutState.CANCELLING, *FINAL_STATES)
        self._refuse_at_gate("it goes on by itself")

    @workflow.update(name=APPROVE_UPDATE)
    def approve(self, inp: ApproveInput) -> RolloutProgress:
        """Open the approval gate the rollout waits at; who approved and when is recorded."""
        carry = self._carry
        wave = self._wave
        carry.approvals.append(
            Approval(
                wave=wave.number,
                region=wave.region,
                by=inp.by or "unknown",
                at=workflow.now().isoformat(),
            )
        )
        carry.checks_passed.append("approval")
        self._set_state(RolloutState.RUNNING)
        return self.progress()

    @approve.validator
    def _validate_approve(self, inp: ApproveInput) -> None:
        state = self._carry.state
        if state != RolloutState.AWAITING_APPROVAL:
            raise ValueError(f"rollout is {state.value}, not awaiting approval")
        # An approval names the gate its sender saw, so a retried or repeated approve cannot
        # open the next gate, which nobody has looked at yet.
        wave = self._wave
        if inp.wave is not None and (inp.wave, inp.region) != (wave.number, wave.region):
            raise ValueError(
                f"the rollout waits after {view.gate_name(wave.number, wave.region)}, not after "
                f"{view.gate_name(inp.wave, inp.region)}: nothing approved"
            )

    @workflow.update(name=FINALIZE_UPDATE)
    def finalize(self, inp: FinalizeInput) -> RolloutProgress:
        """Finalize the upgraded meshes a manual finalize waits for, in the rollout's waves."""
        workflow.logger.info("finalize asked by %s", inp.by or "unknown")
        self._finalize_started()
        return self.progress()

    @finalize.validator
    def _validate_finalize(self, inp: FinalizeInput) -> None:
        state = self._carry.state
        if state != RolloutState.AWAITING_FINALIZE:
            raise ValueError(f"rollout is {state.value}, not awaiting finalize")

    @workflow.update(name=CANCEL_UPDATE)
    def cancel(self) -> RolloutProgress:
        """Start nothing more; in-flight meshes reach a final phase; the rest count as cancelled."""
        self._cancel()
        return self.progress()

    @cancel.validator
    def _validate_cancel(self) -> None:
        self._refuse_when(*FINAL_STATES)

    def _refuse_when(self, *states: RolloutState) -> None:
        why = view.refusal(self._carry, states)
        if why is not None:
            raise ValueError(why)

    def _refuse_at_gate(self, outcome: str) -> None:
        why = view.gate_refusal(self._carry, outcome)
        if why is not None:
            raise ValueError(why)

    def _cancel(self) -> None:
        state = self._carry.state
        if not state.finished:
            if state != RolloutState.CANCELLING:
                self._stop_upgrades()
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
        workflow.set_current_details(
            view.details(self._inp, self._carry, self._wave, self._counts_text())
        )

    def _counts_text(self) -> str:
        return self._action.counts_text(self._carry.counts)

    # --- ending --------------------------------------------------------------------------------

    def _finished(self) -> bool:
        carry = self._carry
        # Wait for this run's children to close too, so the next rollout of the same meshes
        # never finds their workflow ids still taken.
        if carry.in_flight or self._children:
            return False
        if carry.state == RolloutState.CANCELLING:
            return True
        return carry.next_index >= self._inp.total and not self._finalize_remaining()

    def _should_continue_as_new(self) -> bool:
        limit = self._inp.max_starts_per_run
        if limit is not None and self._starts_this_run >= limit:
            # With every target started, a new run would only wait; history size still counts.
            return self._carry.next_index < self._inp.total or self._history_is_large()
        return self._history_is_large()

    def _history_is_large(self) -> bool:
        info = workflow.info()
        limit = self._inp.continue_as_new_after_events
        if limit is not None and info.get_current_history_length() >= limit:
            return True
        return info.is_continue_as_new_suggested()

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
        elif self._budget.over() and workflow.patched(PATCH_FAILED_OVER_BUDGET):
            # Every target had started before the budget ran out, so nothing was held back, but
            # the rollout did not go as planned: say so rather than "completed".
            carry.state = RolloutState.FAILED
        else:
            carry.state = RolloutState.COMPLETED
        self._publish_state()
        return self.progress()

    async def _end_in_status(self, report: RolloutProgress) -> None:
        """End Failed or Canceled, as ``report.state`` says; the report stays readable.

        A failed rollout's report is the failure's first detail (``carried``); a cancelled
        one's is what the ``progress`` query answers on the closed run.

        Raises:
            ApplicationError: the rollout failed.
            asyncio.CancelledError: the rollout was cancelled.
        """
        if report.state == RolloutState.FAILED:
            raise ApplicationError(
                self._failed_because(report),
                report.model_dump(mode="json"),
                type=ROLLBACK_FAILED if report.kind == "rollback" else ROLLOUT_FAILED,
                non_retryable=True,
            )
        if not self._cancel_requested:
            # Cancelled by the update: Temporal shows Canceled only for a run that a
            # cancellation request ended, and a workflow cannot send one for itself.
            info = workflow.info()
            try:
                await workflow.execute_activity(
                    REQUEST_CANCEL,
                    RequestCancelInput(workflow_id=info.workflow_id, run_id=info.run_id),
                    start_to_close_timeout=timedelta(seconds=30),
                    retry_policy=policies.cancel_request_retry(),
                    summary="end Canceled",
                )
                # The request arrives as this run's cancellation, which ends the wait.
                await workflow.wait_condition(lambda: False, timeout=CANCEL_REQUEST_WAIT)
            except (ActivityError, TimeoutError) as err:
                if not is_cancelled_exception(err):
                    # Temporal did not take the request: the rollout still ends, Completed
                    # as release 0.1.0 ended one, its report saying cancelled.
                    return
        raise asyncio.CancelledError(self._counts_text())

    def _failed_because(self, report: RolloutProgress) -> str:
        """One line: how many targets failed against which budget."""
        what = "rollback" if report.kind == "rollback" else "rollout"
        return view.failed_because(
            what, self._carry, self._inp.total, self._budget.spent_text(), self._counts_text()
        )
