"""Activities that act on workflows through the worker's Temporal client: ``await_target``, the
outcome of a target workflow that an earlier rollout run started, and ``request_cancel``, a
rollout's request to be cancelled."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory
from temporalio.service import RPCError, RPCStatusCode

from meshfleet.contract import failures as errors
from meshfleet.contract.payloads import (
    AWAIT_TARGET,
    REQUEST_CANCEL,
    AwaitTargetInput,
    RequestCancelInput,
)
from meshfleet.models import TargetOutcome

# One attempt waits this long, then gives its activity slot back and is retried: a carried
# target may run for its whole timeout (30 min by default), and up to a window of them must
# not hold the slots their own wait_for_mesh activities need. Retries add no history events.
AWAIT_SLICE_S = 30.0
RETRY_AFTER_SLICE = timedelta(seconds=2)


async def _result_within_slice(
    result: Coroutine[Any, Any, TargetOutcome], slice_s: float
) -> TargetOutcome:
    """The target's outcome, or TimeoutError after a slice or once the worker begins to stop.

    A stopping worker drains its activities for up to its grace period; a wait that would fill
    that period holds the restart up for nothing, since the next worker looks again at once.
    """
    waiting = asyncio.ensure_future(result)
    stopping = asyncio.ensure_future(activity.wait_for_worker_shutdown())
    try:
        done, _ = await asyncio.wait(
            (waiting, stopping), timeout=slice_s, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        stopping.cancel()
    if waiting not in done:
        waiting.cancel()
        raise TimeoutError
    return waiting.result()


class TargetWatchActivities:
    """Activities that wait on target workflows through the worker's Temporal client."""

    def __init__(self, client: Client, *, slice_s: float = AWAIT_SLICE_S) -> None:
        self._client = client
        self._slice_s = slice_s

    @activity.defn(name=AWAIT_TARGET)
    async def await_target(self, inp: AwaitTargetInput) -> TargetOutcome:
        """The target's outcome once its workflow closes.

        A rollout continues as new without waiting for its in-flight targets; their completions
        would land in the closed run's history, so the next run waits for them here instead.

        Raises:
            ApplicationError: non-retryable when the target workflow ended without an outcome
                (terminated, timed out, or failed without one attached) or is gone from
                Temporal.
        """
        handle = self._client.get_workflow_handle(
            inp.workflow_id, run_id=inp.run_id, result_type=TargetOutcome
        )
        try:
            outcome = await _result_within_slice(handle.result(follow_runs=False), self._slice_s)
        except TimeoutError:
            raise ApplicationError(
                f"{inp.workflow_id} is still running; looking again",
                type=errors.TARGET_STILL_RUNNING,
                next_retry_delay=RETRY_AFTER_SLICE,
                # Expected every 30 s of a long mesh: no warning and traceback from the SDK.
                category=ApplicationErrorCategory.BENIGN,
            ) from None
        except WorkflowFailureError as err:
            cause = err.cause
            failed = errors.carried(cause, TargetOutcome)
            if failed is not None:
                # The target failed, and its workflow ended Failed with the outcome attached.
                return failed
            raise ApplicationError(
                f"the target's workflow ended without an outcome: {cause or err}",
                type=errors.failure_type(cause, default=type(err).__name__),
                non_retryable=True,
            ) from err
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            raise ApplicationError(
                f"the target's workflow {inp.workflow_id} is no longer in Temporal ({exc.message})",
                type=errors.TARGET_VANISHED,
                non_retryable=True,
            ) from exc
        return outcome

    @activity.defn(name=REQUEST_CANCEL)
    async def request_cancel(self, inp: RequestCancelInput) -> None:
        """Ask Temporal to cancel the run of a rollout that the ``cancel`` update has cancelled.

        Temporal shows a workflow Canceled only when a cancellation was requested and the
        workflow then ended by it; the update is not such a request, and a workflow cannot
        send one for itself. A run that has closed meanwhile needs nothing more.
        """
        handle = self._client.get_workflow_handle(inp.workflow_id, run_id=inp.run_id)
        try:
            await handle.cancel()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
