"""``DriftCheckWorkflow``: one scheduled, read-only check of a fleet against its manifest; and
``DriftTargetPageWorkflow``, which keeps a page of a drift schedule's targets for as long as the
schedule needs it."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from meshfleet.contract.drift import (
        CHECK_DRIFT,
        DRIFT_CHECK_WORKFLOW,
        DRIFT_PAGE_WORKFLOW,
        NOTIFY_DRIFT,
        DriftCheckInput,
        DriftNotice,
        DriftPage,
        DriftPages,
        DriftReport,
        NotifyDriftInput,
    )
    from meshfleet.timestamps import utc_text

DETAILS_TARGETS = 20
"""How many drifted targets the Temporal UI's details name; the rest are counted."""

# One check lists every project and region once; an attempt that cannot (ASM unreachable, a
# page Temporal cannot give back) is tried again a few times, then the run fails saying why
# and the schedule's next run tries afresh.
CHECK_ATTEMPTS = 5
CHECK_LIMIT = timedelta(minutes=30)
CHECK_HEARTBEAT = timedelta(minutes=2)
NOTIFY_LIMIT = timedelta(minutes=3)
"""The webhook poster's own attempts and backoff fit in it (meshfleet/webhook.py)."""


def check_retry() -> RetryPolicy:
    """Reading the pages and listing the meshes: a few tries, then the run fails."""
    return RetryPolicy(
        initial_interval=timedelta(seconds=2),
        maximum_interval=timedelta(seconds=60),
        maximum_attempts=CHECK_ATTEMPTS,
    )


def notify_retry() -> RetryPolicy:
    """The webhook's answer is returned, never raised: an attempt fails only with its worker,
    and a second one then may post the summary again, which beats not posting it."""
    return RetryPolicy(maximum_attempts=2)


def _short(text: str, limit: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def details_of(inp: DriftCheckInput, report: DriftReport) -> str:
    """What the Temporal UI shows above the run: the counts, then the first drifted targets,
    each differing field beneath its target, and how many more there are."""
    state = "**drift found**" if report.not_in_sync else "**in sync**"
    head = f"{state} · drift schedule {inp.name} · checked {utc_text(report.checked_at)}"
    notice = report.notified
    if notice is not None and notice.sent:
        head += f" · webhook answered {notice.status if notice.status is not None else 'nothing'}"
    elif notice is not None:
        head += f" · webhook not posted to: {_short(notice.excerpt)}"
    items: list[str] = []
    for target in report.drifted[:DETAILS_TARGETS]:
        items.append(f"- {target.line()}")
        items += [f"  - {change.text()}" for change in target.changes]
    more = report.not_in_sync - min(len(report.drifted), DETAILS_TARGETS)
    if more > 0:
        items.append(f"- … and {more} more")
    return "\n\n".join(part for part in (head, report.summary(), "\n".join(items)) if part)


@workflow.defn(name=DRIFT_CHECK_WORKFLOW)
class DriftCheckWorkflow:
    """Judge every target of a drift schedule; report the drift, and tell the webhook of it.

    Writes nothing to ASM: its activities may only list meshes (``meshfleet.drift_check``).
    """

    @workflow.run
    async def run(self, inp: DriftCheckInput) -> DriftReport:
        """The report of this check; the Temporal UI's details list what drifted."""
        workflow.set_current_details(
            f"checking {inp.total} targets of drift schedule {inp.name} ({inp.pages} pages)"
        )
        report: DriftReport = await workflow.execute_activity(
            CHECK_DRIFT,
            DriftPages(name=inp.name, digest=inp.digest, total=inp.total, page_size=inp.page_size),
            result_type=DriftReport,
            start_to_close_timeout=CHECK_LIMIT,
            heartbeat_timeout=CHECK_HEARTBEAT,
            retry_policy=check_retry(),
            summary=f"judge {inp.total} targets",
        )
        if report.not_in_sync and inp.webhook is not None:
            notice: DriftNotice = await workflow.execute_activity(
                NOTIFY_DRIFT,
                NotifyDriftInput(
                    name=inp.name,
                    webhook=inp.webhook,
                    report=report,
                    workflow_id=workflow.info().workflow_id,
                ),
                result_type=DriftNotice,
                start_to_close_timeout=NOTIFY_LIMIT,
                retry_policy=notify_retry(),
                summary=f"notify the webhook: {report.not_in_sync} drifted",
            )
            report = report.model_copy(update={"notified": notice})
        workflow.set_current_details(details_of(inp, report))
        return report


@workflow.defn(name=DRIFT_PAGE_WORKFLOW)
class DriftTargetPageWorkflow:
    """Holds one page of a drift schedule's targets in its input, open until terminated.

    A closed workflow is deleted after the namespace's retention; a schedule runs for months.
    This one waits for nothing, so after its first task it costs no worker anything, and its
    input is read from the first event of its history (``activities.drift``).
    """

    @workflow.run
    async def run(self, page: DriftPage) -> None:
        """Wait until terminated (or cancelled)."""
        await workflow.wait_condition(lambda: False)
