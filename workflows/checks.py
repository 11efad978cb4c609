"""What runs between two waves of a rollout: soak, verify and the approval gate, in this order.

A mixin of the rollout workflow: each check reads and records its progress in the carry, so a
run that continues as new in the middle of one goes on where the last run stopped (a soak with
its end, a gate still closed). Each behaviour's commands stand behind a patch asked only by
rollouts whose strategy uses it, so a rollout without these settings issues exactly the commands
it did before they existed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from meshfleet.contract.payloads import (
        VERIFY_WAVE,
        RolloutCarry,
        RolloutInput,
        VerifiedFailure,
        VerifyWaveInput,
        VerifyWaveResult,
    )
    from meshfleet.models import (
        MAX_REPORTED_FAILURES,
        MeshTarget,
        RolloutState,
        TargetFailure,
    )
    from meshfleet.timestamps import utc_text
    from meshfleet.waves import Wave
    from workflows import policies, view
    from workflows.layout import Walk

PATCH_SOAK = "soak-timer-between-waves"
PATCH_VERIFY = "verify-wave-activity-after-soak"
PATCH_APPROVAL = "approval-gate-between-waves"
# While a rollout waits for a person (halted, paused, at an approval gate) it waits on a timer
# whose summary says why and what to run: the Temporal UI shows a pending timer's summary in the
# default (timeline) view of the workflow, where the state alone is tabs away. The timer only
# ends the wait to start it again; a change of state ends it early.
PATCH_WAIT_BANNER = "timer-banner-while-waiting-for-a-person"
BANNER_TIMER = timedelta(days=7)

CHECKS = ("soak", "verify", "approval")
# The states of those checks: the rollout starts nothing in them, and only cancel ends them early.
GATE_STATES = (RolloutState.SOAKING, RolloutState.VERIFYING, RolloutState.AWAITING_APPROVAL)


class WaveChecks:
    """Soak, verify and approval of the wave that just finished, for ``MeshRolloutWorkflow``."""

    _inp: RolloutInput
    _carry: RolloutCarry
    _walk: Walk
    _has_checks: bool

    # What the rollout provides.
    def _set_state(self, state: RolloutState) -> None:
        raise NotImplementedError

    def _should_continue_as_new(self) -> bool:
        raise NotImplementedError

    async def _target(self, index: int) -> MeshTarget:
        raise NotImplementedError

    def _count_failure(self, index: int) -> None:
        raise NotImplementedError

    def _show_details(self) -> None:
        raise NotImplementedError

    if TYPE_CHECKING:
        # What the finalize mixin provides (a stub here would shadow it).
        def _finalize_wanted(self) -> bool: ...

        def _no_longer_upgraded(self, index: int) -> None: ...

    @property
    def _wave(self) -> Wave:
        return self._walk.waves[self._carry.wave]

    def _wave_done(self) -> bool:
        """The current wave has every outcome, and checks follow it: every wave but the last,
        and the last too when upgraded meshes wait to be finalized after it."""
        carry = self._carry
        ends = self._walk.ends
        return (
            carry.next_index >= ends[carry.wave]
            and not carry.in_flight
            and (carry.wave < len(ends) - 1 or self._finalize_wanted())
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
        """Each check of the finished wave once, in order; recorded in the carry as it passes."""
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
            then = "verify" if self._inp.strategy.verify is not None else "the next wave"
            try:
                # A durable timer that cancel (or a hand-over to the next run) ends early.
                await workflow.wait_condition(
                    lambda: carry.state != RolloutState.SOAKING or self._should_continue_as_new(),
                    timeout=remaining,
                    timeout_summary=(
                        f"SOAKING until {utc_text(carry.soaking_until)} after "
                        f"{self._wave.name}, then {then}"
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
        wave = self._wave
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
            retry_policy=policies.verify_retry(),
            # The activity heartbeats while it lists: a dead worker's attempt moves on in a minute.
            heartbeat_timeout=timedelta(seconds=60),
            summary=(
                f"VERIFYING {wave.name}: its meshes read again"
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

    async def _fail_verified(self, failure: VerifiedFailure, wave: Wave) -> None:
        carry = self._carry
        index = failure.index
        if not wave.start <= index < wave.end or index in carry.step_failed:
            return  # not a target of this wave, or one already counted as failed
        counts = carry.counts
        converged = carry.step_converged.pop(index, None)
        if index in carry.step_adopted:
            carry.step_adopted.remove(index)
            counts.adopted -= 1
        elif converged is not None:
            setattr(counts, converged, getattr(counts, converged) - 1)
            self._no_longer_upgraded(index)
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
        wave = self._wave
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
            banner = view.approval_banner(wave, self._inp.rollout_id)
            while not opened():
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(
                        opened, timeout=BANNER_TIMER, timeout_summary=banner
                    )
        else:
            await workflow.wait_condition(opened)
        return "approval" in carry.checks_passed
