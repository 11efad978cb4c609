"""``MeshRolloutWorkflow``: walk a fleet's targets in waves through a sliding window of children."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    ChildWorkflowError,
    WorkflowAlreadyStartedError,
    is_cancelled_exception,
)

with workflow.unsafe.imports_passed_through():
    from meshfleet import __version__
    from meshfleet.contract import search_attributes as sa
    from meshfleet.contract.failures import (
        ROLLBACK_FAILED,
        ROLLOUT_FAILED,
        carried,
        failure_type,
    )
    from meshfleet.contract.payloads import (
        APPROVE_UPDATE,
        AWAIT_TARGET,
        CANCEL_UPDATE,
        CREATE_MESH_WORKFLOW,
        LOAD_TARGET_PAGE,
        PAUSE_UPDATE,
        PROGRESS_QUERY,
        REQUEST_CANCEL,
        RESUME_UPDATE,
        ROLLOUT_WORKFLOW,
        VERIFY_WAVE,
        ApproveInput,
        AwaitTargetInput,
        CreateMeshInput,
        LoadPageInput,
        MeshTiming,
        RegionSegment,
        RequestCancelInput,
        RolloutCarry,
        RolloutInput,
        TargetPage,
        VerifiedFailure,
        VerifyWaveInput,
        VerifyWaveResult,
    )
    from meshfleet.models import (
        FINAL_STATES,
        MAX_REPORTED_FAILURES,
        Approval,
        MeshTarget,
        RolloutProgress,
        RolloutState,
        TargetFailure,
        TargetOutcome,
    )
    from meshfleet.timestamps import utc_text
    from workflows.create_mesh import search_attributes_for


# About a minute of patience (1+2+4+8+15+15+15 s) for a mesh whose workflow id is taken.
BUSY_START_ATTEMPTS = 7

# Executions whose history already ended "completed" over budget replay that ending.
PATCH_FAILED_OVER_BUDGET = "final-state-failed-over-budget"

# Progressive delivery. Each id guards the commands of one behaviour, asked only by rollouts whose
# strategy uses it, so a rollout without these settings issues exactly the commands it did before.
PATCH_SOAK = "soak-timer-between-waves"
PATCH_VERIFY = "verify-wave-activity-after-soak"
PATCH_APPROVAL = "approval-gate-between-waves"
PATCH_REGIONS = "region-order-and-region-budgets"

# A rollout (or rollback) ends in Temporal's status for its state: Failed when it ended failed,
# Canceled when cancelled. Histories that completed such an ending replay it as they were.
PATCH_END_IN_STATUS = "rollout-ends-in-its-execution-status"
# A cancel that arrives while the loop awaits an activity (a page load) cancels the rollout as
# any cancel does; before, it ended the run Canceled with its report still saying running.
PATCH_CANCEL_DURING_ACTIVITY = "cancel-during-an-activity-of-the-loop"
# How long an ending rollout waits for the cancellation it asked for (normally a moment), and
# how often it asks: a request Temporal will not take must not keep a finished rollout open.
CANCEL_REQUEST_WAIT = timedelta(minutes=10)
CANCEL_REQUEST_ATTEMPTS = 5

# While a rollout waits for a person (halted, paused, at an approval gate) it waits on a timer
# whose summary says why and what to run: the Temporal UI shows a pending timer's summary in the
# default (timeline) view of the workflow, where the state alone is tabs away. The timer only
# ends the wait to start it again; a change of state ends it early.
PATCH_WAIT_BANNER = "timer-banner-while-waiting-for-a-person"
BANNER_TIMER = timedelta(days=7)

# What runs after a wave has finished and before the next one starts, in this order.
CHECKS = ("soak", "verify", "approval")
# The states of those checks: the rollout starts nothing in them, and only cancel ends them early.
GATE_STATES = (RolloutState.SOAKING, RolloutState.VERIFYING, RolloutState.AWAITING_APPROVAL)
# verify_wave's own errors (the ASM API or the webhook unreachable) are retried this often, then
# the rollout halts with the error rather than guessing the wave is fine.
VERIFY_ATTEMPTS = 5


@dataclass(frozen=True)
class _Wave:
    """One step of the walk: targets ``start``..``end``, wave ``number`` of ``count``.

    With regions in sequential order the waves repeat within each region (``region`` set);
    otherwise they span the whole fleet.
    """

    start: int
    end: int
    number: int
    count: int
    region: str | None = None


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
        strategy = inp.strategy
        self._has_checks = (
            strategy.soak_s > 0 or strategy.verify is not None or bool(strategy.approve_after)
        )
        self._segments: list[RegionSegment] = []
        self._sequential = False
        self._waves: list[_Wave] = []
        self._wave_ends: list[int] = []
        self._lay_out()
        self._page: TargetPage | None = None
        self._starts_this_run = 0
        self._wake_run_loop = False
        self._children: set[asyncio.Task[None]] = set()
        self._starting = 0
        # Whether Temporal delivered a cancellation request to this run (the UI's or a client's).
        self._cancel_requested = False

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
                        lambda: not self._starting and workflow.all_handlers_finished()
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
        banner = self._banner()
        if banner is None or not workflow.patched(PATCH_WAIT_BANNER):
            await workflow.wait_condition(lambda: self._wake_run_loop)
            return
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: self._wake_run_loop, timeout=BANNER_TIMER, timeout_summary=banner
            )

    def _banner(self) -> str | None:
        """What a person must do for the rollout to go on, when nothing else moves it."""
        carry = self._carry
        rollout_id = self._inp.rollout_id
        flag = self._cli_flag()
        if carry.state == RolloutState.HALTED:
            if carry.halt_reason:
                why = carry.halt_reason
            elif carry.halted_region:
                why = f"region {carry.halted_region} over its failure budget"
            else:
                why = (
                    f"{carry.counts.failed} failed, over the failure budget of "
                    f"{carry.allowed_failures}"
                )
            return (
                f"HALTED: {why} · `meshfleet resume {rollout_id}{flag}` goes on, "
                f"`meshfleet cancel {rollout_id}{flag}` stops"
            )
        if carry.state == RolloutState.PAUSED:
            return f"PAUSED: nothing new starts · `meshfleet resume {rollout_id}{flag}` goes on"
        return None

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
            and not self._checks_pending()
        ):
            carry.wave += 1
            # What the checks tracked belongs to the wave that just passed them.
            carry.checks_passed = []
            carry.step_failed = []
            carry.step_adopted = []
            self._publish_state()

    def _can_start(self) -> bool:
        carry = self._carry
        return (
            carry.state == RolloutState.RUNNING
            and carry.next_index < self._wave_ends[carry.wave]
            and len(carry.in_flight) < self._inp.strategy.window
        )

    # --- layout --------------------------------------------------------------------------------

    def _lay_out(self) -> None:
        """The steps of the walk: the strategy's waves, within each region when in sequence."""
        inp = self._inp
        regions = inp.strategy.regions
        self._segments = self._region_segments() if self._carry.by_region else []
        self._sequential = bool(self._segments) and (
            regions is not None and regions.mode == "sequential"
        )
        groups: list[tuple[str | None, int, int]] = (
            [(s.region, s.start, s.end) for s in self._segments]
            if self._sequential
            else [(None, 0, inp.total)]
        )
        waves: list[_Wave] = []
        for region, start, end in groups:
            ends = inp.strategy.wave_ends(end - start)
            begin = start
            for number, wave_end in enumerate(ends, 1):
                waves.append(_Wave(begin, start + wave_end, number, len(ends), region))
                begin = start + wave_end
        self._waves = waves
        self._wave_ends = [w.end for w in waves]

    def _region_segments(self) -> list[RegionSegment]:
        inp = self._inp
        segments = [s for s in inp.segments or [] if s.end > s.start]
        covered = 0
        for segment in segments:
            if segment.start != covered:
                break
            covered = segment.end
        if not segments or covered != inp.total:
            # The starter sorts the targets by region and cuts them into segments; a gap or an
            # overlap means the targets are not in the order the regions promise.
            raise ApplicationError(
                f"the region segments do not cover targets 0..{inp.total} in order: "
                + ", ".join(f"{s.region} {s.start}..{s.end}" for s in segments),
                type="InvalidRegionSegments",
                non_retryable=True,
            )
        return segments

    def _region_of(self, index: int) -> RegionSegment | None:
        if not self._segments:
            return None
        starts = [s.start for s in self._segments]
        return self._segments[bisect.bisect_right(starts, index) - 1]

    def _region_budget(self, region: str) -> int:
        strategy = self._inp.strategy
        if strategy.regions is None:
            return 0
        size = sum(s.end - s.start for s in self._segments if s.region == region)
        return strategy.regions.budget(strategy.max_failures, size)

    def _region_allowed(self, region: str) -> int:
        allowed = self._carry.region_allowed.get(region)
        return self._region_budget(region) if allowed is None else allowed

    # --- between waves: soak, verify, approval ---------------------------------------------------

    def _wave_done(self) -> bool:
        carry = self._carry
        return (
            carry.next_index >= self._wave_ends[carry.wave]
            and not carry.in_flight
            and carry.wave < len(self._wave_ends) - 1
        )

    def _checks_pending(self) -> bool:
        return self._has_checks and len(self._carry.checks_passed) < len(CHECKS)

    def _checks_due(self) -> bool:
        return (
            self._checks_pending()
            and self._carry.state in (RolloutState.RUNNING, *GATE_STATES)
            and self._wave_done()
        )

    async def _between_waves(self) -> None:
        """Soak, verify and the approval gate of the finished wave, each once, in order.

        Every check is recorded in the carry as it passes, so a run that continues as new in the
        middle goes on where this one stopped (a soak with its end, a gate still closed).
        """
        carry = self._carry
        checks: dict[str, Callable[[], Awaitable[bool]]] = {
            "soak": self._soak,
            "verify": self._verify,
            "approval": self._approval,
        }
        for name in CHECKS:
            if name in carry.checks_passed:
                continue
            if carry.state not in (RolloutState.RUNNING, *GATE_STATES):
                return  # halted by verify, or cancelling
            if not await checks[name]():
                return
            if name not in carry.checks_passed:
                carry.checks_passed.append(name)
        if carry.state in GATE_STATES:
            self._set_state(RolloutState.RUNNING)

    async def _soak(self) -> bool:
        soak_s = self._inp.strategy.soak_s
        if soak_s <= 0 or not workflow.patched(PATCH_SOAK):
            return True
        carry = self._carry
        if carry.soaking_until is None:
            carry.soaking_until = (workflow.now() + timedelta(seconds=soak_s)).isoformat()
        if carry.state != RolloutState.SOAKING:
            self._set_state(RolloutState.SOAKING)
        until = datetime.fromisoformat(carry.soaking_until)
        remaining = (until - workflow.now()).total_seconds()
        if remaining > 0:
            wave = self._waves[carry.wave]
            try:
                # A durable timer that cancel (or a hand-over to the next run) ends early.
                await workflow.wait_condition(
                    lambda: carry.state != RolloutState.SOAKING or self._should_continue_as_new(),
                    timeout=remaining,
                    timeout_summary=(
                        f"SOAKING until {utc_text(carry.soaking_until)} after "
                        f"{self._wave_name(wave)}, then "
                        + ("verify" if self._inp.strategy.verify is not None else "the next wave")
                    ),
                )
            except TimeoutError:
                pass
            else:
                return False
        carry.soaking_until = None
        return True

    async def _verify(self) -> bool:
        spec = self._inp.strategy.verify
        if spec is None or not workflow.patched(PATCH_VERIFY):
            return True
        carry = self._carry
        wave = self._waves[carry.wave]
        if carry.state != RolloutState.VERIFYING:
            self._set_state(RolloutState.VERIFYING)
        inline = self._inp.targets
        handle = workflow.start_activity(
            VERIFY_WAVE,
            VerifyWaveInput(
                rollout_id=self._inp.rollout_id,
                wave=wave.number,
                region=wave.region,
                start=wave.start,
                end=wave.end,
                targets=inline[wave.start : wave.end] if inline is not None else None,
                page_size=self._inp.page_size,
                skip=sorted(carry.step_failed),
                webhook=spec.webhook,
            ),
            result_type=VerifyWaveResult,
            # A wave of thousands is read again mesh by mesh, through the gateway's rate limit.
            start_to_close_timeout=timedelta(minutes=15),
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=2),
                maximum_interval=timedelta(seconds=60),
                maximum_attempts=VERIFY_ATTEMPTS,
            ),
            # The activity heartbeats while it lists: a dead worker's attempt moves on in a minute.
            heartbeat_timeout=timedelta(seconds=60),
            summary=(
                f"VERIFYING {self._wave_name(wave)}: its meshes read again"
                + (", then the webhook asked" if spec.webhook else "")
            ),
        )
        try:
            await workflow.wait_condition(
                lambda: handle.done() or carry.state != RolloutState.VERIFYING
            )
        except asyncio.CancelledError:
            handle.cancel()
            raise
        if not handle.done():
            handle.cancel()  # cancelled: the rollout reads nothing more
            return False
        try:
            result = await handle
        except ActivityError as err:
            # Not passed: a resume reads the wave again rather than take it on trust.
            self._halt_with(f"verify_wave failed: {err.cause or err}")
            return False
        for failure in result.failures:
            await self._fail_verified(failure, wave)
        verdict = result.webhook
        if verdict is not None and not verdict.passed:
            answer = (
                f"answered {verdict.status}" if verdict.status is not None else "gave no answer"
            )
            self._halt_with(f"verify webhook {answer}: {verdict.excerpt}")
            # The hook must say yes to this wave: a resume asks it again (failures found by the
            # re-read stay counted, and are not read again).
            return False
        return True

    async def _fail_verified(self, failure: VerifiedFailure, wave: _Wave) -> None:
        carry = self._carry
        index = failure.index
        if not wave.start <= index < wave.end or index in carry.step_failed:
            return  # not a target of this wave, or one already counted as failed
        counts = carry.counts
        if index in carry.step_adopted:
            carry.step_adopted.remove(index)
            counts.adopted -= 1
        elif counts.created > 0:
            counts.created -= 1
        counts.failed += 1
        carry.step_failed.append(index)
        if len(carry.failures) < MAX_REPORTED_FAILURES:
            target = await self._target(index)
            carry.failures.append(
                TargetFailure(
                    project_id=target.project_id,
                    region=target.region,
                    cluster_id=target.cluster_id,
                    mesh_name=target.mesh_name,
                    error_code=failure.error_code,
                    message=failure.message,
                )
            )
        self._count_failure(index)
        self._show_details()

    def _halt_with(self, reason: str) -> None:
        carry = self._carry
        if carry.state not in (RolloutState.VERIFYING, RolloutState.HALTED):
            return  # cancelling: nothing is left to hold back
        carry.halt_reason = reason
        if carry.state == RolloutState.HALTED:
            self._show_details()
        else:
            self._set_state(RolloutState.HALTED)

    async def _approval(self) -> bool:
        carry = self._carry
        wave = self._waves[carry.wave]
        if wave.number not in self._inp.strategy.approve_after or not workflow.patched(
            PATCH_APPROVAL
        ):
            return True
        if carry.state != RolloutState.AWAITING_APPROVAL:
            self._set_state(RolloutState.AWAITING_APPROVAL)

        # A gate may stand for days: hand over to a new run if the history grows large meanwhile.
        def opened() -> bool:
            return carry.state != RolloutState.AWAITING_APPROVAL or self._should_continue_as_new()

        if workflow.patched(PATCH_WAIT_BANNER):
            banner = (
                f"AWAITING APPROVAL after {self._wave_name(wave)} · "
                f"`meshfleet approve {self._inp.rollout_id}` opens the gate"
            )
            while not opened():
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(
                        opened, timeout=BANNER_TIMER, timeout_summary=banner
                    )
        else:
            await workflow.wait_condition(opened)
        return "approval" in carry.checks_passed

    @staticmethod
    def _wave_name(wave: _Wave) -> str:
        where = f" of {wave.region}" if wave.region else ""
        return f"wave {wave.number}/{wave.count}{where}"

    @staticmethod
    def _gate_name(number: int, region: str | None) -> str:
        return f"wave {number}" + (f" of {region}" if region else "")

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
        elif self._over_budget() and workflow.patched(PATCH_FAILED_OVER_BUDGET):
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
                    retry_policy=RetryPolicy(
                        maximum_interval=timedelta(seconds=10),
                        maximum_attempts=CANCEL_REQUEST_ATTEMPTS,
                    ),
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
        carry = self._carry
        what = "rollback" if report.kind == "rollback" else "rollout"
        reasons = [
            f"region {region}'s budget of {self._region_allowed(region)}"
            for region, failed in sorted(carry.region_failed.items())
            if failed > self._region_allowed(region)
        ]
        if carry.counts.failed > carry.allowed_failures or not reasons:
            reasons.insert(0, f"the failure budget of {carry.allowed_failures}")
        return (
            f"{what} failed: {carry.counts.failed} of {self._inp.total} targets failed, over "
            f"{' and '.join(reasons)}; {self._counts_text()}"
        )

    # --- targets -------------------------------------------------------------------------------

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
                retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
                summary=f"load targets page {page_no}",
            )
        return self._page.targets[offset]

    def _child(self, target: MeshTarget) -> tuple[str, Any]:
        """The workflow that drives one target, and its input: here, creating the mesh."""
        return CREATE_MESH_WORKFLOW, CreateMeshInput(
            rollout_id=self._inp.rollout_id,
            target=target,
            timing=MeshTiming.of(self._inp.strategy),
            search_attributes=self._inp.search_attributes,
        )

    async def _run_child(self, target: MeshTarget) -> None:
        workflow_type, arg = self._child(target)
        try:
            handle = await self._start_child(target, workflow_type, arg)
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
        self, target: MeshTarget, workflow_type: str, arg: Any
    ) -> workflow.ChildWorkflowHandle[Any, TargetOutcome] | None:
        for attempt in range(BUSY_START_ATTEMPTS):
            try:
                return await workflow.start_child_workflow(
                    workflow_type,
                    arg,
                    id=target.workflow_id,
                    result_type=TargetOutcome,
                    parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                    search_attributes=(
                        search_attributes_for(self._inp.rollout_id, target)
                        if self._inp.search_attributes
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
        carry.counts.add(outcome.outcome)
        if self._inp.strategy.verify is not None:
            # Only targets of the current wave are in flight: what its verify must know.
            if outcome.outcome == "adopted":
                carry.step_adopted.append(index)
            elif outcome.outcome == "failed":
                carry.step_failed.append(index)
        if outcome.outcome == "failed":
            if len(carry.failures) < MAX_REPORTED_FAILURES:
                carry.failures.append(TargetFailure.of(outcome))
            self._count_failure(index)
        self._wake_run_loop = True
        self._show_details()

    def _count_failure(self, index: int) -> None:
        """Count one more failed target against the budgets; halt when one of them is spent."""
        carry = self._carry
        segment = self._region_of(index)
        region = segment.region if segment is not None else None
        if region is not None:
            carry.region_failed[region] = carry.region_failed.get(region, 0) + 1
        if carry.state not in (RolloutState.RUNNING, RolloutState.PAUSED, RolloutState.VERIFYING):
            return
        if region is not None and carry.region_failed[region] > self._region_allowed(region):
            carry.halted_region = region
        elif carry.counts.failed <= carry.allowed_failures:
            return
        carry.state = RolloutState.HALTED
        self._publish_state()

    def _over_budget(self) -> bool:
        carry = self._carry
        return carry.counts.failed > carry.allowed_failures or any(
            failed > self._region_allowed(region) for region, failed in carry.region_failed.items()
        )

    # --- handlers ------------------------------------------------------------------------------

    @workflow.query(name=PROGRESS_QUERY)
    def progress(self) -> RolloutProgress:
        """Counts by outcome, in flight, pending, wave and state."""
        carry = self._carry
        counts = carry.counts
        wave = self._waves[carry.wave]
        report = RolloutProgress(
            rollout_id=self._inp.rollout_id,
            state=carry.state,
            total=self._inp.total,
            created=counts.created,
            adopted=counts.adopted,
            failed=counts.failed,
            cancelled=counts.cancelled,
            in_flight=len(carry.in_flight),
            pending=self._inp.total - carry.next_index,
            wave=wave.number,
            waves=wave.count,
            failure_budget=self._inp.strategy.failure_budget(self._inp.total),
            failures=list(carry.failures),
            started_at=carry.started_at,
            finished_at=workflow.now().isoformat() if carry.state.finished else None,
            seconds=self._elapsed(),
            region=wave.region,
            soaking_until=carry.soaking_until if carry.state == RolloutState.SOAKING else None,
            halted_region=carry.halted_region,
            halt_reason=carry.halt_reason,
            approvals=list(carry.approvals),
        )
        return self._report(report)

    def _report(self, report: RolloutProgress) -> RolloutProgress:
        """What ``progress`` answers, from the rollout's counts (a rollback adds its own)."""
        return report

    @workflow.update(name=PAUSE_UPDATE)
    def pause(self) -> RolloutProgress:
        """Start no new targets until ``resume``; in-flight ones go on."""
        if self._carry.state == RolloutState.RUNNING:
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
            carry.allowed_failures = carry.counts.failed + self._inp.strategy.failure_budget(
                self._inp.total
            )
            for region, failed in carry.region_failed.items():
                if failed > self._region_allowed(region):
                    carry.region_allowed[region] = failed + self._region_budget(region)
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
        wave = self._waves[carry.wave]
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
        wave = self._waves[self._carry.wave]
        if inp.wave is not None and (inp.wave, inp.region) != (wave.number, wave.region):
            raise ValueError(
                f"the rollout waits after {self._gate_name(wave.number, wave.region)}, not after "
                f"{self._gate_name(inp.wave, inp.region)}: nothing approved"
            )

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

    def _refuse_at_gate(self, outcome: str) -> None:
        # Between waves nothing starts anyway, and a pause that outlived the gate would hold a
        # rollout nobody meant to hold: say what the rollout waits for instead.
        carry = self._carry
        if carry.state == RolloutState.SOAKING:
            why = f"nothing starts before {carry.soaking_until}, then {outcome}"
        elif carry.state == RolloutState.VERIFYING:
            why = f"nothing starts until the finished wave is verified, then {outcome}"
        elif carry.state == RolloutState.AWAITING_APPROVAL:
            why = "nothing starts until `approve`"
        else:
            return
        raise ValueError(f"rollout is {carry.state.value}: {why} (`cancel` stops it)")

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
        wave = self._waves[carry.wave]
        where = f"region {wave.region} " if wave.region else ""
        notes = ""
        if carry.state == RolloutState.SOAKING:
            notes = f" · soaking until {carry.soaking_until}"
        elif carry.state == RolloutState.AWAITING_APPROVAL:
            notes = f" · awaiting approval after {self._wave_name(wave)}"
        if carry.halted_region:
            notes += f" · region {carry.halted_region} over its failure budget"
        if carry.halt_reason:
            notes += f" · {carry.halt_reason}"
        workflow.set_current_details(
            f"**{carry.state.value}** · {where}wave {wave.number}/{wave.count} · "
            f"{c.done}/{self._inp.total} done: {self._counts_text()} · "
            f"{len(carry.in_flight)} in flight · "
            f"{self._inp.total - carry.next_index} pending{notes}"
        )

    def _counts_text(self) -> str:
        c = self._carry.counts
        return (
            f"{c.created} created, {c.adopted} adopted, {c.failed} failed, {c.cancelled} cancelled"
        )

    def _elapsed(self) -> float:
        if self._carry.started_at is None:
            return 0.0
        started = datetime.fromisoformat(self._carry.started_at)
        return round((workflow.now() - started).total_seconds(), 3)
