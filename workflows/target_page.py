"""A page of a large rollout's targets, kept durably in Temporal as a tiny workflow's result."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from meshfleet.contract.payloads import TARGET_PAGE_WORKFLOW, TargetPage


@workflow.defn(name=TARGET_PAGE_WORKFLOW)
class RolloutTargetPageWorkflow:
    """Returns its input: the page lives in history, readable by ``load_target_page``."""

    @workflow.run
    async def run(self, page: TargetPage) -> TargetPage:
        """Hand the page back unchanged."""
        return page
