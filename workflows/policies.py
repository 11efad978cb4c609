"""How one mesh's activities are timed and retried: the same for creating and deleting."""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from meshfleet.contract.failures import NON_RETRYABLE_TYPES
    from meshfleet.contract.payloads import MeshTiming


def deadline_of(timing: MeshTiming) -> datetime:
    """When the mesh must be done: the run's start plus the strategy's timeout (retries and
    restarts never extend it)."""
    return workflow.info().workflow_start_time + timedelta(seconds=timing.timeout_s)


def call_retry(timing: MeshTiming) -> RetryPolicy:
    """The strategy's ``create_retry`` for a mesh's POST or DELETE: 429, 5xx and no answer are
    tried again (after ``Retry-After`` when the server sent one); a failure that retrying
    cannot mend is not."""
    retry = timing.create_retry
    return RetryPolicy(
        initial_interval=timedelta(seconds=retry.initial_s),
        maximum_interval=timedelta(seconds=retry.maximum_s),
        backoff_coefficient=retry.backoff,
        maximum_attempts=retry.max_attempts,
        non_retryable_error_types=list(NON_RETRYABLE_TYPES),
    )


def poll_retry() -> RetryPolicy:
    """A poll activity's retries: it polls on through flaky answers itself, so an attempt ends
    only with its worker, and the next resumes from the last heartbeat."""
    return RetryPolicy(
        initial_interval=timedelta(seconds=1),
        maximum_interval=timedelta(seconds=30),
        non_retryable_error_types=list(NON_RETRYABLE_TYPES),
    )


def poll_limit(deadline: datetime, heartbeat_timeout: timedelta) -> timedelta:
    """A poll attempt's limit: what is left until the deadline, and one heartbeat more."""
    remaining = deadline - workflow.now()
    return max(remaining, timedelta(seconds=1)) + heartbeat_timeout
