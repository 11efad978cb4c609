"""A target's ``TargetOutcome``, as the workflow that drove it reports it: one rule for creating
and deleting alike."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from meshfleet.contract.failures import TARGET_FAILED, FailureDetails, failure_type
    from meshfleet.models import MeshTarget, OutcomeKind, TargetOutcome, failure_summary

# A mesh's workflow whose target failed ends Failed; histories that completed such a target with
# a failed outcome replay that ending.
PATCH_FAILED_TARGET_FAILS = "target-failure-fails-workflow"


def end(outcome: TargetOutcome) -> TargetOutcome:
    """The workflow's result: ``outcome``, unless the target failed.

    Then the workflow ends Failed, so that Temporal's own status (the UI's counters, an
    ``ExecutionStatus = "Failed"`` query) tells the failed meshes apart: the error code is the
    failure's type, code and message its message, and the outcome its first detail, where the
    rollout (``carried``) and every reader of a result find it.

    Raises:
        ApplicationError: the target failed.
    """
    if outcome.outcome == "failed" and workflow.patched(PATCH_FAILED_TARGET_FAILS):
        raise ApplicationError(
            failure_summary(outcome.error_code, outcome.message),
            outcome.model_dump(mode="json"),
            type=outcome.error_code or TARGET_FAILED,
            non_retryable=True,
        )
    return outcome


def seconds_so_far() -> float:
    """Seconds since this workflow run started, by workflow time."""
    seconds = (workflow.now() - workflow.info().workflow_start_time).total_seconds()
    return round(max(seconds, 0.0), 3)


def outcome(
    target: MeshTarget,
    kind: OutcomeKind,
    *,
    uid: str | None,
    phase: str | None,
    attempts: int,
    polls: int = 0,
    error_code: str | None = None,
    message: str | None = None,
) -> TargetOutcome:
    """What this workflow reports for ``target``."""
    return TargetOutcome(
        workflow_id=workflow.info().workflow_id,
        project_id=target.project_id,
        region=target.region,
        cluster_id=target.cluster_id,
        mesh_name=target.mesh_name,
        outcome=kind,
        uid=uid,
        phase=phase,
        error_code=error_code,
        message=message,
        attempts=attempts,
        polls=polls,
        seconds=seconds_so_far(),
    )


def failed(
    target: MeshTarget, err: ActivityError | ApplicationError, phase: str | None
) -> TargetOutcome:
    """A failed outcome from an activity's failure (a local activity's arrives as the
    ``ApplicationError`` itself); ``phase``: the last phase seen, unless the failure names one."""
    cause = err.cause if isinstance(err, ActivityError) else err
    details = FailureDetails.of(cause) or FailureDetails()
    # Timeouts and cancellations carry no ApplicationError: their kind names the failure.
    kind = failure_type(cause) if cause is not None else None
    return TargetOutcome.failed(
        target,
        details.error_code or kind,
        cause.message if isinstance(cause, ApplicationError) else str(cause or err),
        workflow_id=workflow.info().workflow_id,
        phase=details.phase or phase,
        attempts=details.attempt,
        seconds=seconds_so_far(),
    )
