"""``judge_mesh``, ``update_mesh`` and ``wait_for_config``: a mesh that exists, judged against
its target and converged to it in place.

ASM takes a new configuration with ``PUT /v2/projects/{project_id}/meshes/{mesh_id}`` (only for
a ``Running`` mesh), applies it asynchronously, and echoes it in ``spec.config`` once it holds
(docs/asm-api.md, "Update a mesh's configuration"). The PUT is sent once per change: a retry
after a lost answer or a dead worker first reads the mesh, and sends again only when the mesh
provably never took the first one.
"""

from __future__ import annotations

from functools import partial

import structlog
from pydantic import ValidationError
from temporalio import activity

from activities.errors import failure
from activities.meshes import ProjectMeshes, mesh_context
from activities.polling import Seen, ended_in, poll_until
from meshfleet.adoption import judge
from meshfleet.asm.calls import MeshUpdateApi
from meshfleet.asm.errors import AsmConflictError, AsmNotFoundError
from meshfleet.asm.models import Mesh, MeshConfig, MeshPhase, UpdateMeshRequest
from meshfleet.contract import failures as errors
from meshfleet.contract.convergence import (
    JudgedMesh,
    JudgeMeshInput,
    UpdateMeshActivityInput,
    UpdateMeshResult,
    WaitForConfigInput,
    WaitForConfigResult,
)
from meshfleet.contract.failures import FailureDetails
from meshfleet.contract.payloads import JUDGE_MESH, UPDATE_MESH, WAIT_FOR_CONFIG, WaitProgress
from meshfleet.drift import compare, drift_of, drift_texts, echoed_config, reads_as

log = structlog.get_logger(__name__)


class UpdateActivities:
    """Activities bound to one ASM client that can update a mesh."""

    def __init__(self, api: MeshUpdateApi) -> None:
        self._api = api

    @activity.defn(name=JUDGE_MESH)
    async def judge_mesh(self, inp: JudgeMeshInput) -> JudgedMesh:
        """List the target's project and judge the target against what stands there.

        Raises:
            ApplicationError: as a list call's failure (retryable for 429, 5xx, no answer).
        """
        target = inp.target
        attempt = activity.info().attempt
        asm = ProjectMeshes(self._api, target.project_id, target.region, attempt)
        with mesh_context(inp, target, attempt=attempt):
            judged = judge(target, await asm.listed("list meshes"))
            mesh = judged.mesh
            if judged.verdict == "create" or mesh is None:
                return JudgedMesh(verdict="create", attempts=attempt)
            found = _found(mesh, attempt)
            if judged.verdict != "adopt":
                return found.model_copy(update={"verdict": judged.verdict})
            verdict = compare(target, mesh).kind
            changes = drift_texts(drift_of(target, mesh))
            log.info("mesh judged", verdict=verdict, fields=len(changes), uid=mesh.uid)
            return found.model_copy(update={"verdict": verdict, "changes": changes})

    @activity.defn(name=UPDATE_MESH)
    async def update_mesh(self, inp: UpdateMeshActivityInput) -> UpdateMeshResult:
        """PUT the mesh's new configuration, once.

        A first attempt sends it. A later one (the answer was lost, a 5xx came back, or the
        worker died) reads the mesh first: when it already reads as sent, or its
        ``status.updateTimestamp`` moved since it was judged, the earlier PUT landed and nothing
        is sent again.

        Raises:
            ApplicationError: non-retryable ``MeshNotRunning`` for a 409 (the mesh is creating,
                upgrading, deleting...) and ``MeshVanished`` for a 404; as the error's class
                says otherwise.
        """
        attempt = activity.info().attempt
        asm = ProjectMeshes(self._api, inp.project_id, inp.region, attempt, heartbeat=True)
        with mesh_context(inp, attempt=attempt):
            try:
                if attempt > 1 and _landed(await asm.shown(inp.uid), inp):
                    log.info("an earlier attempt's update landed; not sent again")
                    return UpdateMeshResult(sent=False, attempts=attempt)
                await asm.update(inp.uid, _request(inp))
            except AsmNotFoundError as exc:
                raise failure(
                    f"mesh {inp.mesh_name} ({inp.uid}) vanished before its update: "
                    f"{exc.describe()}",
                    FailureDetails(
                        attempt=attempt, error_code=exc.error_code, request_id=exc.request_id
                    ),
                    type=errors.MESH_VANISHED,
                    non_retryable=True,
                ) from exc
            except AsmConflictError as exc:
                raise failure(
                    f"mesh {inp.mesh_name} ({inp.uid}) cannot take a configuration change now: "
                    f"{exc.describe()}",
                    FailureDetails(
                        attempt=attempt,
                        error_code=exc.error_code,
                        request_id=exc.request_id,
                        status=409,
                    ),
                    type=errors.MESH_NOT_RUNNING,
                    non_retryable=True,
                ) from exc
            log.info("mesh update accepted")
            return UpdateMeshResult(sent=True, attempts=attempt)

    @activity.defn(name=WAIT_FOR_CONFIG)
    async def wait_for_config(self, inp: WaitForConfigInput) -> WaitForConfigResult:
        """Read the mesh until it echoes the configuration sent and is ``Running``.

        Raises:
            ApplicationError: non-retryable ``MeshFailed``, ``MeshVanished`` or ``MeshTimeout``.
        """
        attempt = activity.info().attempt
        what = f"mesh {inp.mesh_name}"

        def holds(seen: Seen, progress: WaitProgress) -> bool:
            if seen.missing is not None:
                raise failure(
                    f"mesh {inp.mesh_name} ({inp.uid}) vanished during its update: "
                    f"{seen.missing.describe()}",
                    FailureDetails(attempt=attempt, phase=progress.phase, status=404),
                    type=errors.MESH_VANISHED,
                    non_retryable=True,
                )
            if seen.phase is not None and seen.phase.endswith("Failed"):
                raise ended_in(what, seen.phase, attempt)
            return (
                seen.phase == MeshPhase.RUNNING
                and seen.mesh is not None
                and reads_as(seen.mesh, inp.config)
            )

        read = partial(self._api.mesh, inp.project_id, inp.region, inp.uid)
        with mesh_context(inp, attempt=attempt):
            done = await poll_until(
                read, holds, what=what, until="Running with the configuration sent", timing=inp
            )
            log.info("mesh reads its new configuration", polls=done.polls)
            return WaitForConfigResult(phase=MeshPhase.RUNNING, polls=done.polls)


