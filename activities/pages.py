"""``load_target_page``: read one stored page of a large rollout's targets back from Temporal."""

from __future__ import annotations

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from meshfleet.contract import failures as errors
from meshfleet.contract.payloads import (
    LOAD_TARGET_PAGE,
    LoadPageInput,
    TargetPage,
    page_workflow_id,
)


class TargetPageActivities:
    """Activities that need the worker's Temporal client."""

    def __init__(self, client: Client) -> None:
        self._client = client

    @activity.defn(name=LOAD_TARGET_PAGE)
    async def load_target_page(self, inp: LoadPageInput) -> TargetPage:
        """The page's targets, from the result of its page workflow.

        Raises:
            ApplicationError: non-retryable when the page belongs to another rollout.
        """
        return await read_page(self._client, inp)


async def read_page(client: Client, inp: LoadPageInput) -> TargetPage:
    """One stored page of a rollout's targets, read from its page workflow's result.

    Raises:
        ApplicationError: non-retryable when the page is no longer stored or belongs to another
            rollout.
    """
    page_id = inp.workflow_id or page_workflow_id(inp.rollout_id, inp.page)
    handle = client.get_workflow_handle(page_id, result_type=TargetPage)
    try:
        page: TargetPage = await handle.result()
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        # Retrying cannot bring a page back: its workflow was deleted or outlived retention.
        raise ApplicationError(
            f"page {inp.page} of rollout {inp.rollout_id} is no longer stored in Temporal "
            f"({exc.message}); start the rollout again under a new rollout id",
            type=errors.INVALID_TARGET,
            non_retryable=True,
        ) from exc
    if page.rollout_id != inp.rollout_id or page.page != inp.page:
        raise ApplicationError(
            f"stored page {inp.page} of rollout {inp.rollout_id} holds page {page.page} of "
            f"{page.rollout_id}",
            type=errors.INVALID_TARGET,
            non_retryable=True,
        )
    return page
