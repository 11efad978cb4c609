"""The dry run of a rollout: what each target would meet, from one list call per project+region.

Each target is judged against the mesh that stands for it (``meshfleet.drift``): missing
(``create``), the manifest's version and configuration (``in_sync``), another configuration
(``update``, with each field), an older version (``upgrade``, with the lines its path passes), a
newer one (``downgrade``, which meshfleet refuses), or in the way of the target (``conflict``).
What a rollout then does with a mesh that exists is its ``strategy.existing``: adopt it, converge
it, or require that it matches. An upgrade the rollout would refuse (no path, too long a path, a
mesh not ``Running``) is judged here by the rule the rollout applies (``meshfleet.upgrades``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from meshfleet.adoption import judge
from meshfleet.asm.calls import MeshApi
from meshfleet.asm.errors import AsmConnectionError, AsmStatusError
from meshfleet.asm.models import Mesh
from meshfleet.drift import Comparison, FieldChange, compare
from meshfleet.models import MeshTarget
from meshfleet.upgrades import (
    UpgradePath,
    UpgradeRefusal,
    downgrade_refusal,
    line_text,
    upgrade_path,
    upgrade_refusal,
)

PlanAction = Literal["create", "in_sync", "update", "upgrade", "downgrade", "conflict", "error"]
PLAN_ACTIONS: tuple[PlanAction, ...] = (
    "create",
    "in_sync",
    "update",
    "upgrade",
    "downgrade",
    "conflict",
    "error",
)
EXISTING: frozenset[PlanAction] = frozenset({"in_sync", "update", "upgrade", "downgrade"})
"""The judgements of a target whose mesh exists (adopt, converge or require_match apply)."""


@dataclass(frozen=True)
class Refusal:
    """A list call ASM refused (401, 403, ...): one per project and region, whatever its size."""

    project_id: str
    region: str
    status: int
    error_code: str
    message: str
    request_id: str | None = None

    @classmethod
    def of(cls, project_id: str, region: str, exc: AsmStatusError) -> Refusal:
        """The refusal of ``project_id`` in ``region``, from the error ASM answered with."""
        return cls(project_id, region, exc.status, exc.error_code, exc.error_msg, exc.request_id)


@dataclass(frozen=True)
class PlannedTarget:
    """What the rollout would do with one target, judged from the meshes that exist now."""

    target: MeshTarget
    action: PlanAction
    detail: str = ""
    phase: str | None = None
    mesh_uid: str | None = None
    refusal: Refusal | None = None
    """For ``error``: the refused list call of the target's project and region, shared by all
    of its targets."""
    changes: tuple[FieldChange, ...] = ()
    """For ``update`` (and an ``upgrade`` or ``downgrade`` whose configuration differs too):
    each field in which the mesh differs from the target."""
    mesh_version: str | None = None
    """The version the existing mesh runs, as it echoes it."""
    upgrade_path: UpgradePath | None = None
    """For ``upgrade``: the path from the mesh's version to the target's (``hops`` None when
    no path leads there)."""
    version_refusal: UpgradeRefusal | None = None
    """For ``upgrade`` and ``downgrade``: why a rollout that changes the version would refuse
    it, judged on the mesh's phase as listed now; None for an upgrade it would make."""

    def describe(self) -> str:
        """``create``, ``in_sync (exists, phase Running)``, ``conflict (cluster in mesh x)``."""
        return f"{self.action} ({self.detail})" if self.detail else self.action

    @property
    def in_sync(self) -> bool:
        """The mesh exists and reads as the manifest wants it."""
        return self.action == "in_sync"

    @property
    def hops(self) -> list[str]:
        """The lines an upgrade passes, one canary upgrade each (``["1.15", "1.18"]``); [] for
        any other judgement, or when no path leads to the target's version."""
        path = self.upgrade_path
        if path is None or not path.hops:
            return []
        return [line_text(line) for line in path.hops]


