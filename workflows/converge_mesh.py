"""``ConvergeMeshWorkflow``: bring one target's mesh to the manifest, judged when it runs."""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from meshfleet.contract import failures as errors
    from meshfleet.contract.convergence import JudgedMesh
    from meshfleet.contract.payloads import (
        CONVERGE_MESH_WORKFLOW,
        ActionKind,
        MeshChangeInput,
    )
    from meshfleet.drift import wanted_config
    from meshfleet.models import TargetOutcome
    from meshfleet.upgrades import downgrade_refusal
    from workflows.create_mesh import CreateMeshWorkflow
    from workflows.in_place import InPlaceChange
    from workflows.upgrade import MeshUpgrade

# A mesh at an older version is upgraded through ASM's canary upgrade; before, the target failed
# UpgradeNotAvailable with nothing sent, as histories of that time replay.
PATCH_UPGRADE = "canary-upgrade-of-an-older-mesh"

# The create path's failure types, for the same meshes in the way a 409 would name.
_IN_THE_WAY = {
    "name_conflict": errors.NAME_CONFLICT,
    "cluster_conflict": errors.CLUSTER_CONFLICT,
    "without_uid": errors.MESH_WITHOUT_UID,
}


@workflow.defn(name=CONVERGE_MESH_WORKFLOW)
class ConvergeMeshWorkflow(InPlaceChange, MeshUpgrade, CreateMeshWorkflow):
    """One mesh: judged first, then created when missing, upgraded when its version is one line
    older, updated in place when its configuration differs (``existing: converge``), left alone
    when in sync; a mesh that differs under ``existing: require_match``, a downgrade, a version
    no single upgrade reaches or a mesh in the way fails the target with a code naming why.
    Returns the ``TargetOutcome``, or ends Failed carrying it.

    An upgraded mesh ends ``upgraded``: it runs the new version with the old control plane still
    installed, until the rollout finalizes it (``FinalizeUpgradeWorkflow``). Its other fields,
    if they differ too, stay as drift: no other change is made to a mesh during an upgrade."""

    action: ActionKind = "converge"

    @workflow.run
    async def run(self, inp: MeshChangeInput) -> TargetOutcome:
        """Converge the mesh; failures become a failed outcome."""
        return await self._run(inp)

    async def _drive(self, inp: MeshChangeInput) -> TargetOutcome:
        try:
            judged = await self._judge(inp)
        except (ActivityError, ApplicationError) as err:
            return self._failed(inp, err)
        if judged.verdict != "create":
            return await self._existing(inp, judged)
        # Nothing stands there: as a creation.
        created = await CreateMeshWorkflow._drive(self, inp)
        if created.outcome != "adopted":
            return created
        # A mesh of this name arrived between the list and the POST (its 409 adopted it): it
        # is judged as any mesh that exists, so it too is converged or required to match.
        try:
            judged = await self._judge(inp)
        except (ActivityError, ApplicationError) as err:
            return self._failed(inp, err, uid=created.uid)
        return await self._existing(inp, judged)

    async def _in_sync(self, inp: MeshChangeInput, judged: JudgedMesh) -> TargetOutcome:
        """A mesh that reads as the manifest wants is a success only once it is ``Running``:
        one still being created is waited for, one that ended failed fails the target."""
        uid = judged.uid or ""
        if judged.phase == "Running":
            return self._outcome(inp, "in_sync", uid=uid, attempts=judged.attempts)
        try:
            waited = await self._wait_running(inp, uid, first_poll_s=0.0)
        except ActivityError as err:
            return self._failed(inp, err, uid=uid, attempts=judged.attempts)
        self._phase = waited.phase
        return self._outcome(inp, "in_sync", uid=uid, attempts=judged.attempts, polls=waited.polls)

    async def _existing(self, inp: MeshChangeInput, judged: JudgedMesh) -> TargetOutcome:
        target = inp.target
        verdict = judged.verdict
        uid = judged.uid
        if verdict in _IN_THE_WAY:
            return self._refused(inp, judged, _IN_THE_WAY[verdict], _in_the_way(inp, judged))
        if verdict == "in_sync":
            return await self._in_sync(inp, judged)
        if inp.existing == "adopt":
            return self._outcome(
                inp, "adopted", uid=uid, attempts=judged.attempts, drift=judged.changes
            )
        # The message names the first fields; the outcome's drift lists them all.
        fields = "; ".join(judged.changes[:3]) + (
            f"; and {len(judged.changes) - 3} more" if len(judged.changes) > 3 else ""
        )
        if verdict == "downgrade":
            refusal = downgrade_refusal(target.mesh_name, judged.mesh_version or "", target.version)
            return self._refused(inp, judged, refusal.code, refusal.message)
        if inp.existing == "require_match":
            return self._refused(
                inp,
                judged,
                errors.MESH_DRIFTED,
                f"mesh {target.mesh_name} differs from the manifest: {fields}",
            )
        if verdict == "upgrade":
            if workflow.patched(PATCH_UPGRADE):
                return await self._upgrade(inp, judged, judged.changes)
            return self._refused(
                inp,
                judged,
                errors.UPGRADE_NOT_AVAILABLE,
                f"mesh {target.mesh_name} runs {judged.mesh_version}, the manifest wants "
                f"{target.version}: this release does not upgrade a mesh's version (nothing "
                "was sent)",
            )
        return await self._put_config(inp, judged, wanted_config(target), "updated", judged.changes)

    def _refused(
        self, inp: MeshChangeInput, judged: JudgedMesh, code: str, message: str
    ) -> TargetOutcome:
        return self._outcome(
            inp,
            "failed",
            uid=judged.uid,
            attempts=judged.attempts,
            error_code=code,
            message=message,
            drift=judged.changes,
        )


def _in_the_way(inp: MeshChangeInput, judged: JudgedMesh) -> str:
    target = inp.target
    if judged.verdict == "name_conflict":
        return (
            f"mesh {target.mesh_name} already exists in project {target.project_id} on "
            f"cluster(s) {', '.join(judged.cluster_ids)}, not on {target.cluster_id}"
        )
    if judged.verdict == "cluster_conflict":
        return (
            f"cluster {target.cluster_id} already belongs to another mesh, {judged.mesh_name} "
            f"of project {target.project_id}"
        )
    return (
        f"mesh {target.mesh_name} exists in project {target.project_id}, but the API listed it "
        "without a uid: nothing could poll it, update it or later delete it by uid"
    )
