"""``await_target``: the outcome of a target workflow that an earlier rollout run started."""

from __future__ import annotations

import asyncio
import contextlib

from temporalio import activity
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from meshfleet import errors
from meshfleet.contracts import AWAIT_TARGET, AwaitTargetInput
from meshfleet.models import TargetOutcome

# Well inside the heartbeat timeout the rollout sets, so a dead worker is noticed in a minute.
HEARTBEAT_EVERY_S = 10.0


class TargetWatchActivities:
    """Activities that wait on target workflows through the worker's Temporal client."""

    def __init__(self, client: Client) -> None:
        self._client = client

    @activity.defn(name=AWAIT_TARGET)
    async def await_target(self, inp: AwaitTargetInput) -> TargetOutcome:
        """The target's outcome once its workflow closes.

        A rollout continues as new without waiting for its in-flight targets; their completions
        would land in the closed run's history, so the next run waits for them here instead.

        Raises:
            ApplicationError: non-retryable when the target workflow did not return an outcome
                (terminated, timed out, failed) or is gone from Temporal.
        """
        handle = self._client.get_workflow_handle(
            inp.workflow_id, run_id=inp.run_id, result_type=TargetOutcome
        )
        beating = asyncio.create_task(_heartbeat())
        try:
            outcome: TargetOutcome = await handle.result(follow_runs=False)
        except WorkflowFailureError as err:
            cause = err.cause
            raise ApplicationError(
                f"the target's workflow ended without an outcome: {cause or err}",
                type=type(cause).__name__ if cause is not None else type(err).__name__,
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
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
        return outcome


async def _heartbeat() -> None:
    # Heartbeats are also how a cancel (the rollout run closed) reaches this activity.
    while True:
        activity.heartbeat()
        await asyncio.sleep(HEARTBEAT_EVERY_S)
