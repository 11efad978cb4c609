"""``RestoreMeshWorkflow``: a rollback gives a mesh the rollout updated its old configuration."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from meshfleet.contract.payloads import RESTORE_MESH_WORKFLOW, ActionKind, MeshChangeInput
    from meshfleet.drift import config_changes
    from meshfleet.models import TargetOutcome
    from workflows.in_place import InPlaceChange
    from workflows.upgrade import MeshUpgrade


@workflow.defn(name=RESTORE_MESH_WORKFLOW)
class RestoreMeshWorkflow(InPlaceChange, MeshUpgrade):
    """One mesh a rollout updated (its target's ``restore`` carries the uid): when it still
    reads as the rollout left it, its old configuration goes back (``restored``); when it is
    gone, was re-created, or was changed again since, it is ``kept`` with the reason.

    A mesh the rollout upgraded (``restore.upgrade``) is rolled back through its task to the
    version it ran before, unless the upgrade was finalized: ASM cannot go back once the old
    control plane is uninstalled, so it is ``kept`` with that reason."""

    action: ActionKind = "restore"

    @workflow.run
    async def run(self, inp: MeshChangeInput) -> TargetOutcome:
        """Restore the mesh's configuration; failures become a failed outcome."""
        return await self._run(inp)

    async def _drive(self, inp: MeshChangeInput) -> TargetOutcome:
        target = inp.target
        restore = target.restore
        # The uid is in ``restore``; a rollback that main started before it moved there
        # carries it in the target's own ``uid``.
        uid = (restore.uid or target.uid) if restore is not None else None
        if not uid or restore is None:
            # Only a mesh whose uid and old configuration were recorded may be restored.
            return self._outcome(inp, "failed", uid=uid, error_code="NoRecordedUid", attempts=0)
        upgrade = restore.upgrade
        if upgrade is not None and upgrade.finalized:
            return self._outcome(
                inp,
                "kept",
                uid=uid,
                attempts=0,
                message=f"mesh {target.mesh_name} was upgraded to {upgrade.version} and "
                "finalized: ASM cannot roll an upgrade back once the old control plane is "
                f"uninstalled, so it stays at {upgrade.version}",
            )
        try:
            # The target's configuration is the one the rollout sent: in sync means untouched.
            judged = await self._judge(inp)
        except (ActivityError, ApplicationError) as err:
            return self._failed(inp, err, uid=uid)
        reason = None
        if judged.verdict == "create":
            reason = f"mesh {target.mesh_name} is gone since the rollout"
        elif judged.uid != uid:
            reason = (
                f"mesh {target.mesh_name} was re-created since the rollout: it has uid "
                f"{judged.uid}, not {uid}; left alone"
            )
        elif upgrade is not None:
            # Whatever step the task reached, rolling it back is what frees the mesh.
            return await self._roll_back(inp, upgrade)
        elif judged.verdict == "update" and not config_changes(
            restore.config_before, judged.config
        ):
            reason = (
                f"mesh {target.mesh_name} reads the configuration it had before the rollout: "
                "it never took the rollout's change, so there is nothing to restore"
            )
        elif judged.verdict != "in_sync":
            reason = (
                f"mesh {target.mesh_name} was changed since the rollout updated it "
                f"({'; '.join(judged.changes)}); left as it stands"
            )
        if reason is not None:
            return self._outcome(inp, "kept", uid=uid, attempts=judged.attempts, message=reason)
        return await self._put_config(inp, judged, restore.config_before or {}, "restored", [])
