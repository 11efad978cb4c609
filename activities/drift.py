"""``check_drift`` and ``notify_drift``: a drift schedule's targets judged, and its webhook told.

``check_drift`` reads the schedule's stored pages back from Temporal (each the input of a page
workflow that stays open, read from the first event of its history) and judges every target in
the one activity, one list call per project and region: 10,000 targets never travel through the
check's own history. It can only list meshes: it holds a ``MeshLister``, and the judgement calls
through ``ListOnly``, which refuses anything else.

``notify_drift`` posts the report as the verify webhook is posted to (``meshfleet.webhook``):
only under ``MESHFLEET_VERIFY_ALLOWED_URLS``, with a bearer token from the worker's
``MESHFLEET_NOTIFY_TOKEN``, bounded attempts; the answer is returned, never raised.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.errors import application_error
from meshfleet.asm.errors import AsmError
from meshfleet.contract import failures as errors
from meshfleet.contract.drift import (
    CHECK_DRIFT,
    NOTIFY_DRIFT,
    DriftNotice,
    DriftPage,
    DriftPages,
    DriftReport,
    NotifyDriftInput,
    drift_page_workflow_id,
    drift_schedule_id,
)
from meshfleet.drift_check import MeshLister, check_fleet
from meshfleet.models import MeshTarget
from meshfleet.webhook import VerifyHook
from meshfleet.webhook_allowlist import UrlPrefix

log = structlog.get_logger(__name__)

NOTIFY_TOKEN_ENV = "MESHFLEET_NOTIFY_TOKEN"  # noqa: S105 (a variable name, not a secret)
"""The notify webhook's bearer token: read by the worker alone, never from a manifest."""

PAGES_IN_PARALLEL = 8
"""Page histories read at once: 25 pages for 10,000 targets, each one small request."""


def notify_hook(allowed: Sequence[UrlPrefix], environ: Mapping[str, str]) -> VerifyHook:
    """The notify webhook poster: the token of ``environ``, sent only under ``allowed``."""
    token = environ.get(NOTIFY_TOKEN_ENV, "").strip() or None
    return VerifyHook(token, allowed=allowed)


def _page_gone(name: str, page: int, why: str) -> ApplicationError:
    # Retrying cannot bring a page back: it was terminated with its schedule, or never stored.
    return ApplicationError(
        f"page {page} of drift schedule {name} is not stored in Temporal ({why}); save the "
        f"schedule again (`meshfleet drift FILE --every ... --name {name}`)",
        type=errors.INVALID_TARGET,
        non_retryable=True,
    )


async def read_drift_page(client: Client, pages: DriftPages, page: int) -> DriftPage:
    """One stored page of a drift schedule, from the input of its page workflow.

    Raises:
        ApplicationError: non-retryable when the page is not stored or holds another
            schedule's page.
    """
    handle = client.get_workflow_handle(drift_page_workflow_id(pages.name, pages.digest, page))
    started = None
    try:
        async for event in handle.fetch_history_events(page_size=1):
            if event.HasField("workflow_execution_started_event_attributes"):
                started = event.workflow_execution_started_event_attributes
            break
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        raise _page_gone(pages.name, page, exc.message) from exc
    if started is None:
        raise _page_gone(pages.name, page, "its history does not start with its input")
    [stored] = await client.data_converter.decode(started.input.payloads, [DriftPage])
    if not isinstance(stored, DriftPage) or (stored.name, stored.digest, stored.page) != (
        pages.name,
        pages.digest,
        page,
    ):
        raise ApplicationError(
            f"stored page {page} of drift schedule {pages.name} holds another page",
            type=errors.INVALID_TARGET,
            non_retryable=True,
        )
    return stored


async def read_drift_targets(client: Client, pages: DriftPages) -> list[MeshTarget]:
    """Every target of a drift schedule, in order, from its stored pages.

    Raises:
        ApplicationError: non-retryable when a page is missing or the pages do not hold
            ``pages.total`` targets.
    """
    gate = asyncio.Semaphore(PAGES_IN_PARALLEL)

    async def one(page: int) -> DriftPage:
        async with gate:
            activity.heartbeat(f"reading page {page}")
            return await read_drift_page(client, pages, page)

    stored = await asyncio.gather(*(one(n) for n in range(pages.pages)))
    targets = [target for page in stored for target in page.targets]
    if len(targets) != pages.total:
        raise ApplicationError(
            f"the pages of drift schedule {pages.name} hold {len(targets)} targets, not "
            f"{pages.total}",
            type=errors.INVALID_TARGET,
            non_retryable=True,
        )
    return targets


def notify_body(inp: NotifyDriftInput) -> dict[str, Any]:
    """What the webhook receives: which schedule and run, when, then the report's document."""
    return {
        "schedule_id": drift_schedule_id(inp.name),
        "name": inp.name,
        "workflow_id": inp.workflow_id,
        "checked_at": inp.report.checked_at,
        "summary": inp.report.summary(),
        **inp.report.document(),
    }


class DriftActivities:
    """The drift check's activities: a lister of meshes, a Temporal client, a webhook poster."""

    def __init__(self, api: MeshLister, client: Client, hook: VerifyHook) -> None:
        self._api = api
        self._client = client
        self._hook = hook

    @activity.defn(name=CHECK_DRIFT)
    async def check_drift(self, inp: DriftPages) -> DriftReport:
        """Every target of the schedule judged against the meshes there now.

        Raises:
            ApplicationError: a page is missing (non-retryable), or ASM could not be read
                (retryable as the error says).
        """
        targets = await read_drift_targets(self._client, inp)

        def listing(project_id: str, region: str) -> None:
            activity.heartbeat(f"listing {project_id} in {region}")

        try:
            report = await check_fleet(self._api, targets, on_list=listing)
        except AsmError as exc:
            raise application_error(
                exc, attempt=activity.info().attempt, action="drift check: list meshes"
            ) from exc
        log.info(
            "drift checked",
            schedule_id=drift_schedule_id(inp.name),
            total=report.total,
            in_sync=report.in_sync,
            not_in_sync=report.not_in_sync,
        )
        return report

    @activity.defn(name=NOTIFY_DRIFT)
    async def notify_drift(self, inp: NotifyDriftInput) -> DriftNotice:
        """POST the report to the schedule's webhook; its answer, or why nothing was sent."""
        activity.heartbeat("posting to the notify webhook")
        answer = await self._hook.post(inp.webhook, notify_body(inp))
        if not answer.sent:
            log.warning(
                "notify webhook not allowed; nothing sent",
                schedule_id=drift_schedule_id(inp.name),
                reason=answer.excerpt,
            )
        else:
            log.info(
                "notify webhook answered",
                schedule_id=drift_schedule_id(inp.name),
                status=answer.status,
            )
        return DriftNotice(sent=answer.sent, status=answer.status, excerpt=answer.excerpt)
