"""``upgrade_step``: one step of a mesh's canary upgrade, started and polled to its end.

ASM upgrades a mesh through an upgrade task (docs/asm-api.md, "Upgrade a mesh's version"):
creating it starts the pre-check; a PUT naming the next step starts that; each step's end is
read from the task. The task's id is known only from the create's 201 (no call lists a mesh's
tasks), so it is heartbeated the moment it arrives: a retry after a dead worker goes on with
that task. A retry that has no id on record and meets 409 cannot tell whose task holds the mesh,
and fails rather than create a second one.
"""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from temporalio import activity

from activities.errors import application_error, failure
from activities.meshes import mesh_context
from activities.polling import after, heartbeating, sleep_until
from meshfleet.asm.calls import MeshUpgradeApi
from meshfleet.asm.errors import AsmConflictError, AsmError, AsmNotFoundError
from meshfleet.asm.models import Mesh, parse_time
from meshfleet.asm.upgrade import StepPhase, UpgradeStep, UpgradeTask, UpgradeTaskRequest
from meshfleet.contract import failures as errors
from meshfleet.contract.failures import FailureDetails
from meshfleet.contract.payloads import CREATE_UPGRADE_TASK, UPGRADE_STEP
from meshfleet.contract.upgrade import (
    UpgradeStepInput,
    UpgradeStepName,
    UpgradeStepProgress,
    UpgradeStepResult,
    UpgradeTaskCreated,
)

log = structlog.get_logger(__name__)

# Mesh phases of a step still being applied: the task may say Succeeded a moment before the
# mesh does. Only the steps that hand the mesh back (Running) wait for it; between the others
# the mesh stays Upgrading.
_SETTLING = frozenset({"Upgrading", "RollingBack"})
_HANDS_BACK = frozenset({UpgradeStep.DATA_PLANE, UpgradeStep.FINISH, UpgradeStep.ROLLBACK})
_ENDED = frozenset({StepPhase.SUCCEEDED.value, StepPhase.FAILED.value})
# meshfleet's name of each step -> the name ASM's task takes (assumed, meshfleet.asm.upgrade).
_ASM_STEP: dict[UpgradeStepName, UpgradeStep] = {
    "pre_check": UpgradeStep.PRE_CHECK,
    "control_plane": UpgradeStep.CONTROL_PLANE,
    "data_plane": UpgradeStep.DATA_PLANE,
    "finish": UpgradeStep.FINISH,
    "rollback": UpgradeStep.ROLLBACK,
}


