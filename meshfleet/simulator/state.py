"""The simulated meshes of every project, their upgrade tasks, their lazily computed phases,
counters and the RNG."""

from __future__ import annotations

import heapq
import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from meshfleet.asm.models import CreateMeshRequest, MeshPhase
from meshfleet.asm.upgrade import UpgradeStep
from meshfleet.simulator.clock import Clock, SystemClock
from meshfleet.simulator.config import GONE, FaultConfig, LeaveRule, SimulatorConfig
from meshfleet.simulator.stats import Stats
from meshfleet.simulator.tokens import TokenStore
from meshfleet.simulator.upgrade_state import StepRun, UpgradeRecord

DEFAULT_VERSION = "1.18.7-r5"
LEAVE_RUNNING = "leave-running"
"""Stats key: meshes a ``LeaveRule`` will move out of Running (or make disappear)."""


class MeshConflictError(Exception):
    """A name or a cluster is already taken; the message says which (ASM.01010003)."""


class MeshNotRunningError(Exception):
    """The mesh is in a phase that admits no configuration change; the message names it."""


def timestamp(when: datetime) -> str:
    """The API's timestamp form, e.g. ``2025-04-10T07:48:37Z``."""
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class MeshRecord:
    """One mesh. Its phase is derived from the clock on every read, so no task drives it."""

    project_id: str
    uid: str
    name: str
    spec: dict[str, Any]
    """The spec as echoed: clusters reduced to ``clusterID``."""
    cluster_ids: tuple[str, ...]
    created_mono: float
    created_wall: datetime
    settles_at: float
    """Monotonic time at which ``Creating`` gives way to ``final_phase``."""
    final_phase: MeshPhase
    deleting_since: float | None = None
    gone_at: float | None = field(default=None)
    leaves_at: float | None = None
    """Monotonic time at which a Running mesh moves on to ``left_to`` (a ``LeaveRule``)."""
    left_to: str | None = None

    delete_fails_at: float | None = None
    """Monotonic time at which a deletion that a ``delete-failed`` rule hit ends
    ``DeleteFailed`` (the mesh stays)."""

    pending_config: dict[str, Any] | None = None
    """The configuration of the last accepted PUT, not yet echoed (None: nothing pending, or
    the change was lost to an ``update-failed`` rule)."""
    config_applies_at: float | None = None
    """Monotonic time from which ``pending_config`` is echoed as ``spec.config``."""
    accepted_at: float | None = None
    """Monotonic time of the last accepted PUT: ``status.updateTimestamp`` moves to it at once,
    before the new configuration is echoed."""

    upgrade: UpgradeRecord | None = None
    """The upgrade task that holds the mesh, until its ``finish`` or ``rollback`` succeeds."""
    upgraded_at: float | None = None
    """Monotonic time at which the last upgrade task of the mesh closed."""

    def open_upgrade(self, now: float) -> UpgradeRecord | None:
        """The task holding the mesh at ``now``; a task that has closed is folded into the
        mesh for good (its final version) and lets go of it."""
        task = self.upgrade
        if task is not None and task.closed(now):
            self.spec = self.spec | {"version": task.final_version()}
            self.upgraded_at = task.current.ends_at
            self.upgrade = task = None
        return task

    def spec_at(self, now: float) -> dict[str, Any]:
        """The spec as echoed at ``now``: the pending configuration once its time has come."""
        if (
            self.pending_config is not None
            and self.config_applies_at is not None
            and now >= self.config_applies_at
        ):
            # Fold it in for good, so a later PUT starts from what readers have seen.
            self.spec = self.spec | {"config": self.pending_config}
            self.pending_config = self.config_applies_at = None
        task = self.open_upgrade(now)
        if task is not None:
            version = task.mesh_version(now)
            if version != self.spec.get("version"):
                return self.spec | {"version": version}
        return self.spec

    def phase(self, now: float) -> MeshPhase | str:
        """The phase at monotonic time ``now`` (a gone mesh reads ``Deleting`` to the end)."""
        if self.deleting_since is not None:
            if self.delete_fails_at is not None and now >= self.delete_fails_at:
                return MeshPhase.DELETE_FAILED
            return MeshPhase.DELETING
        if now < self.settles_at:
            return MeshPhase.CREATING
        task = self.open_upgrade(now)
        if task is not None:
            return task.mesh_phase(now)
        if self.left_to is not None and self.leaves_at is not None and now >= self.leaves_at:
            return self.left_to
        return self.final_phase

    def _changed_at(self, now: float) -> float:
        if self.deleting_since is not None:
            return self.deleting_since
        later = [t for t in (self.accepted_at, self.upgraded_at) if t is not None]
        task = self.open_upgrade(now)
        if task is not None:
            return max([task.changed_at(now), *later])
        if self.leaves_at is not None and self.left_to is not None and now >= self.leaves_at:
            return self.leaves_at
        settled = self.settles_at if now >= self.settles_at else self.created_mono
        return max([settled, *later])

    def to_json(self, now: float, *, created: bool = False) -> dict[str, Any]:
        """The mesh as the API returns it; ``created`` gives the 201 form (phase only in status)."""
        # 201 means the task was accepted: its body says Creating even when create_seconds is 0.
        phase = MeshPhase.CREATING if created else self.phase(now)
        status: dict[str, Any] = {"phase": str(phase)}
        if not created:
            changed = self.created_wall + timedelta(
                seconds=self._changed_at(now) - self.created_mono
            )
            status["updateTimestamp"] = timestamp(changed)
        return {
            "apiVersion": "v1",
            "kind": "Mesh",
            "metadata": {
                "name": self.name,
                "uid": self.uid,
                "creationTimestamp": timestamp(self.created_wall),
            },
            "spec": self.spec_at(now),
            "status": status,
        }


