"""Simulated canary upgrade tasks: each step's run, and what the task and its mesh read as now.

Like a mesh's phase, nothing drives a task: each step records when it started and when it ends,
and every read derives the phases from the clock. The values on the wire are the ones
``meshfleet.asm.upgrade`` assumes, imported from there so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from meshfleet.asm.models import MeshPhase
from meshfleet.asm.upgrade import (
    StepPhase,
    UpgradeStep,
    line_of,
    lines_between,
    next_step,
    upgrade_path_lines,
)

JOB_KIND = "Job"
JOB_API_VERSION = "v3"
TASK_KIND = "MeshUpgrade"
TASK_API_VERSION = "v1"


def _line(line: tuple[int, int]) -> str:
    return f"{line[0]}.{line[1]}"


def upgrade_paths() -> str:
    """The upgrade paths, one line per upgrade: ``1.8 → 1.15, 1.13 → 1.15, 1.15 → 1.18``."""
    return ", ".join(f"{_line(have)} → {_line(to)}" for have, to in upgrade_path_lines())


def off_path(current: str, target: str) -> str | None:
    """Why one canary upgrade cannot take a mesh from ``current`` to ``target``, naming the
    path, or None when ``target`` is exactly one line up."""
    hops = lines_between(current, target)
    if hops is not None and len(hops) == 1:
        return None
    paths = f"upgrade paths, one line per upgrade: {upgrade_paths()}"
    if hops is None:
        return f"no upgrade path leads from mesh version {current} to {target} ({paths})"
    if not hops:
        return (
            f"mesh version {current} is already on the line of {target}; "
            f"a canary upgrade moves one line up ({paths})"
        )
    via = " → ".join(_line(hop) for hop in hops)
    have = line_of(current)
    start = _line(have) if have is not None else current
    return (
        f"mesh version {current} cannot reach {target} in one canary upgrade: the path is "
        f"{start} → {via}, one line per upgrade ({paths})"
    )


@dataclass
class StepRun:
    """One run of one step, with the job that did it."""

    step: UpgradeStep
    job_id: str
    started: float
    ends_at: float
    failure: str | None = None
    """The message the step ends ``Failed`` with; None: it ends ``Succeeded``."""

    def phase(self, now: float) -> StepPhase:
        """The step's phase at monotonic time ``now``."""
        if now < self.ends_at:
            return StepPhase.RUNNING
        return StepPhase.FAILED if self.failure is not None else StepPhase.SUCCEEDED

    def message(self, now: float) -> str:
        """``status.message``: why the step failed, once it has; empty otherwise."""
        return (self.failure or "") if self.phase(now) is StepPhase.FAILED else ""


