"""``delete_mesh`` and ``wait_for_mesh_gone``: deleting, by uid, a mesh a rollout created.

Deletion is asynchronous in ASM: ``DELETE /v1/{project_id}/meshes/{mesh_id}`` answers 200 with
the mesh ``Deleting``, and the mesh is gone once show answers 404. A 404 on the DELETE or on a
poll means the mesh is gone already, which is what was wanted. ``DeleteFailed`` is a failure
with that phase. 429, 5xx and connection errors are retried like those of a create, after the
server's ``Retry-After`` when it sends one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import structlog
from temporalio import activity

from activities.errors import application_error, failure
from activities.polling import (
    POLL_SURVIVES,
    after,
    heartbeating,
    poll_failed,
    sleep_before_next_poll,
    sleep_until,
)
from meshfleet.asm.calls import MeshDeleteApi
from meshfleet.asm.errors import AsmError, AsmNotFoundError
from meshfleet.asm.models import MeshPhase, parse_time
from meshfleet.contract import failures as errors
from meshfleet.contract.deletion import (
    DELETE_MESH,
    WAIT_FOR_MESH_GONE,
    DeleteMeshActivityInput,
    DeleteMeshResult,
    WaitGoneInput,
    WaitGoneResult,
)
from meshfleet.contract.failures import FailureDetails
from meshfleet.contract.payloads import WaitProgress

log = structlog.get_logger(__name__)


class DeletionActivities:
    """Activities bound to one ASM client that can delete."""

    def __init__(self, api: MeshDeleteApi) -> None:
        self._api = api

    @activity.defn(name=DELETE_MESH)
    async def delete_mesh(self, inp: DeleteMeshActivityInput) -> DeleteMeshResult:
        """DELETE the mesh by its uid; a 404 means gone already, or kept if re-created.

        Raises:
            ApplicationError: non-retryable for 400/401/403; retryable for 429, 5xx and no
                answer (with the server's ``Retry-After`` as the next delay).
        """
        attempt = activity.info().attempt
        with structlog.contextvars.bound_contextvars(
            rollout_id=inp.rollout_id,
            project_id=inp.project_id,
            region=inp.region,
            mesh_name=inp.mesh_name,
            uid=inp.uid,
            attempt=attempt,
        ):
            try:
                await heartbeating(self._api.delete_mesh(inp.project_id, inp.region, inp.uid))
            except AsmNotFoundError:
                return await heartbeating(self._already_gone(inp, attempt))
            except AsmError as exc:
                raise application_error(exc, attempt=attempt, action="delete mesh") from exc
            log.info("mesh deletion accepted")
            return DeleteMeshResult(verdict="deleting", phase=MeshPhase.DELETING, attempts=attempt)

    async def _already_gone(self, inp: DeleteMeshActivityInput, attempt: int) -> DeleteMeshResult:
        # The uid is gone. Whether a mesh of that name stands there now only changes what is
        # reported: it is another mesh (someone re-created it), and nothing here touches it.
        try:
            meshes = await self._api.meshes(inp.project_id, inp.region)
        except AsmError as exc:
            raise application_error(exc, attempt=attempt, action="list meshes") from exc
        again = next((m for m in meshes if m.metadata.name == inp.mesh_name), None)
        if again is not None and again.uid != inp.uid:
            reason = (
                f"mesh {inp.mesh_name} was re-created since the rollout: it has uid {again.uid}, "
                f"not {inp.uid}; left alone"
            )
            log.info("mesh re-created since the rollout; kept", new_uid=again.uid)
            return DeleteMeshResult(verdict="kept", reason=reason, attempts=attempt)
        log.info("mesh already gone")
        return DeleteMeshResult(verdict="gone", attempts=attempt)

    @activity.defn(name=WAIT_FOR_MESH_GONE)
    async def wait_for_mesh_gone(self, inp: WaitGoneInput) -> WaitGoneResult:
        """Poll the mesh until show answers 404, ``DeleteFailed`` or the deadline.

        Raises:
            ApplicationError: non-retryable ``MeshFailed`` (``DeleteFailed``) or ``MeshTimeout``.
        """
        info = activity.info()
        with structlog.contextvars.bound_contextvars(
            rollout_id=inp.rollout_id,
            project_id=inp.project_id,
            region=inp.region,
            mesh_name=inp.mesh_name,
            uid=inp.uid,
            attempt=info.attempt,
        ):
            return await self._wait(inp, info.attempt, info.heartbeat_details)

    async def _wait(
        self, inp: WaitGoneInput, attempt: int, details: Sequence[Any]
    ) -> WaitGoneResult:
        progress = WaitProgress.model_validate(details[0]) if details else WaitProgress()
        deadline = parse_time(inp.deadline) or datetime.now(UTC)
        if progress.polls == 0:
            await sleep_until(min(deadline, after(inp.first_poll_s)), progress)
        while True:
            gone, phase, delay = await self._poll(inp, attempt)
            progress = WaitProgress(phase=phase or progress.phase, polls=progress.polls + 1)
            activity.heartbeat(progress.model_dump())
            if gone:
                log.info("mesh gone", polls=progress.polls)
                return WaitGoneResult(polls=progress.polls)
            if phase == MeshPhase.DELETE_FAILED:
                raise failure(
                    f"mesh {inp.mesh_name} ({inp.uid}) ended in phase {phase}",
                    FailureDetails(attempt=attempt, error_code=phase, phase=phase),
                    type=errors.MESH_FAILED,
                    non_retryable=True,
                )
            if datetime.now(UTC) >= deadline:
                raise failure(
                    f"mesh {inp.mesh_name} ({inp.uid}) not gone by its deadline {inp.deadline} "
                    f"(last phase {progress.phase})",
                    FailureDetails(attempt=attempt, error_code="Timeout", phase=progress.phase),
                    type=errors.MESH_TIMEOUT,
                    non_retryable=True,
                )
            await sleep_before_next_poll(deadline, inp.poll_interval_s, delay, progress)

    async def _poll(
        self, inp: WaitGoneInput, attempt: int
    ) -> tuple[bool, str | None, float | None]:
        """(gone, phase, seconds the server asked to wait) of one show."""
        try:
            mesh = await self._api.mesh(inp.project_id, inp.region, inp.uid)
        except AsmNotFoundError:
            return True, None, None
        except POLL_SURVIVES as exc:
            return False, None, poll_failed(exc)
        except AsmError as exc:
            raise application_error(exc, attempt=attempt, action="show mesh") from exc
        return False, mesh.phase, None