def classify(target: MeshTarget, meshes: Sequence[Mesh]) -> PlannedTarget:
    """Judge one target the way ``create_mesh`` will treat the API's answer.

    A mesh of the same name on this cluster (or with clusters not echoed) is compared with the
    target (in sync, update, upgrade, downgrade); the same name on other clusters, the cluster
    already in another mesh, or a mesh listed without a uid, is a conflict (ASM answers 409 and
    the target fails); otherwise the mesh is created.
    """
    judged = judge(target, meshes)
    mesh = judged.mesh
    if judged.verdict == "create" or mesh is None:
        return PlannedTarget(target, "create")
    if judged.verdict == "adopt":
        seen = compare(target, mesh)
        phase = f"phase {mesh.phase or 'unknown'}"
        detail = f"exists, {phase}"
        path = None
        if seen.kind == "upgrade" and seen.mesh_version is not None:
            path = upgrade_path(seen.mesh_version, target.version)
            detail = f"{path.text}, {phase}"
        elif seen.kind == "downgrade":
            detail = f"{seen.mesh_version} -> {target.version}, {phase}"
        elif seen.kind == "update":
            many = len(seen.changes) != 1
            detail = f"{len(seen.changes)} field{'s differ' if many else ' differs'}, {phase}"
        return PlannedTarget(
            target,
            seen.kind,
            detail,
            mesh.phase,
            mesh.uid,
            changes=tuple(seen.changes),
            mesh_version=seen.mesh_version,
            upgrade_path=path,
            version_refusal=_version_refusal(target, seen, mesh.phase),
        )
    if judged.verdict == "name_conflict":
        detail = f"name used by a mesh on cluster {', '.join(mesh.cluster_ids)}"
    elif judged.verdict == "without_uid":
        detail = "the API lists the mesh without a uid: it cannot be adopted"
    else:
        detail = f"cluster in mesh {mesh.metadata.name}"
    return PlannedTarget(target, "conflict", detail, mesh.phase, mesh.uid)


def _version_refusal(
    target: MeshTarget, seen: Comparison, phase: str | None
) -> UpgradeRefusal | None:
    """Why the rollout would refuse the version ``seen`` asks for: the rollout's own rule for
    an upgrade, and the refusal of every downgrade."""
    if seen.mesh_version is None:
        return None
    if seen.kind == "upgrade":
        return upgrade_refusal(target.mesh_name, seen.mesh_version, target.version, phase)
    if seen.kind == "downgrade":
        return downgrade_refusal(target.mesh_name, seen.mesh_version, target.version)
    return None


async def plan_rollout(
    api: MeshApi, targets: Sequence[MeshTarget], *, concurrency: int = 16
) -> list[PlannedTarget]:
    """Plan every target with one list call per (project, region): ``api`` is only ever listed.

    A project whose list call is refused (401, 403, ...) gets ``error`` for its targets, so one
    bad credential does not hide the rest of the plan; they share that call's ``Refusal``
    (``refusals_of`` lists each once).

    Raises:
        AsmConnectionError: ASM did not answer for some project and region.
    """
    groups = list(dict.fromkeys((t.project_id, t.region) for t in targets))
    gate = asyncio.Semaphore(concurrency)

    async def listed(project_id: str, region: str) -> list[Mesh] | AsmStatusError:
        async with gate:
            try:
                return await api.meshes(project_id, region)
            except AsmStatusError as exc:
                return exc

    found = await asyncio.gather(*(listed(*group) for group in groups), return_exceptions=True)
    for result in found:
        if isinstance(result, AsmConnectionError):
            raise result
        if isinstance(result, BaseException) and not isinstance(result, AsmStatusError):
            raise result
    by_group = dict(zip(groups, found, strict=True))
    # One refusal per project and region, the very object every target of it refers to.
    refusals = {
        group: Refusal.of(*group, result)
        for group, result in by_group.items()
        if isinstance(result, AsmStatusError)
    }
    planned: list[PlannedTarget] = []
    for target in targets:
        group = (target.project_id, target.region)
        result = by_group[group]
        if isinstance(result, AsmStatusError):
            planned.append(
                PlannedTarget(target, "error", result.describe(), refusal=refusals[group])
            )
        elif isinstance(result, list):
            planned.append(classify(target, result))
    return planned


def refusals_of(planned: Sequence[PlannedTarget]) -> list[Refusal]:
    """Each refused list call once, in the order its first target was planned."""
    return list(dict.fromkeys(p.refusal for p in planned if p.refusal is not None))