@dataclass
class UpgradeRecord:
    """One upgrade task of one mesh: the steps it ran, the last being the one it is at."""

    project_id: str
    uid: str
    name: str
    mesh_uid: str
    mesh_name: str
    from_version: str
    target_version: str
    spec: dict[str, Any]
    """The spec as the last accepted POST or PUT sent it."""
    created_wall: datetime
    created_mono: float
    ordinal: int
    """Which of its mesh's tasks this is (1 for the first): what the rules' ``TIMES`` count."""
    cluster_ids: tuple[str, ...] = ()
    runs: list[StepRun] = field(default_factory=list)

    @property
    def current(self) -> StepRun:
        """The run of the step the task is at."""
        return self.runs[-1]

    def closed(self, now: float) -> bool:
        """Whether the task is over: ``finish`` or ``rollback`` succeeded. A closed task holds
        its mesh no longer, and no step can start on it."""
        run = self.current
        return (
            run.step in {UpgradeStep.FINISH, UpgradeStep.ROLLBACK}
            and run.phase(now) is StepPhase.SUCCEEDED
        )

    def final_version(self) -> str:
        """The mesh's version once the task has closed."""
        return self.target_version if self.current.step is UpgradeStep.FINISH else self.from_version

    def switched(self, now: float) -> bool:
        """Whether the data plane has moved to the target (a ``dataPlane`` run succeeded):
        from then on the mesh echoes the target version until a rollback completes."""
        return any(
            run.step is UpgradeStep.DATA_PLANE and run.phase(now) is StepPhase.SUCCEEDED
            for run in self.runs
        )

    def mesh_version(self, now: float) -> str:
        """``spec.version`` of the mesh at ``now``."""
        if self.closed(now):
            return self.final_version()
        return self.target_version if self.switched(now) else self.from_version

    def mesh_phase(self, now: float) -> MeshPhase:
        """``status.phase`` of the mesh at ``now``.

        Between steps the mesh reads ``Upgrading``, except once the data plane has moved: both
        control planes are installed and the mesh serves on the target, ``Running``, until
        ``finish`` starts. A failed ``preCheck`` changed nothing, so the mesh is ``Running``.
        """
        run = self.current
        phase = run.phase(now)
        if phase is StepPhase.SUCCEEDED and run.step in {
            UpgradeStep.DATA_PLANE,
            UpgradeStep.FINISH,
            UpgradeStep.ROLLBACK,
        }:
            return MeshPhase.RUNNING
        if run.step is UpgradeStep.ROLLBACK:
            return (
                MeshPhase.ROLLBACK_FAILED if phase is StepPhase.FAILED else MeshPhase.ROLLING_BACK
            )
        if phase is StepPhase.FAILED:
            return (
                MeshPhase.RUNNING if run.step is UpgradeStep.PRE_CHECK else MeshPhase.UPGRADE_FAILED
            )
        return MeshPhase.UPGRADING

    def changed_at(self, now: float) -> float:
        """When the mesh's phase last changed because of this task."""
        run = self.current
        return run.ends_at if now >= run.ends_at else run.started

    def refusal(self, step: UpgradeStep, now: float) -> str | None:
        """Why ``step`` cannot start now (None: it can). The caller has ruled out a repeat of
        the step the task is at."""
        run = self.current
        phase = run.phase(now)
        if self.closed(now):
            return f"upgrade task {self.uid} is over: {run.step} {phase}; no step can start"
        if step is UpgradeStep.ROLLBACK:
            return None
        if phase is StepPhase.SUCCEEDED and step is next_step(run.step):
            return None
        after = next_step(run.step)
        if phase is StepPhase.SUCCEEDED and after is not None:
            allowed = f"{after} or {UpgradeStep.ROLLBACK}"
        else:
            allowed = str(UpgradeStep.ROLLBACK)
        return (
            f"upgrade task {self.uid} is at step {run.step} ({phase}); {step} cannot start now, "
            f"only {allowed}"
        )

    def repeats(self, step: UpgradeStep, now: float) -> bool:
        """Whether ``step`` is the step the task is at, running or done: a retried PUT that
        must change nothing."""
        run = self.current
        return step is run.step and run.phase(now) is not StepPhase.FAILED

    def job(self, job_id: str) -> StepRun | None:
        """The run whose job is ``job_id``."""
        return next((run for run in self.runs if run.job_id == job_id), None)

    def to_json(self, now: float, timestamp: str, *, created: bool = False) -> dict[str, Any]:
        """The task as create and show answer it; ``timestamp`` is its creation time.

        ``created`` gives the 201 form: the task was accepted, so its ``preCheck`` reads
        ``Running`` even when a step takes no time at all.
        """
        run = self.current
        phase = StepPhase.RUNNING if created else run.phase(now)
        return {
            "kind": TASK_KIND,
            "apiVersion": TASK_API_VERSION,
            "metadata": {"name": self.name, "uid": self.uid, "creationTimestamp": timestamp},
            "spec": self.spec,
            "status": {
                "phase": str(phase),
                "step": str(run.step),
                "jobId": run.job_id,
                "message": "" if created else run.message(now),
            },
        }

    def job_json(self, run: StepRun, now: float) -> dict[str, Any]:
        """The job of one run: one subjob per cluster of the mesh, in the run's phase."""
        phase, message = str(run.phase(now)), run.message(now)
        subjobs = [
            {
                "type": str(run.step),
                "clusterID": cluster_id,
                "status": {"phase": phase, "message": message},
            }
            for cluster_id in self.cluster_ids
        ]
        return {
            "kind": JOB_KIND,
            "apiVersion": JOB_API_VERSION,
            "metadata": {"uid": run.job_id},
            "spec": {"type": str(run.step), "subjobs": subjobs},
            "status": {"phase": phase, "message": message},
        }

    def summary(self, now: float) -> dict[str, Any]:
        """One line of ``GET /_sim/upgrades``."""
        run = self.current
        return {
            "project_id": self.project_id,
            "mesh_uid": self.mesh_uid,
            "mesh_name": self.mesh_name,
            "id": self.uid,
            "from_version": self.from_version,
            "target_version": self.target_version,
            "step": str(run.step),
            "phase": str(run.phase(now)),
            "message": run.message(now),
            "job_id": run.job_id,
            "open": not self.closed(now),
        }
