"""What a mesh's canary upgrade takes, for upgrading, finalizing and rolling back alike: each step
of its one upgrade task, driven and polled to its end by ``upgrade_step``.

A mesh is upgraded as pre-check, control plane, data plane; it then runs the new version with
both control planes installed until it is finalized (``finish`` uninstalls the old one, after
which ASM cannot roll back). The task's id lives in the outcome (``UpgradeRef``), where the
finalize and a rollback find it: it is known from nothing else.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from meshfleet.contract import failures as errors
    from meshfleet.contract.convergence import JudgedMesh
    from meshfleet.contract.payloads import (
        CREATE_UPGRADE_TASK,
        STOP_SIGNAL,
        UPGRADE_STEP,
        MeshChangeInput,
    )
    from meshfleet.contract.upgrade import (
        UPGRADE_STEPS,
        UpgradeStepInput,
        UpgradeStepName,
        UpgradeStepResult,
        UpgradeTaskCreated,
    )
    from meshfleet.models import OutcomeKind, TargetOutcome, UpgradeRef
    from meshfleet.upgrades import upgrade_refusal
    from workflows import policies
    from workflows.change import MeshChangeWorkflow
    from workflows.in_place import CALL_ATTEMPT_TIMEOUT


# The task is created by an activity of its own, whose completion holds the task's id the moment
# ASM answers; before, the first step's activity created it and heartbeated the id.
PATCH_CREATE_APART = "upgrade-task-created-by-its-own-activity"


class MeshUpgrade(MeshChangeWorkflow):
    """The steps of a mesh's canary upgrade."""

    def __init__(self) -> None:
        super().__init__()
        self._stop = False

    @workflow.signal(name=STOP_SIGNAL)
    def stop_after_step(self) -> None:
        """The rollout was cancelled: end the running step, start no other."""
        self._stop = True

    def _step_input(
        self, inp: MeshChangeInput, ref: UpgradeRef, step: UpgradeStepName
    ) -> UpgradeStepInput:
        """The input of ``step`` of ``ref``'s task (none yet: the create's), its deadline the
        strategy's whole timeout from now."""
        target = inp.target
        timing = inp.timing
        deadline = workflow.now() + timedelta(seconds=timing.timeout_s)
        return UpgradeStepInput(
            project_id=target.project_id,
            region=target.region,
            mesh_name=target.mesh_name,
            uid=ref.uid,
            rollout_id=inp.rollout_id,
            version=ref.version,
            version_before=ref.version_before,
            step=step,
            task_id=ref.task_id or None,
            first_poll_s=timing.first_poll_s,
            poll_interval_s=timing.poll_interval_s,
            deadline=deadline.isoformat(),
        )

    async def _create_task(self, inp: MeshChangeInput, ref: UpgradeRef) -> str:
        """Create the mesh's upgrade task (its pre-check starts); its id.

        Raises:
            ActivityError: the create failed past its retries, or met 409 (see
                ``create_upgrade_task``).
        """
        timing = inp.timing
        created: UpgradeTaskCreated = await workflow.execute_activity(
            CREATE_UPGRADE_TASK,
            self._step_input(inp, ref, "pre_check"),
            result_type=UpgradeTaskCreated,
            start_to_close_timeout=CALL_ATTEMPT_TIMEOUT,
            heartbeat_timeout=timedelta(seconds=timing.heartbeat_timeout_s),
            schedule_to_close_timeout=timedelta(seconds=timing.timeout_s),
            retry_policy=policies.call_retry(timing),
            summary=f"create the upgrade task of mesh {inp.target.mesh_name} to {ref.version}",
        )
        return created.task_id

    async def _step(
        self, inp: MeshChangeInput, ref: UpgradeRef, step: UpgradeStepName
    ) -> UpgradeStepResult:
        """Run one step to its end; each step has the strategy's whole timeout to itself.

        Raises:
            ActivityError: the step could not be started or followed (see ``upgrade_step``).
        """
        target = inp.target
        timing = inp.timing
        heartbeat_timeout = timedelta(seconds=timing.heartbeat_timeout_s)
        arg = self._step_input(inp, ref, step)
        result: UpgradeStepResult = await workflow.execute_activity(
            UPGRADE_STEP,
            arg,
            result_type=UpgradeStepResult,
            start_to_close_timeout=policies.poll_limit(
                datetime.fromisoformat(arg.deadline), heartbeat_timeout
            ),
            heartbeat_timeout=heartbeat_timeout,
            retry_policy=policies.poll_retry(),
            summary=f"{step} of mesh {target.mesh_name} to {ref.version}",
        )
        self._phase = result.mesh_phase
        return result

    async def _upgrade(
        self, inp: MeshChangeInput, judged: JudgedMesh, drift: list[str]
    ) -> TargetOutcome:
        """Upgrade the judged mesh to the target's version, up to the data plane; the outcome
        is ``upgraded`` (waiting to be finalized), or failed at a step, or ``cancelled`` after
        the step that ran when the rollout was cancelled."""
        target = inp.target
        uid = judged.uid or ""
        before = judged.mesh_version or ""
        refusal = upgrade_refusal(target.mesh_name, before, target.version, judged.phase)
        if refusal is not None:
            return self._outcome(
                inp,
                "failed",
                uid=uid,
                attempts=judged.attempts,
                error_code=refusal.code,
                message=refusal.message,
                drift=drift,
            )
        ref = UpgradeRef(uid=uid, task_id="", version_before=before, version=target.version)
        if workflow.patched(PATCH_CREATE_APART):
            if self._stop:
                return self._outcome(
                    inp,
                    "cancelled",
                    uid=uid,
                    attempts=judged.attempts,
                    message="the rollout was cancelled before the upgrade began: nothing was sent",
                    drift=drift,
                )
            try:
                ref = ref.model_copy(update={"task_id": await self._create_task(inp, ref)})
            except ActivityError as err:
                return self._failed(inp, err, uid=uid).model_copy(update={"drift": drift})
        polls = 0
        for step in UPGRADE_STEPS:
            # Stopped: the step ASM runs now (the pre-check, from the create on) ends first.
            if self._stop and ref.step:
                return self._upgrade_outcome(
                    inp,
                    ref,
                    "cancelled",
                    polls,
                    drift,
                    message=f"the rollout was cancelled: stopped after {ref.step}, upgrade task "
                    f"{ref.task_id} holds mesh {target.mesh_name}; roll it back "
                    "(`meshfleet rollback`) or finish it in the ASM console",
                )
            try:
                result = await self._step(inp, ref, step)
            except ActivityError as err:
                failed = self._failed(inp, err, uid=uid)
                update = {"drift": drift, "upgrade": ref} if ref.task_id else {"drift": drift}
                return failed.model_copy(update=update)
            polls += result.polls
            ref = ref.model_copy(update={"task_id": result.task_id})
            if not result.succeeded:
                return self._upgrade_outcome(
                    inp,
                    ref,
                    "failed",
                    polls,
                    drift,
                    error_code=errors.UPGRADE_STEP_FAILED,
                    message=f"mesh {target.mesh_name}: upgrade step {step} failed: "
                    f"{result.message or 'ASM gave no reason'} (task {ref.task_id}; the mesh "
                    f"is {result.mesh_phase})",
                )
            ref = ref.model_copy(update={"step": step})
        return self._upgrade_outcome(inp, ref, "upgraded", polls, drift)

    def _upgrade_outcome(
        self,
        inp: MeshChangeInput,
        ref: UpgradeRef,
        kind: OutcomeKind,
        polls: int,
        drift: list[str],
        *,
        error_code: str | None = None,
        message: str | None = None,
    ) -> TargetOutcome:
        made = self._outcome(
            inp,
            kind,
            uid=ref.uid,
            attempts=1,
            polls=polls,
            error_code=error_code,
            message=message,
            drift=drift,
        )
        return made.model_copy(update={"upgrade": ref})

    async def _finalize(self, inp: MeshChangeInput, ref: UpgradeRef) -> TargetOutcome:
        """Run the task's last step: the old control plane is uninstalled (``finalized``)."""
        return await self._closing_step(inp, ref, "finish", errors.UPGRADE_STEP_FAILED)

    async def _roll_back(self, inp: MeshChangeInput, ref: UpgradeRef) -> TargetOutcome:
        """Roll the task back: the mesh runs ``version_before`` again (``restored``)."""
        return await self._closing_step(inp, ref, "rollback", errors.UPGRADE_ROLLBACK_FAILED)

    async def _closing_step(
        self,
        inp: MeshChangeInput,
        ref: UpgradeRef,
        step: Literal["finish", "rollback"],
        failure_code: str,
    ) -> TargetOutcome:
        """Run a step that closes the task, forward (``finish``) or back (``rollback``)."""
        name = inp.target.mesh_name
        try:
            result = await self._step(inp, ref, step)
        except ActivityError as err:
            return self._failed(inp, err, uid=ref.uid).model_copy(update={"upgrade": ref})
        if not result.succeeded:
            return self._upgrade_outcome(
                inp,
                ref,
                "failed",
                result.polls,
                [],
                error_code=failure_code,
                message=f"mesh {name}: upgrade step {step} of task {ref.task_id} failed: "
                f"{result.message or 'ASM gave no reason'} (the mesh is {result.mesh_phase})",
            )
        finalized = step == "finish"
        return self._upgrade_outcome(
            inp,
            ref.model_copy(update={"step": step, "finalized": finalized}),
            "finalized" if finalized else "restored",
            result.polls,
            [],
            message=f"mesh {name} runs {result.mesh_version or '?'} after {step}",
        )
