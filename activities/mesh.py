"""``create_mesh`` and ``wait_for_mesh``: the two ASM side effects of one target."""

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
    poll_failed,
    sleep_before_next_poll,
    sleep_until,
)
from activities.ratelimit import Pacer
from meshfleet.adoption import judge
from meshfleet.asm.calls import MeshApi
from meshfleet.asm.errors import (
    AsmConflictError,
    AsmError,
    AsmNotFoundError,
)
from meshfleet.asm.models import MeshPhase, parse_time
from meshfleet.contract import failures as errors
from meshfleet.contract.failures import FailureDetails
from meshfleet.contract.payloads import (
    CREATE_MESH,
    WAIT_FOR_MESH,
    CreateMeshActivityInput,
    CreateMeshResult,
    WaitForMeshInput,
    WaitForMeshResult,
    WaitProgress,
)

log = structlog.get_logger(__name__)


class MeshActivities:
    """Activities bound to one ASM client (one aiohttp session per worker process)."""

    def __init__(self, api: MeshApi, *, creates_per_second: float | None = None) -> None:
        self._api = api
        self._pacer = Pacer(creates_per_second) if creates_per_second else None

    @activity.defn(name=CREATE_MESH)
    async def create_mesh(self, inp: CreateMeshActivityInput) -> CreateMeshResult:
        """POST the mesh; on 409 adopt the existing mesh of that name instead of failing.

        Raises:
            ApplicationError: non-retryable for 400/401/403/404 and for a 409 that is not a
                mesh to adopt (a cluster conflict, the name taken on other clusters, or a mesh
                listed without a uid); retryable otherwise.
        """
        target = inp.target
        attempt = activity.info().attempt
        with structlog.contextvars.bound_contextvars(
            rollout_id=inp.rollout_id,
            project_id=target.project_id,
            region=target.region,
            cluster_id=target.cluster_id,
            mesh_name=target.mesh_name,
            attempt=attempt,
        ):
            return await self._create(inp, attempt)

    async def _create(self, inp: CreateMeshActivityInput, attempt: int) -> CreateMeshResult:
        target = inp.target
        if self._pacer is not None:
            await self._pacer.wait()
        try:
            mesh = await self._api.create_mesh(
                target.project_id, target.region, target.to_request()
            )
        except AsmConflictError as conflict:
            return await self._adopt(inp, conflict, attempt)
        except AsmError as exc:
            raise application_error(exc, attempt=attempt, action="create mesh") from exc
        if not mesh.uid:
            raise failure(
                "create mesh: ASM answered 201 without metadata.uid",
                FailureDetails(attempt=attempt),
                type=errors.TRANSIENT,
            )
        log.info("mesh creation accepted", uid=mesh.uid, phase=mesh.phase)
        return CreateMeshResult(uid=mesh.uid, phase=mesh.phase, adopted=False, attempts=attempt)

    async def _adopt(
        self,
        inp: CreateMeshActivityInput,
        conflict: AsmConflictError,
        attempt: int,
    ) -> CreateMeshResult:
        target = inp.target
        try:
            meshes = await self._api.meshes(target.project_id, target.region)
        except AsmError as exc:
            raise application_error(exc, attempt=attempt, action="find existing mesh") from exc
        judged = judge(target, meshes)
        details = FailureDetails(
            attempt=attempt,
            error_code=conflict.error_code,
            request_id=conflict.request_id,
            status=409,
        )
        answer = f"{conflict.error_msg}; request id {conflict.request_id}"
        existing = judged.mesh
        if judged.verdict == "create" or existing is None:
            # A 409, yet nothing of this project stands in the way: the cluster belongs to a
            # mesh of another project (a list shows only this one's).
            raise failure(
                f"409 {conflict.error_code}: no mesh named {target.mesh_name} exists in project "
                f"{target.project_id}, so cluster {target.cluster_id} already belongs to another "
                f"mesh ({answer})",
                details,
                type=errors.CLUSTER_CONFLICT,
                non_retryable=True,
            )
        if judged.verdict == "cluster_conflict":
            raise failure(
                f"409 {conflict.error_code}: cluster {target.cluster_id} already belongs to "
                f"another mesh, {existing.metadata.name} of project {target.project_id} "
                f"({answer})",
                details,
                type=errors.CLUSTER_CONFLICT,
                non_retryable=True,
            )
        if judged.verdict == "name_conflict":
            raise failure(
                f"409: mesh {target.mesh_name} already exists in project {target.project_id} on "
                f"cluster(s) {', '.join(existing.cluster_ids)}, not on {target.cluster_id}",
                details,
                type=errors.NAME_CONFLICT,
                non_retryable=True,
            )
        if judged.verdict == "without_uid" or not existing.uid:
            raise failure(
                f"409: mesh {target.mesh_name} exists in project {target.project_id}, but the API "
                f"listed it without a uid: it cannot be adopted, since nothing could poll it or "
                f"later delete it by uid ({answer})",
                details,
                type=errors.MESH_WITHOUT_UID,
                non_retryable=True,
            )
        # A 500 may have hidden our own successful POST (docs/asm-api.md, "A 500 that may hide a
        # created mesh"), or the worker died before the 201 came back (the local activity then
        # runs again from attempt 1, after a lost workflow task). Only this target's workflow
        # drives this mesh name, so after such a loss a mesh created since the target started is
        # ours: created, not adopted. On a first try it is not: timestamps have whole seconds,
        # and a rollout right after another one meets that one's meshes within the second it
        # starts.
        created_at = parse_time(existing.metadata.creation_timestamp)
        started_at = parse_time(inp.started_at)
        ours = (
            (attempt > 1 or inp.after_lost_task)
            and created_at is not None
            and started_at is not None
            and created_at >= started_at.replace(microsecond=0)
        )
        log.info(
            "mesh exists; adopting" if not ours else "mesh created by an earlier attempt",
            uid=existing.uid,
            phase=existing.phase,
            after_lost_task=inp.after_lost_task,
            created_at=existing.metadata.creation_timestamp,
            started_at=inp.started_at,
        )
        return CreateMeshResult(
            uid=existing.uid, phase=existing.phase, adopted=not ours, attempts=attempt
        )

    @activity.defn(name=WAIT_FOR_MESH)
    async def wait_for_mesh(self, inp: WaitForMeshInput) -> WaitForMeshResult:
        """Poll the mesh until ``Running``, a ``*Failed`` phase, 404 or the deadline.

        Heartbeats carry the last phase and poll count, so a retry after a worker crash resumes
        without waiting for the first poll again. Transient errors do not end the poll.

        Raises:
            ApplicationError: non-retryable ``MeshFailed``, ``MeshVanished`` or ``MeshTimeout``.
        """
        info = activity.info()
        with structlog.contextvars.bound_contextvars(
            rollout_id=inp.rollout_id,
            project_id=inp.project_id,
            region=inp.region,
            cluster_id=inp.cluster_id,
            mesh_name=inp.mesh_name,
            uid=inp.uid,
            attempt=info.attempt,
        ):
            return await self._wait(inp, info.attempt, info.heartbeat_details)

    async def _wait(
        self, inp: WaitForMeshInput, attempt: int, details: Sequence[Any]
    ) -> WaitForMeshResult:
        progress = WaitProgress.model_validate(details[0]) if details else WaitProgress()
        if progress.polls:
            log.info("resuming poll from heartbeat", polls=progress.polls, phase=progress.phase)
        deadline = parse_time(inp.deadline) or datetime.now(UTC)
        if progress.polls == 0:
            await sleep_until(min(deadline, after(inp.first_poll_s)), progress)
        while True:
            phase, retry_after = await self._poll(inp, attempt, progress)
            progress = WaitProgress(phase=phase or progress.phase, polls=progress.polls + 1)
            activity.heartbeat(progress.model_dump())
            if phase == MeshPhase.RUNNING:
                log.info("mesh running", polls=progress.polls)
                return WaitForMeshResult(phase=phase, polls=progress.polls)
            if phase is not None and phase.endswith("Failed"):
                raise failure(
                    f"mesh {inp.mesh_name} ended in phase {phase}",
                    FailureDetails(attempt=attempt, error_code=phase, phase=phase),
                    type=errors.MESH_FAILED,
                    non_retryable=True,
                )
            now = datetime.now(UTC)
            if now >= deadline:
                raise failure(
                    f"mesh {inp.mesh_name} not Running by its deadline {inp.deadline} "
                    f"(last phase {progress.phase})",
                    FailureDetails(attempt=attempt, error_code="Timeout", phase=progress.phase),
                    type=errors.MESH_TIMEOUT,
                    non_retryable=True,
                )
            await sleep_before_next_poll(deadline, inp.poll_interval_s, retry_after, progress)

    async def _poll(
        self, inp: WaitForMeshInput, attempt: int, progress: WaitProgress
    ) -> tuple[str | None, float | None]:
        """(phase, seconds the server asked to wait) of one show; no phase when it failed."""
        try:
            mesh = await self._api.mesh(inp.project_id, inp.region, inp.uid)
        except AsmNotFoundError as exc:
            raise failure(
                f"mesh {inp.mesh_name} ({inp.uid}) vanished: {exc.describe()}",
                FailureDetails(
                    attempt=attempt,
                    error_code=exc.error_code,
                    request_id=exc.request_id,
                    phase=progress.phase,
                    status=404,
                ),
                type=errors.MESH_VANISHED,
                non_retryable=True,
            ) from exc
        except POLL_SURVIVES as exc:
            return None, poll_failed(exc)
        except AsmError as exc:
            raise application_error(exc, attempt=attempt, action="show mesh") from exc
        return mesh.phase, None
