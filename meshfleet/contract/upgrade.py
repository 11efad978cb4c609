"""Input and result of ``upgrade_step``: one step of a mesh's canary upgrade, driven and polled
to its end."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from meshfleet.contract.payloads import Contract

UpgradeStepName = Literal["pre_check", "control_plane", "data_plane", "finish", "rollback"]
"""A step of a canary upgrade, in meshfleet's words (the activity maps each to ASM's own name):
pre-check, control plane, data plane (the pods restart), finish (the old control plane is
uninstalled: no way back after) and rollback."""

UPGRADE_STEPS: tuple[UpgradeStepName, ...] = ("pre_check", "control_plane", "data_plane")
"""The steps a rollout's target runs; ``finish`` waits for the finalize."""


class UpgradeStepInput(Contract):
    """Input of ``upgrade_step``.

    The first step (``preCheck``) creates the task, so it has no ``task_id``; every later one
    names the task the first step's result returned.
    """

    project_id: str
    region: str
    mesh_name: str
    uid: str
    rollout_id: str | None = None
    version: str = Field(description="The version the mesh is upgraded to.")
    version_before: str = Field(description="The version the mesh ran when the upgrade began.")
    step: UpgradeStepName
    task_id: str | None = None
    first_poll_s: float
    poll_interval_s: float
    deadline: str = Field(description="Absolute deadline (ISO 8601, UTC): retries never extend it.")


class UpgradeTaskCreated(Contract):
    """Result of ``create_upgrade_task``: the id ASM gave the task."""

    task_id: str
    attempts: int = 1


class UpgradeStepProgress(Contract):
    """What an attempt of ``upgrade_step`` heartbeats: the task's id the moment the create's 201
    arrived, so a retry after a dead worker goes on with that task rather than create another."""

    task_id: str | None = None
    moved: bool = False
    """The PUT that starts the step was accepted (a retry does not send it again)."""
    polls: int = 0
    phase: str | None = None


class UpgradeStepResult(Contract):
    """A step's end: succeeded, or failed with ASM's message; and the mesh then."""

    task_id: str
    step: UpgradeStepName
    succeeded: bool
    message: str | None = None
    mesh_phase: str | None = None
    mesh_version: str | None = None
    polls: int = 0
    attempts: int = 1
