"""What a rollout created, read back from Temporal, and the rollback that deletes it.

**Where the records live.** Every target's outcome (created, adopted, failed, with the mesh's
uid) is the result of its ``CreateMeshWorkflow`` (or, for a failed target, the detail of the
failure it ended with), which the rollout received: a child's completion or failure in the
rollout's own history, or an ``await_target`` result after continue-as-new.
So the rollout's histories (every run) are the record, kept by Temporal for the namespace's
retention after the rollout closed. Past that the rollout is gone from Temporal, and a rollback
refuses with that reason: it never deletes by name or by guess.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from temporalio.api.enums.v1 import EventType
from temporalio.api.failure.v1 import Failure
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError, WorkflowHistory
from temporalio.service import RPCError, RPCStatusCode

from meshfleet.asm.calls import MeshApi
from meshfleet.asm.models import Mesh
from meshfleet.contract.deletion import (
    ROLLBACK_WORKFLOW,
    RollbackInput,
    rollback_page_workflow_id,
    rollback_workflow_id,
)
from meshfleet.contract.failures import carried
from meshfleet.contract.payloads import (
    AWAIT_TARGET,
    PAGE_SIZE,
    AwaitTargetInput,
    RolloutInput,
    rollout_workflow_id,
)
from meshfleet.drift import drift_of, reads_as
from meshfleet.manifest.schedule import count_of, schedule_of
from meshfleet.models import MeshTarget, Restore, RolloutStrategy, TargetOutcome
from meshfleet.rollout_identity import ROLLBACK_RESTARTABLE, stored_targets
from meshfleet.rollouts import (
    StartedRollout,
    launch,
    search_attributes_registered,
    walk_input,
)


class RollbackRefusedError(Exception):
    """The rollback cannot be started or planned; the message says why and what to do."""


@dataclass(frozen=True)
class RecordedTarget:
    """One target of the rollout: where it stood in the walk, and what became of it."""

    index: int
    wave: int
    """The rollout's wave it belonged to, 0-based in the rollout's order of waves."""
    target: MeshTarget
    outcome: TargetOutcome | None
    """None: the rollout never started it (halted or cancelled before)."""

    @property
    def created(self) -> bool:
        """The rollout created this mesh and recorded its uid: the one kind a rollback deletes."""
        return (
            self.outcome is not None
            and self.outcome.outcome == "created"
            and bool(self.outcome.uid)
        )

    @property
    def updated(self) -> bool:
        """The rollout updated this mesh in place (or sent it an update, and the target failed
        after) and recorded its uid and the configuration it replaced: a rollback puts that
        configuration back, unless the mesh never took the change."""
        return (
            self.outcome is not None
            and self.outcome.outcome in ("updated", "failed")
            and bool(self.outcome.uid)
            and self.outcome.config_before is not None
        )

    @property
    def upgraded(self) -> bool:
        """The rollout created an upgrade task for this mesh and recorded it: a rollback rolls
        the task back, or keeps the mesh with why once the upgrade was finalized."""
        return (
            self.outcome is not None
            and self.outcome.upgrade is not None
            and bool(self.outcome.upgrade.task_id)
        )

    @property
    def undone(self) -> bool:
        """A rollback undoes what the rollout did to this mesh: deletes it, restores its
        configuration, or rolls its upgrade back."""
        return self.created or self.updated or self.upgraded

    @property
    def left_alone_because(self) -> str:
        """Why a rollback never touches this target (for those it does not undo)."""
        if self.outcome is None:
            return "not_started"
        kind = self.outcome.outcome
        if kind in ("created", "updated"):
            return f"{kind}_without_uid"
        return kind

    def rollback_target(self) -> MeshTarget:
        """The target as the rollback takes it: with the recorded uid, and for an updated mesh
        the configuration to put back."""
        assert self.outcome is not None
        if self.upgraded:
            upgrade = self.outcome.upgrade
            restore = Restore(uid=upgrade.uid if upgrade else self.outcome.uid, upgrade=upgrade)
            return self.target.model_copy(update={"restore": restore})
        if self.updated:
            restore = Restore(uid=self.outcome.uid, config_before=self.outcome.config_before)
            return self.target.model_copy(update={"restore": restore})
        return self.target.model_copy(update={"uid": self.outcome.uid})


@dataclass(frozen=True)
class RolloutRecords:
    """A closed rollout's targets and outcomes, as its histories hold them."""

    rollout_id: str
    strategy: RolloutStrategy
    targets: list[RecordedTarget]
    runs: int

    def created(self) -> list[RecordedTarget]:
        """The meshes to delete, in the rollback's order: the last wave first, the canary last."""
        return [t for t in self.undone() if t.created]

    def undone(self) -> list[RecordedTarget]:
        """The meshes to delete or restore, in the rollback's order: the last wave first, the
        canary last."""
        changed = [t for t in self.targets if t.undone]
        return sorted(changed, key=lambda t: (-t.wave, t.index))

    def not_rolled_back(self) -> dict[str, int]:
        """The other targets, counted by why they are left alone."""
        return dict(Counter(t.left_alone_because for t in self.targets if not t.undone))


