"""Stored target pages: read back from Temporal, or a clear permanent error when gone."""

from __future__ import annotations

import pytest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.pages import TargetPageActivities
from meshfleet.contract.payloads import LoadPageInput


async def test_missing_page_is_a_permanent_error_naming_it(client: Client) -> None:
    pages = TargetPageActivities(client)
    with pytest.raises(ApplicationError) as caught:
        await ActivityEnvironment().run(
            pages.load_target_page, LoadPageInput(rollout_id="never-started", page=3)
        )
    assert caught.value.non_retryable
    assert "page 3 of rollout never-started" in caught.value.message
