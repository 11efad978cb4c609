"""The end of a rollout that upgraded meshes: once its last wave has passed its checks, each
upgraded mesh's old control plane is uninstalled, in the rollout's waves again.

A mixin of the rollout workflow. Until then every upgraded mesh can still be rolled back; after,
none can, which is why nothing is finalized before the whole fleet has run the new version
through every wave's checks. With ``strategy.upgrade.finalize: manual`` the rollout waits in
``awaiting_finalize`` for ``meshfleet finalize``. The order and the progress of the finalize are
in the carry, so a run that continues as new goes on where the last one stopped.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from meshfleet.contract.payloads import STOP_SIGNAL, RolloutCarry, RolloutInput
    from meshfleet.models import (
        MAX_REPORTED_FAILURES,
        MeshTarget,
        RolloutState,
        TargetFailure,
        TargetOutcome,
        UpgradedMesh,
    )

# Asked only by a rollout that has upgraded meshes to finalize: no other rollout's commands
# change.
PATCH_FINALIZE = "finalize-upgraded-meshes-in-waves"
# A cancel tells the targets in flight to stop after their running step: only an upgrade has
# steps to stop between.
PATCH_STOP_UPGRADES = "cancel-stops-upgrades-after-their-step"


class UpgradeFinalize:
    """The finalize of a rollout's upgraded meshes, for ``MeshRolloutWorkflow``."""

    _inp: RolloutInput
    _carry: RolloutCarry
    _starting: int
    _starts_this_run: int
    _stopping: int

    if TYPE_CHECKING:
        # What the rollout and its other mixins provide (a stub here would shadow them).
        def _set_state(self, state: RolloutState) -> None: ...

        async def _target(self, index: int) -> MeshTarget: ...

        def _track(self, coro: Coroutine[Any, Any, None], name: str) -> None: ...

        async def _run_child(self, target: MeshTarget) -> None: ...

        def _count_failure(self, index: int) -> None: ...

        def _checks_pending(self) -> bool: ...

        def _should_continue_as_new(self) -> bool: ...

    # --- what the walk asks -------------------------------------------------------------------

    def _finalize_wanted(self) -> bool:
        """Upgraded meshes wait to be finalized, and the finalize has not begun."""
        carry = self._carry
        return not carry.finalize_order and any(
            u.outcome == "upgraded" for u in carry.upgrades.values()
        )

    def _finalize_remaining(self) -> bool:
        """The rollout is not done while an upgraded mesh waits for its finalize."""
        carry = self._carry
        if carry.finalize_order:
            return carry.finalize_done < len(carry.finalize_order)
        return self._finalize_wanted()

    def _finalizing(self) -> bool:
        """The finalize has begun: an outcome now is a finalize's."""
        return bool(self._carry.finalize_order)

    # --- the walk of the finalize -------------------------------------------------------------

    async def _finalize_step(self) -> None:
        """Begin the finalize once every target has its outcome and the last wave passed its
        checks; then start the finalize of each upgraded mesh, wave by wave, in the window."""
        carry = self._carry
        if carry.next_index < self._inp.total:
            return
        if not carry.finalize_order:
            if (
                carry.state != RolloutState.RUNNING
                or carry.in_flight
                or not self._finalize_wanted()
                or self._checks_pending()
                or not workflow.patched(PATCH_FINALIZE)
            ):
                return
            carry.finalize_order = sorted(
                i for i, u in carry.upgrades.items() if u.outcome == "upgraded"
            )
            if self._inp.strategy.upgrade.finalize == "manual":
                self._set_state(RolloutState.AWAITING_FINALIZE)
                return
            self._set_state(RolloutState.FINALIZING)
        if carry.state == RolloutState.RUNNING and self._finalize_remaining():
            # Resumed after a pause or a halt.
            self._set_state(RolloutState.FINALIZING)
        while self._can_finalize():
            index = carry.finalize_order[carry.finalize_next]
            target = await self._target(index)
            if not self._can_finalize() or carry.finalize_order[carry.finalize_next] != index:
                return
            task = carry.upgrades[index].ref
            carry.in_flight[target.workflow_id] = index
            carry.finalize_next += 1
            self._starts_this_run += 1
            self._starting += 1
            self._track(
                self._run_child(target.model_copy(update={"upgrade": task})), f"finalize-{index}"
            )
            if self._should_continue_as_new():
                return

    def _can_finalize(self) -> bool:
        carry = self._carry
        order = carry.finalize_order
        if carry.state != RolloutState.FINALIZING or carry.finalize_next >= len(order):
            return False
        if len(carry.in_flight) >= self._inp.strategy.window:
            return False
        # In waves: the next wave starts once the one before has every outcome.
        ends = self._inp.strategy.wave_ends(len(order))
        wave_start = max([0, *(end for end in ends if end <= carry.finalize_next)])
        return carry.finalize_done >= wave_start

    def _finalize_started(self) -> None:
        """``meshfleet finalize`` opened the wait of a manual finalize."""
        self._set_state(RolloutState.FINALIZING)

    # --- outcomes -----------------------------------------------------------------------------

    def _record_upgrade(self, index: int, outcome: TargetOutcome) -> None:
        """Keep the task of a target that has one: the finalize and the report need it."""
        if outcome.upgrade is not None:
            self._carry.upgrades[index] = UpgradedMesh.of(outcome)

    def _record_finalized(self, index: int, outcome: TargetOutcome) -> None:
        """Count a finalize's outcome: finalized, or failed (it no longer counts as upgraded)."""
        carry = self._carry
        carry.finalize_done += 1
        self._record_upgrade(index, outcome)
        if outcome.outcome == "finalized":
            carry.counts.finalized += 1
            return
        if outcome.upgrade is None:
            # Failed without reaching the task (the mesh busy, the child timed out): still
            # upgraded, not finalized.
            self._no_longer_upgraded(index)
        carry.counts.upgraded -= 1
        carry.counts.failed += 1
        if len(carry.failures) < MAX_REPORTED_FAILURES:
            carry.failures.append(TargetFailure.of(outcome))
        self._count_failure(index)

    def _no_longer_upgraded(self, index: int) -> None:
        """An upgraded mesh failed after all (verify found it broken, its finalize failed
        before reaching the task): it is reported failed, and is not finalized."""
        upgrade = self._carry.upgrades.get(index)
        if upgrade is not None and upgrade.outcome == "upgraded":
            self._carry.upgrades[index] = upgrade.model_copy(update={"outcome": "failed"})

    # --- cancel -------------------------------------------------------------------------------

    def _stops_upgrades(self) -> bool:
        """A cancel of this rollout tells its in-flight upgrades to stop."""
        return (
            self._inp.action == "converge"
            and not self._finalizing()
            and workflow.patched(PATCH_STOP_UPGRADES)
        )

    def _stop_upgrades(self) -> None:
        """Tell the targets in flight that the rollout was cancelled: an upgrade ends its running
        step and starts no other. Only a child whose start is confirmed is told, by its run id:
        a target still waiting for its workflow id (another rollout's child holds it) must not
        stop that one; it is told once its own start is confirmed (``_stop_if_cancelled``)."""
        carry = self._carry
        if not carry.in_flight or not self._stops_upgrades():
            return
        for workflow_id in sorted(carry.in_flight):
            run_id = carry.run_ids.get(workflow_id)
            if run_id is not None:
                self._send_stop(workflow_id, run_id)

    def _stop_if_cancelled(self, workflow_id: str, run_id: str) -> None:
        """A child whose start was confirmed after the rollout was cancelled stops too."""
        if self._carry.state == RolloutState.CANCELLING and self._stops_upgrades():
            self._send_stop(workflow_id, run_id)

    def _send_stop(self, workflow_id: str, run_id: str) -> None:
        # Counted until sent: a run that continues as new first waits for it, since the server
        # drops a signal whose sender has closed.
        self._stopping += 1
        self._track(self._stop(workflow_id, run_id), f"stop-{workflow_id}")

    async def _stop(self, workflow_id: str, run_id: str) -> None:
        try:
            handle = workflow.get_external_workflow_handle(workflow_id, run_id=run_id)
            await handle.signal(STOP_SIGNAL)
        except Exception as err:  # a target that already closed has nothing to stop
            workflow.logger.info("stop not delivered to %s: %s", workflow_id, err)
        finally:
            self._stopping -= 1
