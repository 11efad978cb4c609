"""How the workflows' activities are timed and retried: every retry policy, once.

A mesh's own calls (its POST or DELETE, then its poll) take theirs from the rollout strategy's
timings, the same for every action; the rollout's own activities (a page of targets, a target
carried from an earlier run, a wave's verification, the request to end Canceled) have fixed ones.
"""

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


def page_load_retry() -> RetryPolicy:
    """Loading a stored page of targets: Temporal answers again after a blip; never give up."""
    return RetryPolicy(maximum_interval=timedelta(seconds=30))


def await_target_retry() -> RetryPolicy:
    """Awaiting a target started by an earlier run: one attempt waits 30 s at most, then is
    retried; the target ends by its own deadline, so the attempts end too."""
    return RetryPolicy(maximum_interval=timedelta(seconds=30))


# verify_wave's own errors (the ASM API or the webhook unreachable) are retried this often, then
# the rollout halts with the error rather than guessing the wave is fine.
VERIFY_ATTEMPTS = 5


def verify_retry() -> RetryPolicy:
    """A wave's verification: a few tries, then the rollout halts saying why."""
    return RetryPolicy(
        initial_interval=timedelta(seconds=2),
        maximum_interval=timedelta(seconds=60),
        maximum_attempts=VERIFY_ATTEMPTS,
    )


# How often an ending rollout asks Temporal to cancel it: a request Temporal will not take must
# not keep a finished rollout open.
CANCEL_REQUEST_ATTEMPTS = 5


def cancel_request_retry() -> RetryPolicy:
    """The request a cancelled rollout sends to end its own run Canceled."""
    return RetryPolicy(
        maximum_interval=timedelta(seconds=10), maximum_attempts=CANCEL_REQUEST_ATTEMPTS
    )