def _request(inp: UpdateMeshActivityInput) -> UpdateMeshRequest:
    """The PUT's body. A configuration to restore is what ASM echoed, which may hold a field
    the update request does not take: that is said once, never retried.

    Raises:
        ApplicationError: non-retryable ``InvalidTarget``, naming the fields refused.
    """
    try:
        return UpdateMeshRequest(mesh_config=MeshConfig.model_validate(inp.config or {}))
    except ValidationError as exc:
        raise failure(
            f"the configuration to put on mesh {inp.mesh_name} is not one the update call "
            f"takes ({_refused_fields(exc)}); nothing was sent",
            FailureDetails(attempt=activity.info().attempt),
            type=errors.INVALID_TARGET,
            non_retryable=True,
        ) from exc


def _refused_fields(exc: ValidationError) -> str:
    return "; ".join(
        f"meshConfig.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:5]
    )


def _found(mesh: Mesh, attempt: int) -> JudgedMesh:
    spec = mesh.spec
    return JudgedMesh(
        verdict="in_sync",
        uid=mesh.uid,
        phase=mesh.phase,
        mesh_name=mesh.metadata.name,
        cluster_ids=mesh.cluster_ids,
        mesh_version=spec.version if spec is not None else None,
        config=echoed_config(mesh),
        updated_at=mesh.status.update_timestamp,
        attempts=attempt,
    )


def _landed(mesh: Mesh, inp: UpdateMeshActivityInput) -> bool:
    """Whether a PUT of this change reached the mesh: it reads as sent, or it changed since it
    was judged (ASM moves ``status.updateTimestamp`` when it accepts a change)."""
    if reads_as(mesh, inp.config):
        return True
    return mesh.status.update_timestamp != inp.updated_at
