"""A drift check: a fleet judged against its manifest, reading only, summed up as a report.

``meshfleet drift FILE`` and the scheduled ``check_drift`` activity both judge targets with
``plan_rollout`` (one list call per project and region) and sum the judgements up here, so the
command and a schedule's run say the same of the same fleet. A check can only list: what it is
given to call ASM with is a ``MeshLister``, and ``ListOnly`` refuses every other call.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol

from meshfleet.asm.calls import MeshApi
from meshfleet.asm.models import CreateMeshRequest, Mesh
from meshfleet.contract.drift import (
    REPORTED_DRIFT,
    DriftChange,
    DriftedTarget,
    DriftJudgement,
    DriftReport,
)
from meshfleet.models import MeshTarget
from meshfleet.plan import PlanAction, PlannedTarget, plan_rollout

JUDGEMENTS: dict[PlanAction, DriftJudgement] = {
    "create": "missing",
    "update": "update",
    "upgrade": "upgrade",
    "downgrade": "downgrade",
    "conflict": "conflict",
    "error": "error",
}
"""A plan's action, as drift: a target ``plan`` would create has no mesh, so it is missing."""


def drift_report(
    planned: Sequence[PlannedTarget],
    *,
    limit: int = REPORTED_DRIFT,
    checked_at: str | None = None,
) -> DriftReport:
    """Every judgement counted, and the first ``limit`` targets that are not in sync listed.

    Args:
        planned: The targets as ``plan_rollout`` judged them, in the order to list them.
        limit: How many targets not in sync the report lists; the counts stay whole.
        checked_at: When the meshes were listed (ISO 8601, UTC).
    """
    counts: Counter[str] = Counter()
    drifted: list[DriftedTarget] = []
    for p in planned:
        if p.action == "in_sync":
            counts["in_sync"] += 1
            continue
        judgement = JUDGEMENTS[p.action]
        counts[judgement] += 1
        if len(drifted) < limit:
            drifted.append(
                DriftedTarget(
                    project_id=p.target.project_id,
                    region=p.target.region,
                    cluster_id=p.target.cluster_id,
                    mesh_name=p.target.mesh_name,
                    judgement=judgement,
                    changes=[
                        DriftChange(path=c.path, before=c.before, after=c.after) for c in p.changes
                    ],
                    mesh_version=p.mesh_version,
                    detail=p.detail,
                )
            )
    return DriftReport(
        total=len(planned),
        in_sync=counts["in_sync"],
        missing=counts["missing"],
        update=counts["update"],
        upgrade=counts["upgrade"],
        downgrade=counts["downgrade"],
        conflict=counts["conflict"],
        error=counts["error"],
        drifted=drifted,
        checked_at=checked_at,
    )


class MeshLister(Protocol):
    """What a drift check may ask of ASM: a project's meshes in a region, nothing else."""

    async def meshes(self, project_id: str, region: str) -> list[Mesh]: ...


class ReadOnlyError(RuntimeError):
    """A drift check was about to call ASM for something other than a list."""


class ListOnly:
    """A ``MeshApi`` over a ``MeshLister``: lists go through (``on_list`` is told of each
    first), any other call is refused before anything is sent.

    ``plan_rollout`` is typed for a ``MeshApi`` and only ever lists; this makes that a rule a
    check keeps whatever the judgement comes to call.
    """

    def __init__(
        self, lister: MeshLister, on_list: Callable[[str, str], None] | None = None
    ) -> None:
        self._lister = lister
        self._on_list = on_list

    async def meshes(self, project_id: str, region: str) -> list[Mesh]:
        """The project's meshes in ``region``, as the lister answers."""
        if self._on_list is not None:
            self._on_list(project_id, region)
        return await self._lister.meshes(project_id, region)

    async def mesh(self, project_id: str, region: str, mesh_id: str) -> Mesh:
        """Refused: a check reads meshes from the lists alone.

        Raises:
            ReadOnlyError: always.
        """
        raise ReadOnlyError(f"a drift check only lists meshes; it asked for mesh {mesh_id}")

    async def create_mesh(self, project_id: str, region: str, request: CreateMeshRequest) -> Mesh:
        """Refused: a drift check never changes ASM.

        Raises:
            ReadOnlyError: always.
        """
        raise ReadOnlyError("a drift check never writes to ASM; it asked to create a mesh")


def read_only(lister: MeshLister, on_list: Callable[[str, str], None] | None = None) -> MeshApi:
    """``lister`` as the ``MeshApi`` the judgement takes, able to list and nothing else."""
    return ListOnly(lister, on_list)


async def judge_fleet(
    lister: MeshLister,
    targets: Sequence[MeshTarget],
    *,
    on_list: Callable[[str, str], None] | None = None,
) -> list[PlannedTarget]:
    """Every target judged against the meshes that exist now, one list call per project and
    region, through ``lister`` alone.

    Raises:
        AsmConnectionError: ASM did not answer for some project and region.
    """
    return await plan_rollout(read_only(lister, on_list), targets)


async def check_fleet(
    lister: MeshLister,
    targets: Sequence[MeshTarget],
    *,
    on_list: Callable[[str, str], None] | None = None,
    limit: int = REPORTED_DRIFT,
) -> DriftReport:
    """``judge_fleet`` summed up as a report, stamped with when it was listed.

    Raises:
        AsmConnectionError: ASM did not answer for some project and region.
    """
    checked_at = datetime.now(UTC).isoformat()
    planned = await judge_fleet(lister, targets, on_list=on_list)
    return drift_report(planned, limit=limit, checked_at=checked_at)