async def _retention(client: Client) -> str:
    try:
        resp = await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=client.namespace)
        )
    except RPCError:
        return "the namespace's retention period"
    ttl = resp.config.workflow_execution_retention_ttl.ToTimedelta()
    return f"the namespace's retention period ({_days(ttl)})"


def _days(ttl: timedelta) -> str:
    days = ttl.total_seconds() / 86400
    return f"{days:g} day{'s' if days != 1 else ''}"


async def _histories(client: Client, workflow_id: str) -> list[WorkflowHistory]:
    """Every run's history, oldest first, following continue-as-new back from the latest."""
    histories: list[WorkflowHistory] = []
    run_id: str | None = None
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        histories.append(history)
        started = history.events[0].workflow_execution_started_event_attributes
        if not started.continued_execution_run_id:
            return histories[::-1]
        run_id = started.continued_execution_run_id


def _decode(client: Client, payloads: Sequence[Any], kind: type[Any]) -> Any:
    return client.data_converter.payload_converter.from_payloads(list(payloads), [kind])[0]


async def _child_result(client: Client, workflow_id: str, run_id: str) -> TargetOutcome | None:
    """The outcome of a child whose completion no run of the rollout saw (it was abandoned
    when the rollout was terminated, say): from the child's own run."""
    handle = client.get_workflow_handle(workflow_id, run_id=run_id, result_type=TargetOutcome)
    desc = await handle.describe()
    if desc.status == WorkflowExecutionStatus.RUNNING:
        raise RollbackRefusedError(
            f"the workflow of target {workflow_id} still runs: wait until it ends (or terminate "
            "it), then roll back"
        )
    if desc.status == WorkflowExecutionStatus.FAILED:
        # A failed target's workflow ends Failed with its outcome attached.
        try:
            await handle.result()
        except WorkflowFailureError as err:
            return carried(err.cause, TargetOutcome)
    if desc.status != WorkflowExecutionStatus.COMPLETED:
        return None  # terminated or timed out: it reported no mesh of its own
    result: TargetOutcome = await handle.result()
    return result


def _failed_child(client: Client, failure: Failure) -> TargetOutcome | None:
    """The outcome a child that ended Failed carries (None: it failed without one)."""
    error = client.data_converter.failure_converter.from_failure(
        failure, client.data_converter.payload_converter
    )
    return carried(error, TargetOutcome)


