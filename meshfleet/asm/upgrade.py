"""ASM's canary upgrade task: the wire of its four calls, and every value meshfleet assumes.

Huawei's pages publish the calls (create, show and move an upgrade task; show the job behind a
step) and the mandatory fields of the body, but not the values of ``upgradeStrategy``,
``targetType`` and ``currentStep``, nor the fields of the task's ``status``. Those values are
assumed here, and only here, so that they change in one place once the real ones are known
(docs/asm-api.md, "Upgrade a mesh's version", marks each as assumed). The simulator serves
exactly these.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# --- assumed values ------------------------------------------------------------------------

UPGRADE_STRATEGY = "canary"
"""Assumed: the value of ``spec.upgradeStrategy`` for a canary upgrade."""
TARGET_TYPE = "InCluster"
"""Assumed: the value of ``spec.targetType``, as the mesh's own ``spec.type``."""


class UpgradeStep(StrEnum):
    """Assumed: the names ``spec.currentStep.name`` takes, in the order an upgrade goes.

    Creating the task starts ``preCheck``; a PUT naming the next step starts it; ``finish``
    uninstalls the old control plane, after which no rollback is possible; ``rollback`` goes
    back to the old version while that is still installed.
    """

    PRE_CHECK = "preCheck"
    CONTROL_PLANE = "controlPlane"
    DATA_PLANE = "dataPlane"
    FINISH = "finish"
    ROLLBACK = "rollback"


STEP_ORDER: tuple[UpgradeStep, ...] = (
    UpgradeStep.PRE_CHECK,
    UpgradeStep.CONTROL_PLANE,
    UpgradeStep.DATA_PLANE,
    UpgradeStep.FINISH,
)


class StepPhase(StrEnum):
    """Assumed: ``status.phase`` of a task: the step works, is done (the task waits for the
    next PUT), or failed (``status.message`` says why)."""

    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


def next_step(step: UpgradeStep) -> UpgradeStep | None:
    """The step after ``step`` in an upgrade, None after ``finish`` (or for ``rollback``)."""
    if step not in STEP_ORDER:
        return None
    at = STEP_ORDER.index(step)
    return STEP_ORDER[at + 1] if at + 1 < len(STEP_ORDER) else None


# --- upgrade paths (ASM user guide: one line up per canary upgrade) --------------------------

_LINE = re.compile(r"^(\d+)\.(\d+)\.")
_NEXT_LINE = {(1, 8): (1, 15), (1, 13): (1, 15), (1, 15): (1, 18)}
"""A mesh's line and the line one canary upgrade takes it to: 1.8 reaches 1.18 only via 1.15."""


def upgrade_path_lines() -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Every line a canary upgrade starts from, with the line it reaches, oldest first."""
    return sorted(_NEXT_LINE.items())


def line_of(version: str) -> tuple[int, int] | None:
    """``1.15.7-r3`` -> ``(1, 15)``; None for a version in no ASM form."""
    match = _LINE.match(version)
    return (int(match.group(1)), int(match.group(2))) if match else None


def lines_between(current: str, target: str) -> list[tuple[int, int]] | None:
    """The lines an upgrade from ``current`` to ``target`` passes, one canary upgrade each
    (the target's line last); [] when both are on one line; None when no path leads there."""
    have, want = line_of(current), line_of(target)
    if have is None or want is None:
        return None
    hops: list[tuple[int, int]] = []
    while have != want:
        step = _NEXT_LINE.get(have)
        if step is None or step > want:
            return None
        hops.append(step)
        have = step
    return hops


# --- the wire ------------------------------------------------------------------------------


class _Wire(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid")

    def to_wire(self) -> dict[str, Any]:
        """The JSON body the API expects."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class CurrentStep(_Wire):
    """``spec.currentStep``: the step the task is to run (assumed shape)."""

    name: UpgradeStep


class UpgradeSpec(_Wire):
    """``spec`` of a ``MeshUpgrade``: every field mandatory on the wire."""

    mesh_id: str = Field(alias="meshId")
    upgrade_strategy: str = Field(default=UPGRADE_STRATEGY, alias="upgradeStrategy")
    target_version: str = Field(alias="targetVersion")
    target_type: str = Field(default=TARGET_TYPE, alias="targetType")
    current_step: CurrentStep = Field(alias="currentStep")


class UpgradeMetadata(_Wire):
    """``metadata`` of a ``MeshUpgrade``."""

    name: str


class UpgradeTaskRequest(_Wire):
    """Body of ``POST /v1/{project_id}/mesh-upgrade`` and of its PUT (the same shape)."""

    kind: Literal["MeshUpgrade"] = "MeshUpgrade"
    api_version: Literal["v1"] = Field(default="v1", alias="apiVersion")
    metadata: UpgradeMetadata
    spec: UpgradeSpec

    @classmethod
    def for_step(
        cls, mesh_id: str, mesh_name: str, version: str, step: UpgradeStep
    ) -> UpgradeTaskRequest:
        """The body that starts ``step`` of the upgrade of ``mesh_id`` to ``version``."""
        return cls(
            metadata=UpgradeMetadata(name=f"{mesh_name}-to-{version}"),
            spec=UpgradeSpec(
                mesh_id=mesh_id, target_version=version, current_step=CurrentStep(name=step)
            ),
        )


class _Echo(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="allow")


class UpgradeTaskStatus(_Echo):
    """``status`` of a task (assumed fields)."""

    phase: str | None = None
    step: str | None = None
    job_id: str | None = Field(default=None, alias="jobId")
    message: str | None = None


class UpgradeTaskMetadata(_Echo):
    """``metadata`` of a task as answered: its id is the path of the calls that follow."""

    name: str | None = None
    uid: str | None = None


class UpgradeTask(_Echo):
    """A ``MeshUpgrade`` as create and show answer it."""

    metadata: UpgradeTaskMetadata = Field(default_factory=UpgradeTaskMetadata)
    spec: dict[str, Any] | None = None
    status: UpgradeTaskStatus = Field(default_factory=UpgradeTaskStatus)

    @property
    def step(self) -> UpgradeStep | None:
        """The step the task is at, when it names one meshfleet knows."""
        name = self.status.step or (self.spec or {}).get("currentStep", {}).get("name")
        try:
            return UpgradeStep(name) if name else None
        except ValueError:
            return None


class UpgradeJobSpec(_Echo):
    """``spec`` of a job: the step it runs and its parts (their shape is not published)."""

    type: str | None = None
    subjobs: list[dict[str, Any]] = Field(default_factory=list)


class UpgradeJobStatus(_Echo):
    """``status`` of a job: its phase, and what went wrong when it failed."""

    phase: str | None = None
    message: str | None = None


class UpgradeJobMetadata(_Echo):
    """``metadata`` of a job: its id is the task's ``status.jobId``."""

    uid: str | None = None


class UpgradeJob(_Echo):
    """A ``Job`` (``apiVersion: v3``) as ``GET /v1/{project_id}/mesh-job/{job_id}`` answers it:
    the work behind one step of a task, kept as ASM sends it."""

    kind: str | None = None
    api_version: str | None = Field(default=None, alias="apiVersion")
    metadata: UpgradeJobMetadata = Field(default_factory=UpgradeJobMetadata)
    spec: UpgradeJobSpec = Field(default_factory=UpgradeJobSpec)
    status: UpgradeJobStatus = Field(default_factory=UpgradeJobStatus)
