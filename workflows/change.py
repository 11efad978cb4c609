"""What every workflow that changes one mesh shares: its phase, its outcome, how it ends.

Each action (``meshfleet.contract.actions``) has a workflow of its own under its own name, which
says only how the change is driven (``_drive``); the rest is here, written once.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from meshfleet.contract import search_attributes as sa
    from meshfleet.contract.payloads import PHASE_QUERY, ActionKind, MeshChangeInput
    from meshfleet.models import MeshTarget, OutcomeKind, TargetOutcome
    from workflows import outcomes, policies

Polled = TypeVar("Polled")


def search_attributes_for(rollout_id: str, target: MeshTarget) -> TypedSearchAttributes:
    """The attributes an operator filters a target's workflow by in the Temporal UI."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(sa.ROLLOUT_ID, rollout_id),
            SearchAttributePair(sa.PROJECT_ID, target.project_id),
            SearchAttributePair(sa.REGION, target.region),
        ]
    )


class MeshChangeWorkflow:
    """One mesh through one change; returns its ``TargetOutcome``, or ends Failed carrying it
    (``outcomes.end``). A subclass is registered under the action's workflow name."""

    action: ActionKind = "create"
    """The action this workflow carries out, as the metrics name it."""

    def __init__(self) -> None:
        self._phase: str | None = None

    async def _run(self, inp: MeshChangeInput) -> TargetOutcome:
        """Drive the change; failures become a failed outcome; tag and count the result."""
        outcome = await self._drive(inp)
        _record_metrics(self.action, outcome)
        if inp.search_attributes:
            workflow.upsert_search_attributes([sa.OUTCOME.value_set(outcome.outcome)])
        return outcomes.end(outcome)

    @workflow.query(name=PHASE_QUERY)
    def phase(self) -> str | None:
        """The last mesh phase this workflow saw."""
        return self._phase

    async def _drive(self, inp: MeshChangeInput) -> TargetOutcome:
        """The change itself, from its first call to its outcome."""
        raise NotImplementedError

    async def _poll(
        self,
        inp: MeshChangeInput,
        activity: str,
        arg: Any,
        result_type: type[Polled],
        summary: str,
    ) -> Polled:
        """Run a poll activity (read the mesh until its change holds) to the change's deadline:
        each attempt lasts what is left of it and heartbeats, so a dead worker's poll resumes on
        another within a heartbeat timeout."""
        heartbeat_timeout = timedelta(seconds=inp.timing.heartbeat_timeout_s)
        polled: Polled = await workflow.execute_activity(
            activity,
            arg,
            result_type=result_type,
            start_to_close_timeout=policies.poll_limit(
                policies.deadline_of(inp.timing), heartbeat_timeout
            ),
            heartbeat_timeout=heartbeat_timeout,
            retry_policy=policies.poll_retry(),
            summary=summary,
        )
        return polled

    def _outcome(
        self,
        inp: MeshChangeInput,
        kind: OutcomeKind,
        *,
        uid: str | None,
        attempts: int,
        polls: int = 0,
        message: str | None = None,
        error_code: str | None = None,
        drift: list[str] | None = None,
        config_before: dict[str, Any] | None = None,
    ) -> TargetOutcome:
        made = outcomes.outcome(
            inp.target,
            kind,
            uid=uid,
            phase=self._phase,
            attempts=attempts,
            polls=polls,
            message=message,
            error_code=error_code,
        )
        update: dict[str, Any] = {}
        if drift:
            update["drift"] = drift
        if config_before is not None:
            update["config_before"] = config_before
        return made.model_copy(update=update) if update else made

    def _failed(
        self,
        inp: MeshChangeInput,
        err: ActivityError | ApplicationError,
        *,
        uid: str | None = None,
        attempts: int | None = None,
    ) -> TargetOutcome:
        failed = outcomes.failed(inp.target, err, self._phase)
        update: dict[str, object] = {}
        if uid is not None:
            update["uid"] = uid
        if attempts is not None:
            update["attempts"] = attempts
        return failed.model_copy(update=update) if update else failed


def _record_metrics(action: ActionKind, outcome: TargetOutcome) -> None:
    # The workflow's meter is replay-safe, so each target counts exactly once however often its
    # history is replayed; the SDK serves it with its own Prometheus metrics.
    meter = workflow.metric_meter()
    meter.create_counter("meshfleet_meshes", "Targets by outcome").add(
        1, {"outcome": outcome.outcome, "action": action}
    )
    if outcome.succeeded:
        meter.create_histogram_float(
            "meshfleet_seconds_to_running", "From a target's start to Running", "s"
        ).record(outcome.seconds)