async def _outcomes(client: Client, histories: list[WorkflowHistory]) -> dict[str, TargetOutcome]:
    outcomes: dict[str, TargetOutcome] = {}
    # The last run started under each workflow id, and the runs whose end the rollout saw: a
    # mesh's id may hold several (a converge, then the finalize of its upgrade).
    started: dict[str, str] = {}
    ended: set[str] = set()
    for history in histories:
        scheduled: dict[int, str] = {}
        awaited: dict[int, str | None] = {}
        for event in history.events:
            kind = event.event_type
            if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                attrs = event.activity_task_scheduled_event_attributes
                scheduled[event.event_id] = attrs.activity_type.name
                if attrs.activity_type.name == AWAIT_TARGET:
                    waited = _decode(client, attrs.input.payloads, AwaitTargetInput)
                    awaited[event.event_id] = waited.run_id
            elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                done = event.activity_task_completed_event_attributes
                if scheduled.get(done.scheduled_event_id) == AWAIT_TARGET:
                    outcome = _decode(client, done.result.payloads, TargetOutcome)
                    outcomes[outcome.workflow_id] = outcome
                    ended.add(awaited.get(done.scheduled_event_id) or "")
            elif kind == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
                execution = event.child_workflow_execution_started_event_attributes
                started[execution.workflow_execution.workflow_id] = (
                    execution.workflow_execution.run_id
                )
            elif kind == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED:
                child = event.child_workflow_execution_completed_event_attributes
                outcome = _decode(client, child.result.payloads, TargetOutcome)
                outcomes[child.workflow_execution.workflow_id] = outcome
                ended.add(child.workflow_execution.run_id)
            elif kind == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED:
                failed = event.child_workflow_execution_failed_event_attributes
                ended.add(failed.workflow_execution.run_id)
                carried_outcome = _failed_child(client, failed.failure)
                if carried_outcome is not None:
                    outcomes[failed.workflow_execution.workflow_id] = carried_outcome
    for workflow_id, run_id in started.items():
        # Its last run ended unseen (abandoned by a terminated rollout): that run's outcome,
        # not an earlier run's, says where the mesh stands.
        if workflow_id not in outcomes or run_id not in ended:
            found = await _child_result(client, workflow_id, run_id)
            if found is not None:
                outcomes[workflow_id] = found
    return outcomes


async def read_records(client: Client, rollout_id: str) -> RolloutRecords:
    """The closed rollout's targets and outcomes, from its histories.

    Raises:
        RollbackRefusedError: no such rollout (never started, or past the namespace's retention), or
            it still runs (cancel it first), or a target's workflow still runs.
    """
    workflow_id = rollout_workflow_id(rollout_id)
    try:
        desc = await client.get_workflow_handle(workflow_id).describe()
        if desc.status == WorkflowExecutionStatus.RUNNING:
            raise RollbackRefusedError(
                f"rollout {rollout_id!r} is still running: cancel it first "
                f"(`meshfleet cancel {rollout_id}`), then roll it back"
            )
        histories = await _histories(client, workflow_id)
        first = histories[0].events[0].workflow_execution_started_event_attributes
        inp: RolloutInput = _decode(client, first.input.payloads, RolloutInput)
        outcomes = await _outcomes(client, histories)
        targets = await stored_targets(client, inp)
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        raise RollbackRefusedError(
            f"no record of rollout {rollout_id!r} in namespace {client.namespace!r} "
            f"({exc.message}): Temporal keeps a closed rollout's records (its history, which "
            f"holds every target's outcome and mesh uid) for {await _retention(client)}. "
            "Without them nothing can tell which meshes the rollout created, so nothing is "
            "deleted"
        ) from exc
    waves = schedule_of(inp.strategy, targets).waves
    wave_of = [0] * len(targets)
    for number, wave in enumerate(waves):
        for index in range(wave.start, wave.end):
            wave_of[index] = number
    recorded = [
        RecordedTarget(i, wave_of[i], t, outcomes.get(t.workflow_id)) for i, t in enumerate(targets)
    ]
    return RolloutRecords(rollout_id, inp.strategy, recorded, len(histories))


def rollback_strategy(records: RolloutRecords) -> RolloutStrategy:
    """The rollout's window, budget and timings, its waves reversed over the meshes it created
    or updated."""
    sizes = Counter(t.wave for t in records.targets if t.undone)
    ends: list[int | str] = []
    total = 0
    for wave in sorted(sizes, reverse=True):
        total += sizes[wave]
        ends.append(total)
    if ends:
        ends[-1] = "100%"
    return records.strategy.model_copy(
        update={
            "waves": ends or ["100%"],
            "soak_s": 0.0,
            "verify": None,
            "approve_after": [],
            "regions": None,
        }
    )


