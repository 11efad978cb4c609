"""``verify_wave``: read a finished wave's meshes again, then ask the operator's webhook.

A wave is read with one list call per (project, region), never a GET per mesh: a wave of a
thousand meshes in twenty projects costs twenty calls. A mesh that is no longer in the list, or
not ``Running``, is a failure the workflow counts against the budget. The webhook's verdict is
returned, never raised: a hook that says no is an answer the rollout halts on, not an error to
retry. So is a webhook the worker may not post to (not under ``MESHFLEET_VERIFY_ALLOWED_URLS``):
it gets no request, and the verdict says why.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import structlog
from temporalio import activity
from temporalio.client import Client

from activities.errors import application_error
from activities.pages import read_page
from meshfleet.asm.calls import MeshApi
from meshfleet.asm.errors import AsmError
from meshfleet.asm.models import Mesh, MeshPhase
from meshfleet.contract import failures as errors
from meshfleet.contract.payloads import (
    VERIFY_WAVE,
    LoadPageInput,
    VerifiedFailure,
    VerifyWaveInput,
    VerifyWaveResult,
    WebhookVerdict,
)
from meshfleet.models import MeshTarget
from meshfleet.webhook import VerifyHook

log = structlog.get_logger(__name__)

LISTS_IN_PARALLEL = 8
"""List calls in flight at once: a wave spans many projects, the gateway limits each caller."""


class VerifyActivities:
    """``verify_wave``, bound to the worker's ASM client, Temporal client and webhook poster."""

    def __init__(self, api: MeshApi, client: Client, hook: VerifyHook) -> None:
        self._api = api
        self._client = client
        self._hook = hook

    async def _targets(self, inp: VerifyWaveInput) -> dict[int, MeshTarget]:
        skip = set(inp.skip)
        wanted = [i for i in range(inp.start, inp.end) if i not in skip]
        if inp.targets is not None:
            return {i: inp.targets[i - inp.start] for i in wanted}
        pages: dict[int, list[MeshTarget]] = {}
        for page_no in sorted({i // inp.page_size for i in wanted}):
            page = await read_page(
                self._client, LoadPageInput(rollout_id=inp.rollout_id, page=page_no)
            )
            pages[page_no] = page.targets
        return {i: pages[i // inp.page_size][i % inp.page_size] for i in wanted}

    async def _lists(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], list[Mesh]]:
        gate = asyncio.Semaphore(LISTS_IN_PARALLEL)

        async def one(key: tuple[str, str]) -> list[Mesh]:
            async with gate:
                activity.heartbeat(f"listing {key[0]} in {key[1]}")
                return await self._api.meshes(*key)

        found = await asyncio.gather(*(one(key) for key in keys))
        return dict(zip(keys, found, strict=True))

    @activity.defn(name=VERIFY_WAVE)
    async def verify_wave(self, inp: VerifyWaveInput) -> VerifyWaveResult:
        """Every mesh of the wave read again; the webhook's verdict when one is configured.

        Raises:
            ApplicationError: the ASM API could not be read (retried by the workflow's policy,
                then the rollout halts naming it).
        """
        targets = await self._targets(inp)
        by_place: dict[tuple[str, str], list[int]] = defaultdict(list)
        for index, target in targets.items():
            by_place[(target.project_id, target.region)].append(index)
        try:
            lists = await self._lists(sorted(by_place))
        except AsmError as exc:
            raise application_error(
                exc, attempt=activity.info().attempt, action="verify: list meshes"
            ) from exc
        failures: list[VerifiedFailure] = []
        running: list[dict[str, Any]] = []
        for place, indexes in sorted(by_place.items()):
            named = {mesh.metadata.name: mesh for mesh in lists[place]}
            for index in sorted(indexes):
                target = targets[index]
                mesh = named.get(target.mesh_name)
                failure = _judge(index, target, mesh)
                if failure is not None:
                    failures.append(failure)
                    continue
                assert mesh is not None
                running.append(
                    {
                        "project_id": target.project_id,
                        "region": target.region,
                        "cluster_id": target.cluster_id,
                        "mesh_name": target.mesh_name,
                        "uid": mesh.uid,
                    }
                )
        log.info(
            "wave verified",
            rollout_id=inp.rollout_id,
            wave=inp.wave,
            region=inp.region,
            checked=len(targets),
            failed=len(failures),
            lists=len(lists),
        )
        verdict = None
        if inp.webhook is not None:
            verdict = await self._ask(inp, running)
        return VerifyWaveResult(checked=len(targets), failures=failures, webhook=verdict)

    async def _ask(self, inp: VerifyWaveInput, meshes: list[dict[str, Any]]) -> WebhookVerdict:
        assert inp.webhook is not None
        payload: dict[str, Any] = {"rollout_id": inp.rollout_id, "wave": inp.wave}
        if inp.region is not None:
            payload["region"] = inp.region
        payload["meshes"] = meshes
        activity.heartbeat("asking the verify webhook")
        # A URL outside the worker's MESHFLEET_VERIFY_ALLOWED_URLS gets no request: the wave
        # fails verification with why, and the rollout halts on it as on a hook that said no.
        answer = await self._hook.post(inp.webhook, payload)
        if not answer.sent:
            log.warning(
                "verify webhook not allowed; nothing sent",
                rollout_id=inp.rollout_id,
                wave=inp.wave,
                reason=answer.excerpt,
            )
        else:
            log.info(
                "verify webhook answered",
                rollout_id=inp.rollout_id,
                wave=inp.wave,
                status=answer.status,
                passed=answer.passed,
            )
        return WebhookVerdict(passed=answer.passed, status=answer.status, excerpt=answer.excerpt)


def _judge(index: int, target: MeshTarget, mesh: Mesh | None) -> VerifiedFailure | None:
    where = f"mesh {target.mesh_name!r} of project {target.project_id} in {target.region}"
    if mesh is None:
        return VerifiedFailure(
            index=index,
            error_code=errors.MESH_GONE,
            message=f"{where} is gone: the project's mesh list no longer holds it",
        )
    seen = mesh.phase
    if seen == MeshPhase.RUNNING:
        return None
    return VerifiedFailure(
        index=index,
        error_code=errors.mesh_seen_in(seen),
        message=f"{where} is no longer Running: its phase is {seen or 'missing'}",
        phase=seen,
    )
