"""What a rollout does to each target's mesh: the change is data, walked by one engine.

A rollout's engine (waves, window, budgets, gates, pause, cancel, continue-as-new, pages) is the
same whatever happens to a mesh; an action says only which workflow drives one mesh through its
change and which outcomes mean it went well. Every action's workflow is started under the mesh's
own workflow id (``MeshTarget.workflow_id``), so two changes of one mesh never run at once,
whatever started them.

Workers before 0.3.0 ignore a rollout input's ``action`` (they read it as ``create``): a
``MeshRolloutWorkflow`` with any other action may be started only once every worker polling the
task queue is 0.3.0 or later, which the starter checks (``meshfleet.worker_builds``). A rollback
is safe either way: its own workflow type has always deleted, and a target it restores rather
than deletes carries its uid only in ``restore``, which an older worker does not read, so it
refuses that target instead of deleting the mesh.
"""

from __future__ import annotations

from dataclasses import dataclass

from meshfleet.contract.deletion import DELETE_MESH_WORKFLOW
from meshfleet.contract.payloads import (
    CONVERGE_MESH_WORKFLOW,
    CREATE_MESH_WORKFLOW,
    FINALIZE_UPGRADE_WORKFLOW,
    RESTORE_MESH_WORKFLOW,
    ActionKind,
)
from meshfleet.models import ExistingMode, MeshTarget, OutcomeCounts, OutcomeKind


@dataclass(frozen=True)
class Action:
    """One kind of change to a mesh."""

    kind: ActionKind
    workflow: str
    """The workflow type that drives one mesh through the change (input ``MeshChangeInput``,
    result ``TargetOutcome``)."""
    done: tuple[OutcomeKind, ...]
    """The outcomes of a target whose change went well, in the order reports name them."""

    def counts_text(self, counts: OutcomeCounts) -> str:
        """``3 created, 1 adopted, 0 failed, 2 cancelled``: the counts this action reports; an
        outcome that only happens now and then (an adoption while converging, a drifted mesh
        adopted as it stands) is named once it happened."""
        kinds: tuple[OutcomeKind, ...] = (*self.done, "failed", "cancelled")
        parts = [f"{getattr(counts, kind)} {kind.replace('_', ' ')}" for kind in kinds]
        parts += [
            f"{getattr(counts, kind)} {kind}"
            for kind in ("adopted", "drifted", "finalized")
            if kind not in kinds and getattr(counts, kind)
        ]
        return ", ".join(parts)


ACTIONS: dict[ActionKind, Action] = {
    "create": Action("create", CREATE_MESH_WORKFLOW, ("created", "adopted")),
    # Judged first (one list call): created when missing, upgraded when one line older, updated
    # in place when its configuration differs, left alone when in sync; or failed as
    # strategy.existing says.
    "converge": Action(
        "converge", CONVERGE_MESH_WORKFLOW, ("created", "updated", "in_sync", "upgraded")
    ),
    # A mesh deleted by its recorded uid, or kept: another mesh of that name stands there now.
    # A rollback's updated meshes are restored instead (a target with ``restore``).
    "delete": Action("delete", DELETE_MESH_WORKFLOW, ("deleted", "restored", "kept")),
    "restore": Action("restore", RESTORE_MESH_WORKFLOW, ("restored", "kept")),
    # An upgraded mesh's last step, once its rollout proved the version (a target with
    # ``upgrade``): its old control plane uninstalled.
    "finalize": Action("finalize", FINALIZE_UPGRADE_WORKFLOW, ("finalized",)),
}


def action_of(existing: ExistingMode) -> ActionKind:
    """A rollout's action for a manifest whose ``strategy.existing`` is ``existing``: creating
    adopts what exists; converging and requiring a match judge each mesh first."""
    return "create" if existing == "adopt" else "converge"


def target_action(rollout_action: ActionKind, target: MeshTarget) -> Action:
    """The action a target goes through: the rollout's, unless it is a rollback's target of
    an updated or upgraded mesh, which is restored rather than deleted, or an upgraded mesh
    the rollout finalizes."""
    if target.upgrade is not None:
        return ACTIONS["finalize"]
    return ACTIONS["restore" if target.restore is not None else rollout_action]