def rollback_input(
    records: RolloutRecords,
    *,
    page_size: int = PAGE_SIZE,
    use_search_attributes: bool = True,
    max_starts_per_run: int | None = None,
) -> tuple[list[MeshTarget], RollbackInput]:
    """The meshes to delete or restore (each target carrying its uid, and what to restore) in
    order, and the workflow's input."""
    targets = [t.rollback_target() for t in records.undone()]
    inp = walk_input(
        RollbackInput,
        records.rollout_id,
        rollback_strategy(records),
        targets,
        page_size=page_size,
        use_search_attributes=use_search_attributes,
        max_starts_per_run=max_starts_per_run,
        not_rolled_back=records.not_rolled_back(),
    )
    return targets, inp


async def start_rollback(
    client: Client,
    records: RolloutRecords,
    *,
    task_queue: str,
    use_search_attributes: bool | None = None,
    max_starts_per_run: int | None = None,
    page_size: int = PAGE_SIZE,
) -> StartedRollout:
    """Start the rollback of a closed rollout, or attach to the one already started.

    A rollback that completed is not started again (its report stands: it deleted what there
    was to delete); one that failed, was cancelled or terminated may be started anew, and then
    deletes only what is still there.
    """
    if use_search_attributes is None:
        use_search_attributes = await search_attributes_registered(client)
    workflow_id = rollback_workflow_id(records.rollout_id)
    targets, inp = rollback_input(
        records,
        page_size=page_size,
        use_search_attributes=use_search_attributes,
        max_starts_per_run=max_starts_per_run,
    )
    return await launch(
        client,
        ROLLBACK_WORKFLOW,
        inp,
        targets,
        workflow_id,
        task_queue=task_queue,
        page_id=rollback_page_workflow_id,
        summary=(
            f"Rollback of rollout {records.rollout_id}: "
            f"{count_of(len(records.created()), 'mesh')} it created to delete, "
            f"{len(targets) - len(records.created())} it updated to restore"
        ),
        details=f"left alone: {records.not_rolled_back() or 'nothing'}",
        restartable=ROLLBACK_RESTARTABLE,
    )


PlanAction = Literal["delete", "restore", "roll_back", "gone", "keep", "leave"]
"""delete: created by the rollout and still there; restore: updated by the rollout and still as
it left it, so its old configuration goes back; gone: deleted already; keep: created by the
rollout but re-created since, or updated by it but changed again since (the rollback's
``kept``, for the same reasons); leave: the rollout neither created nor updated it, so no
rollback ever touches it (``not_rolled_back``)."""


@dataclass(frozen=True)
class PlannedDeletion:
    """What a rollback would do to one target of the rollout, and why."""

    target: MeshTarget
    uid: str | None
    action: PlanAction
    reason: str


_LEFT_ALONE = {
    "adopted": "adopted: it existed before the rollout, which never deletes it",
    "failed": "failed: the rollout did not create it",
    "cancelled": "cancelled: the rollout never started it",
    "not_started": "not started: the rollout never touched it",
    "created_without_uid": "created, but no uid was recorded: it is never deleted by name",
    "updated_without_uid": "updated, but its uid or old configuration was not recorded",
    "in_sync": "in sync: the rollout sent it nothing",
}


