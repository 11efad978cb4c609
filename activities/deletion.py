"""``delete_mesh`` and ``wait_for_mesh_gone``: deleting, by uid, a mesh a rollout created.

Deletion is asynchronous in ASM: ``DELETE /v1/{project_id}/meshes/{mesh_id}`` answers 200 with
the mesh ``Deleting``, and the mesh is gone once show answers 404. A 404 on the DELETE or on a
poll means the mesh is gone already, which is what was wanted. ``DeleteFailed`` is a failure
with that phase. 429, 5xx and connection errors are retried like those of a create, after the
server's ``Retry-After`` when it sends one.
"""

from __future__ import annotations

from functools import partial

import structlog
from temporalio import activity

from activities.meshes import ProjectMeshes, mesh_context
from activities.polling import Seen, ended_in, poll_until
from meshfleet.asm.calls import MeshDeleteApi
from meshfleet.asm.errors import AsmNotFoundError
from meshfleet.asm.models import MeshPhase
from meshfleet.contract.deletion import (
    DELETE_MESH,
    WAIT_FOR_MESH_GONE,
    DeleteMeshActivityInput,
    DeleteMeshResult,
    WaitGoneInput,
    WaitGoneResult,
)
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
        asm = ProjectMeshes(self._api, inp.project_id, inp.region, attempt, heartbeat=True)
        with mesh_context(inp, attempt=attempt):
            try:
                await asm.delete(inp.uid)
            except AsmNotFoundError:
                return await self._already_gone(inp, asm)
            log.info("mesh deletion accepted")
            return DeleteMeshResult(verdict="deleting", phase=MeshPhase.DELETING, attempts=attempt)

    async def _already_gone(
        self, inp: DeleteMeshActivityInput, asm: ProjectMeshes[MeshDeleteApi]
    ) -> DeleteMeshResult:
        # The uid is gone. Whether a mesh of that name stands there now only changes what is
        # reported: it is another mesh (someone re-created it), and nothing here touches it.
        meshes = await asm.listed("list meshes")
        again = next((m for m in meshes if m.metadata.name == inp.mesh_name), None)
        if again is not None and again.uid != inp.uid:
            reason = (
                f"mesh {inp.mesh_name} was re-created since the rollout: it has uid {again.uid}, "
                f"not {inp.uid}; left alone"
            )
            log.info("mesh re-created since the rollout; kept", new_uid=again.uid)
            return DeleteMeshResult(verdict="kept", reason=reason, attempts=asm.attempt)
        log.info("mesh already gone")
        return DeleteMeshResult(verdict="gone", attempts=asm.attempt)

    @activity.defn(name=WAIT_FOR_MESH_GONE)
    async def wait_for_mesh_gone(self, inp: WaitGoneInput) -> WaitGoneResult:
        """Poll the mesh until show answers 404, ``DeleteFailed`` or the deadline.

        Raises:
            ApplicationError: non-retryable ``MeshFailed`` (``DeleteFailed``) or ``MeshTimeout``.
        """
        attempt = activity.info().attempt
        what = f"mesh {inp.mesh_name} ({inp.uid})"

        def gone(seen: Seen, _: WaitProgress) -> bool:
            if seen.phase == MeshPhase.DELETE_FAILED:
                raise ended_in(what, seen.phase, attempt)
            return seen.missing is not None

        read = partial(self._api.mesh, inp.project_id, inp.region, inp.uid)
        with mesh_context(inp, attempt=attempt):
            done = await poll_until(read, gone, what=what, until="gone", timing=inp)
            log.info("mesh gone", polls=done.polls)
            return WaitGoneResult(polls=done.polls)