def echoed_spec(request: CreateMeshRequest) -> dict[str, Any]:
    """The spec of a create request as the API echoes it: clusters come back as ``clusterID``."""
    spec = request.spec.to_wire()
    spec["extendParams"] = {
        "clusters": [{"clusterID": c.cluster_id} for c in request.spec.extend_params.clusters]
    }
    return spec


class SimulatorState:
    """Meshes, issued tokens, counters and the fault RNG of one simulator.

    Every method runs without awaiting, so on one event loop each call is atomic.
    """

    def __init__(self, config: SimulatorConfig | None = None, clock: Clock | None = None) -> None:
        """Start empty.

        Args:
            config: The simulator's configuration (defaults: ``SimulatorConfig()``).
            clock: Time source; a ``ManualClock`` lets tests move phases and token expiry on.
        """
        self.config = config or SimulatorConfig()
        self.clock: Clock = clock or SystemClock()
        self.stats = Stats()
        self.rng = random.Random(self.config.seed)
        self.tokens = TokenStore()
        self._meshes: dict[str, MeshRecord] = {}
        self._by_project: dict[str, dict[str, MeshRecord]] = {}
        self._names: dict[tuple[str, str], str] = {}
        self._clusters: dict[str, str] = {}
        self._leaving: list[tuple[float, str]] = []  # heap of (gone_at, uid)
        self._upgrades: dict[str, UpgradeRecord] = {}
        self._jobs: dict[str, str] = {}  # job id -> task id

    def __repr__(self) -> str:
        return f"SimulatorState({len(self._meshes)} mesh(es), {self.config!r})"

    # --- faults and housekeeping ---------------------------------------------------------

    @property
    def faults(self) -> FaultConfig:
        """The fault configuration in force."""
        return self.config.faults

    def set_faults(self, faults: FaultConfig) -> None:
        """Replace the fault configuration."""
        self.config.faults = faults

    def update_faults(self, **changes: Any) -> FaultConfig:
        """Change some fault fields (validated as a whole) and return the new configuration.

        Raises:
            pydantic.ValidationError: a field is unknown or out of range; nothing changes.
        """
        merged = self.config.faults.model_dump() | changes
        self.config.faults = FaultConfig.model_validate(merged)
        return self.config.faults

    def reset(self) -> None:
        """Forget every mesh, upgrade task and counter and reseed the RNG; faults and issued
        tokens stay."""
        self.stats = Stats()
        self.rng = random.Random(self.config.seed)
        self._meshes.clear()
        self._by_project.clear()
        self._names.clear()
        self._clusters.clear()
        self._leaving.clear()
        self._upgrades.clear()
        self._jobs.clear()

    def now(self) -> float:
        """The monotonic time, after dropping meshes whose deletion has completed."""
        now = self.clock.monotonic()
        while self._leaving and self._leaving[0][0] <= now:
            _, uid = heapq.heappop(self._leaving)
            self._forget(uid)
        return now

    def _forget(self, uid: str) -> None:
        record = self._meshes.pop(uid, None)
        if record is None:
            return
        self._by_project.get(record.project_id, {}).pop(uid, None)
        self._names.pop((record.project_id, record.name), None)
        for cluster_id in record.cluster_ids:
            if self._clusters.get(cluster_id) == uid:
                del self._clusters[cluster_id]

    # --- meshes ---------------------------------------------------------------------------

    def conflict(self, project_id: str, name: str, cluster_ids: Iterable[str]) -> str | None:
        """Why a mesh of that name and clusters cannot be created now, or None if it can."""
        self.now()
        if (project_id, name) in self._names:
            return f"a mesh named {name!r} already exists in this project"
        problems = []
        for cluster_id in cluster_ids:
            owner_uid = self._clusters.get(cluster_id)
            if owner_uid is None:
                continue
            owner = self._meshes[owner_uid]
            if owner.project_id == project_id:
                problems.append(f"cluster {cluster_id} already belongs to mesh {owner.name!r}")
            else:
                problems.append(
                    f"cluster {cluster_id} already belongs to a mesh of another project"
                )
        return "; ".join(problems) or None

    def _insert(
        self,
        project_id: str,
        name: str,
        spec: dict[str, Any],
        cluster_ids: tuple[str, ...],
        final_phase: MeshPhase,
        creating: bool,
    ) -> MeshRecord:
        problem = self.conflict(project_id, name, cluster_ids)
        if problem:
            raise MeshConflictError(problem)
        now = self.now()
        record = MeshRecord(
            project_id=project_id,
            uid=str(uuid.uuid4()),
            name=name,
            spec=spec,
            cluster_ids=cluster_ids,
            created_mono=now,
            created_wall=self.clock.now(),
            settles_at=now + (self.config.create_seconds if creating else 0.0),
            final_phase=final_phase,
        )
        self._meshes[record.uid] = record
        self._by_project.setdefault(project_id, {})[record.uid] = record
        self._names[(project_id, name)] = record.uid
        for cluster_id in cluster_ids:
            self._clusters[cluster_id] = record.uid
        return record

    def create_mesh(
        self, project_id: str, request: CreateMeshRequest, *, fails: bool = False
    ) -> MeshRecord:
        """Create a mesh for a client's POST (counted in ``creations``); it starts ``Creating``.

        Args:
            project_id: Validated project id.
            request: The validated request.
            fails: End in ``CreateFailed`` instead of ``Running``.

        Raises:
            MeshConflictError: the name or a cluster is taken.
        """
        name = request.metadata.name
        clusters = tuple(c.cluster_id for c in request.spec.extend_params.clusters)
        final = MeshPhase.CREATE_FAILED if fails else MeshPhase.RUNNING
        record = self._insert(project_id, name, echoed_spec(request), clusters, final, True)
        self.stats.name(project_id, name).creations += 1
        rule = self.faults.leave_rule(name)
        if rule is not None and final is MeshPhase.RUNNING:
            self._leave_running(record, rule)
        return record

    def _leave_running(self, record: MeshRecord, rule: LeaveRule) -> None:
        self.stats.faults[LEAVE_RUNNING] += 1
        leaves_at = record.settles_at + rule.after_s
        if rule.to == GONE:
            # Gone without a Deleting phase, as a mesh someone else deleted looks to a reader
            # that was not watching.
            record.gone_at = leaves_at
            heapq.heappush(self._leaving, (leaves_at, record.uid))
        else:
            record.leaves_at, record.left_to = leaves_at, rule.to

    def seed_mesh(
        self,
        project_id: str,
        name: str,
        cluster_ids: Iterable[str],
        phase: MeshPhase | str = MeshPhase.RUNNING,
        version: str = DEFAULT_VERSION,
        age_s: float = 3600.0,
        config: dict[str, Any] | None = None,
    ) -> MeshRecord:
        """Add a pre-existing mesh, as if created ``age_s`` ago by someone else (not a creation),
        echoing ``config`` (the wire's ``spec.config``) when given.

        The age matters: meshfleet counts a mesh it meets on 409 as its own when it was created
        after the target started, so a mesh stamped "now" would look like one a rollout made.

        ``Creating`` moves on to ``Running`` after ``create_seconds``, ``Deleting`` disappears
        after ``delete_seconds``; any other phase stays as given.

        Raises:
            MeshConflictError: the name or a cluster is taken.
            ValueError: ``phase`` is not a known phase.
        """
        wanted = MeshPhase(phase)
        clusters = tuple(cluster_ids)
        spec = {
            "type": "InCluster",
            "version": version,
            "extendParams": {"clusters": [{"clusterID": c} for c in clusters]},
        }
        if config is not None:
            spec["config"] = config
        creating = wanted is MeshPhase.CREATING
        final = MeshPhase.RUNNING if wanted in {MeshPhase.CREATING, MeshPhase.DELETING} else wanted
        record = self._insert(project_id, name, spec, clusters, final, creating)
        record.created_wall -= timedelta(seconds=age_s)
        if wanted is MeshPhase.DELETING:
            self._start_deleting(record, record.created_mono)
        return record

    def get_mesh(self, project_id: str, uid: str) -> MeshRecord | None:
        """The mesh ``uid`` of that project, or None (unknown, other project, or gone)."""
        self.now()
        record = self._meshes.get(uid)
        return record if record is not None and record.project_id == project_id else None

    def find_mesh(self, project_id: str, name: str) -> MeshRecord | None:
        """The mesh of that name in that project, or None."""
        self.now()
        uid = self._names.get((project_id, name))
        return self._meshes[uid] if uid is not None else None

    def list_meshes(self, project_id: str) -> list[MeshRecord]:
        """The project's meshes in creation order."""
        self.now()
        return list(self._by_project.get(project_id, {}).values())

    def all_meshes(self) -> list[MeshRecord]:
        """Every mesh of every project, in creation order."""
        self.now()
        return list(self._meshes.values())

    def delete_mesh(self, project_id: str, uid: str, *, fails: bool = False) -> MeshRecord | None:
        """Start deleting a mesh (again while ``Deleting`` is a no-op; again after
        ``DeleteFailed`` starts over); None when there is no such mesh.

        Args:
            fails: The deletion ends ``DeleteFailed`` after ``delete_seconds``; the mesh stays.
        """
        record = self.get_mesh(project_id, uid)
        if record is None:
            return None
        now = self.now()
        if record.deleting_since is None or record.phase(now) == MeshPhase.DELETE_FAILED:
            self._start_deleting(record, now, fails=fails)
        return record

    def not_running(self, record: MeshRecord) -> str | None:
        """Why the mesh cannot take a configuration change now, or None when it is Running."""
        phase = record.phase(self.now())
        if phase == MeshPhase.RUNNING:
            return None
        return f"mesh {record.uid} is {phase}; only a Running mesh can be updated"

    def update_mesh(
        self,
        project_id: str,
        uid: str,
        config: dict[str, Any],
        *,
        fails: bool = False,
        seconds: float | None = None,
    ) -> MeshRecord | None:
        """Accept a new configuration for a Running mesh; None when there is no such mesh.

        The mesh stays ``Running`` and echoes its old configuration for ``update_seconds``, then
        the new one. A PUT while another is pending replaces it, and the time starts over.

        Args:
            config: The new ``spec.config``, as the wire writes it.
            fails: The change is accepted but never takes (``update-failed``): the old
                configuration stays, and so does any earlier pending one.
            seconds: How long until the change is echoed, when not ``update_seconds`` (an
                ``update-slow`` rule).

        Raises:
            MeshNotRunningError: the mesh is creating, deleting, failed or in any other phase.
        """
        record = self.get_mesh(project_id, uid)
        if record is None:
            return None
        problem = self.not_running(record)
        if problem is not None:
            raise MeshNotRunningError(problem)
        now = self.now()
        record.accepted_at = now
        if not fails:
            record.spec_at(now)
            record.pending_config = config
            record.config_applies_at = now + (
                self.config.update_seconds if seconds is None else seconds
            )
        return record

    def _start_deleting(self, record: MeshRecord, now: float, *, fails: bool = False) -> None:
        record.deleting_since = now
        if fails:
            record.delete_fails_at = now + self.config.delete_seconds
            return
        record.delete_fails_at = None
        record.gone_at = now + self.config.delete_seconds
        heapq.heappush(self._leaving, (record.gone_at, record.uid))

    def mesh_json(self, record: MeshRecord, *, created: bool = False) -> dict[str, Any]:
        """The API body of a mesh at the current time."""
        return record.to_json(self.now(), created=created)

    def phase_counts(self) -> dict[str, int]:
        """How many meshes are in each phase now, across projects."""
        now = self.now()
        counts: dict[str, int] = {}
        for record in self._meshes.values():
            phase = str(record.phase(now))
            counts[phase] = counts.get(phase, 0) + 1
        return dict(sorted(counts.items()))

    # --- upgrade tasks --------------------------------------------------------------------

    def create_upgrade(
        self,
        record: MeshRecord,
        name: str,
        spec: dict[str, Any],
        target_version: str,
        *,
        failure: str | None = None,
    ) -> UpgradeRecord:
        """Create an upgrade task of the mesh (counted in ``upgrade_tasks_by_uid``) and start its
        ``preCheck``; the task holds the mesh until its ``finish`` or ``rollback`` succeeds.

        The caller has checked that no task holds the mesh, that it is ``Running`` and that
        the target is on its upgrade path.

        Args:
            record: The mesh.
            name: ``metadata.name`` of the task.
            spec: The spec as sent.
            target_version: ``spec.targetVersion``.
            failure: The message ``preCheck`` ends ``Failed`` with; None: it succeeds.
        """
        now = self.now()
        self.stats.upgrade_tasks_by_uid[record.uid] += 1
        task = UpgradeRecord(
            project_id=record.project_id,
            uid=str(uuid.uuid4()),
            name=name,
            mesh_uid=record.uid,
            mesh_name=record.name,
            from_version=str(record.spec_at(now).get("version") or ""),
            target_version=target_version,
            spec=spec,
            created_wall=self.clock.now(),
            created_mono=now,
            ordinal=self.stats.upgrade_tasks(record.uid),
            cluster_ids=record.cluster_ids,
        )
        self._upgrades[task.uid] = task
        record.upgrade = task
        self._start_step(task, UpgradeStep.PRE_CHECK, now, failure)
        return task

    def next_upgrade_ordinal(self, mesh_uid: str) -> int:
        """The ordinal the next task of the mesh ``mesh_uid`` will have (the rules' ``TIMES``)."""
        return self.stats.upgrade_tasks(mesh_uid) + 1

    def move_upgrade(
        self,
        task: UpgradeRecord,
        step: UpgradeStep,
        spec: dict[str, Any],
        *,
        failure: str | None = None,
    ) -> UpgradeRecord:
        """Start ``step`` of the task (the caller has checked ``task.refusal``).

        Args:
            task: The task.
            step: The step to start; ``rollback`` returns the mesh to ``task.from_version``.
            spec: The spec of the PUT, which the task echoes from now on.
            failure: The message the step ends ``Failed`` with; None: it succeeds.
        """
        task.spec = spec
        self._start_step(task, step, self.now(), failure)
        return task

    def _start_step(
        self, task: UpgradeRecord, step: UpgradeStep, now: float, failure: str | None
    ) -> None:
        run = StepRun(
            step=step,
            job_id=str(uuid.uuid4()),
            started=now,
            ends_at=now + self.config.upgrade_step_seconds,
            failure=failure,
        )
        task.runs.append(run)
        self._jobs[run.job_id] = task.uid

    def get_upgrade(self, project_id: str, task_id: str) -> UpgradeRecord | None:
        """The upgrade task ``task_id`` of that project, or None."""
        task = self._upgrades.get(task_id)
        return task if task is not None and task.project_id == project_id else None

    def get_upgrade_job(self, project_id: str, job_id: str) -> tuple[UpgradeRecord, StepRun] | None:
        """The task and step run whose job is ``job_id`` in that project, or None."""
        task_id = self._jobs.get(job_id)
        task = self.get_upgrade(project_id, task_id) if task_id is not None else None
        run = task.job(job_id) if task is not None else None
        return (task, run) if task is not None and run is not None else None

    def mesh_of_upgrade(self, task: UpgradeRecord) -> MeshRecord | None:
        """The mesh an upgrade task is for, or None once it is gone."""
        return self.get_mesh(task.project_id, task.mesh_uid)

    def all_upgrades(self) -> list[UpgradeRecord]:
        """Every upgrade task of every project, in creation order."""
        self.now()
        return list(self._upgrades.values())

    def upgrade_json(self, task: UpgradeRecord, *, created: bool = False) -> dict[str, Any]:
        """The API body of an upgrade task at the current time (``created``: the 201 form)."""
        return task.to_json(self.now(), timestamp(task.created_wall), created=created)

    def upgrade_job_json(self, task: UpgradeRecord, run: StepRun) -> dict[str, Any]:
        """The API body of the job of one step run."""
        return task.job_json(run, self.now())

    def upgrade_summaries(self) -> list[dict[str, Any]]:
        """``GET /_sim/upgrades``: one line per task."""
        now = self.now()
        return [task.summary(now) for task in self._upgrades.values()]