class UpgradeActivities:
    """Activities bound to one ASM client that can upgrade a mesh."""

    def __init__(self, api: MeshUpgradeApi) -> None:
        self._api = api

    @activity.defn(name=CREATE_UPGRADE_TASK)
    async def create_upgrade_task(self, inp: UpgradeStepInput) -> UpgradeTaskCreated:
        """Create the mesh's upgrade task, which starts its pre-check; its id is this
        activity's result, recorded as soon as it returns.

        Raises:
            ApplicationError: non-retryable ``UpgradeTaskUnknown`` when the create meets 409
                (a retry after a lost answer among them); ``MeshVanished`` for a 404; an ASM
                error as its class says otherwise.
        """
        attempt = activity.info().attempt
        with mesh_context(inp, attempt=attempt):
            task_id = await self._create(inp, attempt)
            log.info("upgrade task created", task_id=task_id, version=inp.version)
            return UpgradeTaskCreated(task_id=task_id, attempts=attempt)

    @activity.defn(name=UPGRADE_STEP)
    async def upgrade_step(self, inp: UpgradeStepInput) -> UpgradeStepResult:
        """Start ``inp.step`` (``pre_check`` without a task: create it, as workflows before
        ``create_upgrade_task`` ask) and read the task until the step ends; then the mesh as it
        stands.

        Raises:
            ApplicationError: non-retryable ``UpgradeTaskUnknown`` when a create meets 409 with
                no task on record; ``MeshVanished`` when the task or mesh is gone; ``Timeout``
                at the deadline; an ASM error as its class says otherwise.
        """
        info = activity.info()
        attempt = info.attempt
        details = info.heartbeat_details
        progress = (
            UpgradeStepProgress.model_validate(details[0])
            if details
            else UpgradeStepProgress(task_id=inp.task_id)
        )
        step = _ASM_STEP[inp.step]
        with mesh_context(inp, attempt=attempt):
            if progress.task_id is None:
                task_id = await self._create(inp, attempt)
                progress = UpgradeStepProgress(task_id=task_id, moved=True)
                # Durable before anything else can go wrong: a retry reads it back.
                activity.heartbeat(progress.model_dump())
                log.info("upgrade task created", task_id=task_id, version=inp.version)
            elif not progress.moved:
                await self._move(inp, progress.task_id, step, attempt)
                progress = progress.model_copy(update={"moved": True})
                activity.heartbeat(progress.model_dump())
            return await self._poll(inp, progress, step, attempt)

    async def _create(self, inp: UpgradeStepInput, attempt: int) -> str:
        request = UpgradeTaskRequest.for_step(
            inp.uid, inp.mesh_name, inp.version, UpgradeStep.PRE_CHECK
        )
        try:
            task = await heartbeating(self._api.create_upgrade(inp.project_id, inp.region, request))
        except AsmConflictError as exc:
            again = " (an earlier attempt's answer was lost)" if attempt > 1 else ""
            raise failure(
                f"an upgrade task of unknown id holds mesh {inp.mesh_name}{again}: finish it or "
                "roll it back in the ASM console, then run the rollout again; meshfleet never "
                f"creates a second task ({exc.describe()})",
                # The target's code is meshfleet's; ASM's own code is in the message.
                FailureDetails(
                    attempt=attempt,
                    error_code=errors.UPGRADE_TASK_UNKNOWN,
                    request_id=exc.request_id,
                    status=409,
                ),
                type=errors.UPGRADE_TASK_UNKNOWN,
                non_retryable=True,
            ) from exc
        except AsmNotFoundError as exc:
            raise _vanished(inp, attempt, exc) from exc
        except AsmError as exc:
            raise application_error(exc, attempt=attempt, action="create upgrade task") from exc
        if not task.metadata.uid:
            raise failure(
                f"ASM created an upgrade task for mesh {inp.mesh_name} without an id: nothing "
                "can follow it; finish it or roll it back in the ASM console",
                FailureDetails(attempt=attempt),
                type=errors.UPGRADE_TASK_UNKNOWN,
                non_retryable=True,
            )
        return task.metadata.uid

    async def _move(
        self, inp: UpgradeStepInput, task_id: str, step: UpgradeStep, attempt: int
    ) -> None:
        """PUT the step, unless an earlier attempt's PUT already started it."""
        try:
            task = await heartbeating(self._api.upgrade_task(inp.project_id, inp.region, task_id))
            # A rollback that ASM ended Failed may be asked again; any other step the task is at
            # was started by an earlier attempt.
            again = step == UpgradeStep.ROLLBACK and task.status.phase == StepPhase.FAILED
            if task.step == step and not again:
                log.info("an earlier attempt started the step; not sent again", step=step.value)
                return
            request = UpgradeTaskRequest.for_step(inp.uid, inp.mesh_name, inp.version, step)
            await heartbeating(self._api.move_upgrade(inp.project_id, inp.region, task_id, request))
        except AsmConflictError as exc:
            raise failure(
                f"upgrade task {task_id} of mesh {inp.mesh_name} cannot start {inp.step} now: "
                f"{exc.describe()}",
                FailureDetails(attempt=attempt, error_code=errors.UPGRADE_STEP_FAILED, status=409),
                type=errors.UPGRADE_STEP_FAILED,
                non_retryable=True,
            ) from exc
        except AsmNotFoundError as exc:
            raise _vanished(inp, attempt, exc) from exc
        except AsmError as exc:
            raise application_error(exc, attempt=attempt, action=f"start {inp.step}") from exc
        log.info("upgrade step started", step=step.value, task_id=task_id)

    async def _poll(
        self, inp: UpgradeStepInput, progress: UpgradeStepProgress, step: UpgradeStep, attempt: int
    ) -> UpgradeStepResult:
        task_id = progress.task_id
        assert task_id is not None
        end = parse_time(inp.deadline) or datetime.now(UTC)
        if progress.polls == 0:
            await sleep_until(min(end, after(inp.first_poll_s)), progress)
        while True:
            ended = await self._read(inp, task_id, step, attempt)
            progress = progress.model_copy(
                update={
                    "polls": progress.polls + 1,
                    "phase": ended.mesh_phase if ended else progress.phase,
                }
            )
            activity.heartbeat(progress.model_dump())
            if ended is not None:
                log.info(
                    "upgrade step ended",
                    step=step.value,
                    succeeded=ended.succeeded,
                    mesh_phase=ended.mesh_phase,
                    polls=progress.polls,
                )
                return ended.model_copy(update={"polls": progress.polls, "attempts": attempt})
            if datetime.now(UTC) >= end:
                raise failure(
                    f"mesh {inp.mesh_name}: upgrade step {inp.step} not ended by its deadline "
                    f"{inp.deadline} (task {task_id}; ASM goes on with it: roll it back, or "
                    "finish it in the ASM console)",
                    FailureDetails(attempt=attempt, error_code="Timeout", phase=progress.phase),
                    type=errors.MESH_TIMEOUT,
                    non_retryable=True,
                )
            await sleep_until(min(end, after(inp.poll_interval_s)), progress)

    async def _read(
        self, inp: UpgradeStepInput, task_id: str, step: UpgradeStep, attempt: int
    ) -> UpgradeStepResult | None:
        """The step's end, once the task says it ended and the mesh no longer moves; None until
        then, and for a read that failed for a moment."""
        try:
            task = await self._api.upgrade_task(inp.project_id, inp.region, task_id)
            if task.step != step or task.status.phase not in _ENDED:
                return None
            mesh = await self._api.mesh(inp.project_id, inp.region, inp.uid)
        except AsmNotFoundError as exc:
            raise _vanished(inp, attempt, exc) from exc
        except AsmError as exc:
            if not exc.transient:
                raise application_error(exc, attempt=attempt, action="show upgrade") from exc
            log.warning("upgrade poll failed; will poll again", error=str(exc))
            return None
        settling = step in _HANDS_BACK and mesh.phase in _SETTLING
        if task.status.phase == StepPhase.SUCCEEDED and settling:
            return None
        return _result(task, task_id, inp.step, mesh)


def _result(
    task: UpgradeTask, task_id: str, step: UpgradeStepName, mesh: Mesh
) -> UpgradeStepResult:
    spec = mesh.spec
    return UpgradeStepResult(
        task_id=task_id,
        step=step,
        succeeded=task.status.phase == StepPhase.SUCCEEDED,
        message=task.status.message or None,
        mesh_phase=mesh.phase,
        mesh_version=spec.version if spec is not None else None,
    )


def _vanished(inp: UpgradeStepInput, attempt: int, exc: AsmNotFoundError) -> Exception:
    return failure(
        f"mesh {inp.mesh_name} ({inp.uid}) or its upgrade task vanished during the upgrade: "
        f"{exc.describe()}",
        FailureDetails(attempt=attempt, status=404),
        type=errors.MESH_VANISHED,
        non_retryable=True,
    )
