"""What a rollout does to each target's mesh: the change is data, walked by one engine.

A rollout's engine (waves, window, budgets, gates, pause, cancel, continue-as-new, pages) is the
same whatever happens to a mesh; an action says only which workflow drives one mesh through its
change and which outcomes mean it went well. Every action's workflow is started under the mesh's
own workflow id (``MeshTarget.workflow_id``), so two changes of one mesh never run at once,
whatever started them.

Workers before 0.3.0 ignore a rollout input's ``action`` (they read it as ``create``): a
``MeshRolloutWorkflow`` with any other action may be started only once every worker polling the
task queue is 0.3.0 or later. A rollback is safe either way: its own workflow type has always
deleted.
"""

from __future__ import annotations

from dataclasses import dataclass

from meshfleet.contract.deletion import DELETE_MESH_WORKFLOW
from meshfleet.contract.payloads import CREATE_MESH_WORKFLOW, ActionKind
from meshfleet.models import OutcomeCounts, OutcomeKind


@dataclass(frozen=True)
class Action:
    """One kind of change to a mesh."""

    kind: ActionKind
    workflow: str
    """The workflow type that drives one mesh through the change (input ``MeshChangeInput``,
    result ``TargetOutcome``)."""
    done: tuple[OutcomeKind, OutcomeKind]
    """The outcomes of a target whose change went well, in the order reports name them."""

    def counts_text(self, counts: OutcomeCounts) -> str:
        """``3 created, 1 adopted, 0 failed, 2 cancelled``: the counts this action reports."""
        kinds: tuple[OutcomeKind, ...] = (*self.done, "failed", "cancelled")
        return ", ".join(f"{getattr(counts, kind)} {kind}" for kind in kinds)


ACTIONS: dict[ActionKind, Action] = {
    "create": Action("create", CREATE_MESH_WORKFLOW, ("created", "adopted")),
    # A mesh deleted by its recorded uid, or kept: another mesh of that name stands there now.
    "delete": Action("delete", DELETE_MESH_WORKFLOW, ("deleted", "kept")),
}