async def plan_rollback(api: MeshApi, records: RolloutRecords) -> list[PlannedDeletion]:
    """Every target of the rollout with what a rollback would do, from one list call per
    project and region of the meshes it created. Changes nothing.

    Raises:
        AsmError: a list call failed.
    """
    places = sorted({(t.target.project_id, t.target.region) for t in records.undone()})
    listed: dict[tuple[str, str], list[Mesh]] = {}
    for place in places:
        listed[place] = await api.meshes(*place)
    planned: list[PlannedDeletion] = []
    for t in records.undone():
        assert t.outcome is not None and t.outcome.uid is not None
        uid = t.outcome.uid
        meshes = listed[(t.target.project_id, t.target.region)]
        if t.upgraded:
            planned.append(_planned_roll_back(t, meshes))
            continue
        if t.updated:
            planned.append(_planned_restore(t.target, uid, t.outcome.config_before, meshes))
            continue
        if any(m.uid == uid for m in meshes):
            planned.append(
                PlannedDeletion(t.target, uid, "delete", f"created by the rollout ({uid})")
            )
            continue
        again = next((m for m in meshes if m.metadata.name == t.target.mesh_name), None)
        if again is not None:
            reason = f"re-created since the rollout: it has uid {again.uid}, not {uid}"
            planned.append(PlannedDeletion(t.target, uid, "keep", reason))
        else:
            planned.append(PlannedDeletion(t.target, uid, "gone", "deleted already"))
    for t in records.targets:
        if not t.undone:
            recorded = t.outcome.uid if t.outcome is not None else None
            planned.append(
                PlannedDeletion(
                    t.target,
                    recorded,
                    "leave",
                    _LEFT_ALONE.get(t.left_alone_because, t.left_alone_because),
                )
            )
    return planned


def _planned_roll_back(t: RecordedTarget, meshes: Sequence[Mesh]) -> PlannedDeletion:
    """What a rollback would do to a mesh the rollout upgraded, as ``RestoreMeshWorkflow``
    decides it: rolled back through its task until the upgrade was finalized, else kept."""
    assert t.outcome is not None and t.outcome.upgrade is not None
    upgrade = t.outcome.upgrade
    uid = upgrade.uid
    if upgrade.finalized:
        reason = (
            f"upgraded to {upgrade.version} and finalized: ASM cannot roll an upgrade back once "
            "the old control plane is uninstalled"
        )
        return PlannedDeletion(t.target, uid, "keep", reason)
    mesh = next((m for m in meshes if m.uid == uid), None)
    if mesh is None:
        again = next((m for m in meshes if m.metadata.name == t.target.mesh_name), None)
        if again is not None:
            reason = f"re-created since the rollout: it has uid {again.uid}, not {uid}"
            return PlannedDeletion(t.target, uid, "keep", reason)
        return PlannedDeletion(t.target, uid, "gone", "deleted since the rollout")
    reason = (
        f"upgrade task {upgrade.task_id} ({upgrade.version_before} -> {upgrade.version}, "
        f"{t.outcome.outcome} {upgrade.reached}) is not finalized: rolled back to "
        f"{upgrade.version_before}"
    )
    return PlannedDeletion(t.target, uid, "roll_back", reason)


def _planned_restore(
    target: MeshTarget, uid: str, before: dict[str, Any] | None, meshes: Sequence[Mesh]
) -> PlannedDeletion:
    """What a rollback would do to a mesh the rollout updated, judged as ``RestoreMeshWorkflow``
    judges it: restored while it reads as the rollout left it, else kept."""
    mesh = next((m for m in meshes if m.uid == uid), None)
    if mesh is None:
        again = next((m for m in meshes if m.metadata.name == target.mesh_name), None)
        if again is not None:
            reason = f"re-created since the rollout: it has uid {again.uid}, not {uid}"
            return PlannedDeletion(target, uid, "keep", reason)
        return PlannedDeletion(target, uid, "gone", "deleted since the rollout")
    changed = drift_of(target, mesh)
    if changed and reads_as(mesh, before):
        reason = "never took the rollout's change: it reads its old configuration already"
        return PlannedDeletion(target, uid, "keep", reason)
    if changed:
        reason = "changed since the rollout updated it: " + "; ".join(c.text() for c in changed)
        return PlannedDeletion(target, uid, "keep", reason)
    return PlannedDeletion(
        target, uid, "restore", "updated by the rollout: its old configuration goes back"
    )
