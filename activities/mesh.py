"""``create_mesh`` and ``wait_for_mesh``: the two ASM side effects of one target."""

from __future__ import annotations

from functools import partial

import structlog
from temporalio import activity

from activities.errors import failure
from activities.meshes import ProjectMeshes, mesh_context
from activities.polling import Seen, ended_in, poll_until
from activities.ratelimit import Pacer
from meshfleet.adoption import Judgement, judge
from meshfleet.asm.calls import MeshApi
from meshfleet.asm.errors import AsmConflictError
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
from meshfleet.drift import drift_of, drift_texts
from meshfleet.models import MeshTarget

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
        # A local activity: it has no heartbeat to send through its calls.
        asm = ProjectMeshes(self._api, target.project_id, target.region, attempt)
        with mesh_context(inp, inp.target, attempt=attempt):
            if self._pacer is not None:
                await self._pacer.wait()
            try:
                mesh = await asm.create(target.to_request())
            except AsmConflictError as conflict:
                return await self._adopt(inp, conflict, asm)
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
        asm: ProjectMeshes[MeshApi],
    ) -> CreateMeshResult:
        target = inp.target
        attempt = asm.attempt
        judged = judge(target, await asm.listed("find existing mesh"))
        existing = judged.mesh
        if judged.verdict != "adopt" or existing is None or not existing.uid:
            type_name, message = _not_adoptable(target, judged, conflict)
            raise failure(
                message,
                FailureDetails(
                    attempt=attempt,
                    error_code=conflict.error_code,
                    request_id=conflict.request_id,
                    status=409,
                ),
                type=type_name,
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
        # Taken as it stands; what differs from the manifest is reported, never changed here.
        drift = [] if ours else drift_texts(drift_of(target, existing))
        return CreateMeshResult(
            uid=existing.uid, phase=existing.phase, adopted=not ours, attempts=attempt, drift=drift
        )

    @activity.defn(name=WAIT_FOR_MESH)
    async def wait_for_mesh(self, inp: WaitForMeshInput) -> WaitForMeshResult:
        """Poll the mesh until ``Running``, a ``*Failed`` phase, 404 or the deadline.

        Heartbeats carry the last phase and poll count, so a retry after a worker crash resumes
        without waiting for the first poll again. Transient errors do not end the poll.

        Raises:
            ApplicationError: non-retryable ``MeshFailed``, ``MeshVanished`` or ``MeshTimeout``.
        """
        attempt = activity.info().attempt
        what = f"mesh {inp.mesh_name}"

        def running(seen: Seen, progress: WaitProgress) -> bool:
            if seen.missing is not None:
                exc = seen.missing
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
                )
            if seen.phase is not None and seen.phase.endswith("Failed"):
                raise ended_in(what, seen.phase, attempt)
            return seen.phase == MeshPhase.RUNNING

        read = partial(self._api.mesh, inp.project_id, inp.region, inp.uid)
        with mesh_context(inp, attempt=attempt):
            done = await poll_until(read, running, what=what, until="Running", timing=inp)
            log.info("mesh running", polls=done.polls)
            return WaitForMeshResult(phase=MeshPhase.RUNNING, polls=done.polls)


def _not_adoptable(
    target: MeshTarget, judged: Judgement, conflict: AsmConflictError
) -> tuple[str, str]:
    """The failure type and message of a 409 that is not the target's mesh to adopt."""
    existing = judged.mesh
    answer = f"{conflict.error_msg}; request id {conflict.request_id}"
    if existing is None:
        # A 409, yet nothing of this project stands in the way: the cluster belongs to a mesh
        # of another project (a list shows only this one's).
        return errors.CLUSTER_CONFLICT, (
            f"409 {conflict.error_code}: no mesh named {target.mesh_name} exists in project "
            f"{target.project_id}, so cluster {target.cluster_id} already belongs to another "
            f"mesh ({answer})"
        )
    if judged.verdict == "cluster_conflict":
        return errors.CLUSTER_CONFLICT, (
            f"409 {conflict.error_code}: cluster {target.cluster_id} already belongs to "
            f"another mesh, {existing.metadata.name} of project {target.project_id} ({answer})"
        )
    if judged.verdict == "name_conflict":
        return errors.NAME_CONFLICT, (
            f"409: mesh {target.mesh_name} already exists in project {target.project_id} on "
            f"cluster(s) {', '.join(existing.cluster_ids)}, not on {target.cluster_id}"
        )
    return errors.MESH_WITHOUT_UID, (
        f"409: mesh {target.mesh_name} exists in project {target.project_id}, but the API "
        f"listed it without a uid: it cannot be adopted, since nothing could poll it or later "
        f"delete it by uid ({answer})"
    )
