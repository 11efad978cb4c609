"""Domain models shared by the CLI, the workflows and the activities.

Imported inside the Temporal workflow sandbox: pydantic, ``asm.models``, ``asm.rules`` and
``rollout_id`` only, nothing heavy.
"""

from __future__ import annotations

import math
import re
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from meshfleet.asm.models import (
    CreateMeshRequest,
    InjectionConfig,
    InstallationConfig,
    MeshCluster,
    MeshConfig,
    MeshExtendParams,
    MeshMetadata,
    MeshSpec,
    Selector,
)
from meshfleet.asm.rules import MeshName, ProjectId, Region
from meshfleet.rollout_id import RolloutId

PERCENT_RE = re.compile(r"^(\d+(?:\.\d+)?)%\Z")


class _Model(BaseModel):
    # Payloads are read by tolerant readers: a worker ignores fields a newer release added, so
    # the two releases of a rolling restart can read each other's inputs and results
    # (docs/upgrading.md). The manifest loader validates with extra="forbid" so a misspelt key
    # is still an error there.
    model_config = ConfigDict(extra="ignore", frozen=True)


class UpgradeRef(_Model):
    """A mesh's canary upgrade task, as the rollout that created it keeps it: the only record of
    the task's id (no call lists a mesh's tasks), what the mesh ran before, and how far it got."""

    uid: str
    """The mesh's uid."""
    task_id: str
    version_before: str
    version: str
    step: str | None = None
    """The last step that succeeded (``pre_check``, ``control_plane``, ``data_plane``,
    ``finish``, ``rollback``), None before the first."""
    finalized: bool = False
    """``finish`` succeeded: the old control plane is uninstalled and ASM cannot roll back."""

    @property
    def can_roll_back(self) -> bool:
        """ASM rolls an upgrade back until its old control plane is uninstalled."""
        return not self.finalized

    @property
    def reached(self) -> str:
        """How far the task got, in words: ``after control_plane``."""
        return f"after {self.step}" if self.step else "before its first step ended"


class Restore(_Model):
    """How a rollback undoes an update: the mesh, and the configuration to put back. The
    target's own ``config`` is what the rollout sent, which the mesh must still read, else it
    was changed since and is kept.

    The uid lives here, not in the target's ``uid``: a worker before 0.3.0 reads a rollback
    target by its ``uid`` alone and would delete the mesh; without one it refuses the target
    (``NoRecordedUid``) and touches nothing.
    """

    uid: str | None = None
    config_before: dict[str, Any] | None = None
    upgrade: UpgradeRef | None = None
    """An upgraded mesh: its task, rolled back to ``version_before`` unless finalized."""


class MeshTarget(_Model):
    """One mesh to create: a cluster of a project in a region, with everything the POST needs."""

    project_id: ProjectId
    region: Region
    cluster_id: str = Field(min_length=1, max_length=64)
    mesh_name: MeshName
    version: str = "1.18.7-r5"
    node_ids: list[str] = Field(min_length=1)
    namespaces: list[str] = Field(default_factory=lambda: ["default"])
    ipv6: bool = False
    config: dict[str, Any] | None = None
    uid: str | None = Field(
        default=None,
        description="A rollback's target only: the uid recorded when the rollout created the "
        "mesh, the one mesh the rollback may delete. Never read from a manifest.",
    )
    restore: Restore | None = Field(
        default=None,
        description="A rollback's target only: the mesh of ``uid`` was updated by the rollout, "
        "and gets its old configuration back instead of being deleted. Never read from a "
        "manifest.",
    )
    upgrade: UpgradeRef | None = Field(
        default=None,
        description="A finalize's target only: the upgrade task the rollout created for the "
        "mesh, whose last step is to run. Never read from a manifest.",
    )

    @model_validator(mode="after")
    def _request_is_valid(self) -> MeshTarget:
        # Build the API request once so every seed rule (version, config, selectors) is checked
        # when the manifest is read, not when the POST is about to be sent.
        self.to_request()
        return self

    @property
    def workflow_id(self) -> str:
        """Business id of the target's workflow: one mesh is driven by one workflow at a time."""
        return f"mesh/{self.region}/{self.project_id}/{self.mesh_name}"

    def to_request(self) -> CreateMeshRequest:
        """The ``POST /v1/{project_id}/meshes`` body for this target."""
        cluster = MeshCluster(
            cluster_id=self.cluster_id,
            installation=InstallationConfig(nodes=Selector.by("UID", list(self.node_ids))),
            injection=(
                InjectionConfig(namespaces=Selector.by("Name", list(self.namespaces)))
                if self.namespaces
                else None
            ),
        )
        spec = MeshSpec(
            type="InCluster",
            version=self.version,
            extend_params=MeshExtendParams(clusters=[cluster]),
            ipv6_enable=self.ipv6 or None,
            config=MeshConfig.model_validate(self.config) if self.config else None,
        )
        return CreateMeshRequest(
            api_version="v1", kind="Mesh", metadata=MeshMetadata(name=self.mesh_name), spec=spec
        )


def _count_or_percent(value: int | str, total: int, *, name: str) -> int:
    if isinstance(value, int):
        return value
    match = PERCENT_RE.match(value.strip())
    if not match:
        raise ValueError(f"{name}: {value!r} is neither a count nor a percentage like '10%'")
    return math.ceil(total * float(match.group(1)) / 100)


class RetryPolicySpec(_Model):
    """Backoff for the create POST: exponential from ``initial_s``, bounded by ``maximum_s``."""

    initial_s: float = Field(default=1.0, gt=0)
    maximum_s: float = Field(default=60.0, gt=0)
    backoff: float = Field(default=2.0, ge=1)
    max_attempts: int = Field(default=10, ge=1, le=1000)


def _default_waves() -> list[int | str]:
    return [1, "10%", "100%"]


def _webhook_url(value: str | None, token_variable: str) -> str | None:
    """A webhook URL as a manifest may give it: http(s), and no user or password in it."""
    if value is None:
        return value
    if "@" in value.split("://", 1)[-1].split("/", 1)[0]:
        # The URL lands in the workflow's history: a password there is readable by anyone
        # who can see the rollout. Never echoed here, for the same reason.
        raise ValueError(
            f"must not carry a user or password; the worker sends {token_variable} as a bearer "
            "token"
        )
    if not re.match(r"^https?://[^\s/]+(/\S*)?$", value):
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value


class VerifySpec(_Model):
    """``strategy.verify``: re-read each wave's meshes after its soak; optionally ask a webhook."""

    webhook: str | None = Field(
        default=None,
        description="POSTed {rollout_id, wave, meshes[]} after the re-read; 2xx passes. A bearer "
        "token comes from the worker's MESHFLEET_VERIFY_TOKEN, never from the manifest.",
    )

    @field_validator("webhook")
    @classmethod
    def _webhook(cls, value: str | None) -> str | None:
        return _webhook_url(value, "MESHFLEET_VERIFY_TOKEN")


class NotifySpec(_Model):
    """``strategy.notify``: where a drift check reports the drift it found."""

    webhook: str | None = Field(
        default=None,
        description="POSTed a summary of the drifted targets when a drift check finds any. A "
        "bearer token comes from the worker's MESHFLEET_NOTIFY_TOKEN, never from the manifest.",
    )

    @field_validator("webhook")
    @classmethod
    def _webhook(cls, value: str | None) -> str | None:
        return _webhook_url(value, "MESHFLEET_NOTIFY_TOKEN")


ExistingMode = Literal["adopt", "converge", "require_match"]
"""What a rollout does with a target's mesh that exists already.

``adopt``: take it as it stands, and report it drifted when it differs from the manifest;
``converge``: update its configuration in place where it differs, upgrade its version when it is
one line older; ``require_match``: a mesh that differs fails its target (``MeshDrifted``)."""

FinalizeMode = Literal["after_rollout", "manual"]


class UpgradeStrategy(_Model):
    """How a rollout that upgrades meshes finishes their upgrades."""

    finalize: FinalizeMode = Field(
        default="after_rollout",
        description="after_rollout: once the last wave passed its checks, finalize every "
        "upgraded mesh (uninstall its old control plane), in waves; manual: wait for "
        "`meshfleet finalize`.",
    )


RegionMode = Literal["sequential", "parallel"]


class RegionOrder(_Model):
    """``strategy.regions``: regions in order, each with a failure budget of its own.

    sequential: a region starts only when the one before it has finished, and the waves apply
    within each region (every region has its own canary). parallel: the waves run across the
    whole fleet as without ``regions``. Either way a region whose failures exceed its own budget
    halts the rollout, naming the region.
    """

    order: list[Region] = Field(min_length=1)
    mode: RegionMode = "sequential"
    max_failures: int | str | None = Field(
        default=None,
        description="Per region, N or 'P%' of the region's targets; default: the "
        "strategy's max_failures applied to each region.",
    )

    @field_validator("order")
    @classmethod
    def _distinct(cls, order: list[str]) -> list[str]:
        seen = [r for i, r in enumerate(order) if r in order[:i]]
        if seen:
            raise ValueError(f"{seen[0]!r} is listed twice")
        return order

    @field_validator("max_failures")
    @classmethod
    def _region_budget(cls, value: int | str | None) -> int | str | None:
        return None if value is None else _check_budget(value)

    def budget(self, strategy_max_failures: int | str, targets: int) -> int:
        """How many failed targets one region of ``targets`` tolerates before the rollout halts."""
        return _budget(
            self.max_failures if self.max_failures is not None else strategy_max_failures, targets
        )


class RolloutStrategy(_Model):
    """How a rollout walks its targets; timings default to Terraform's waiter."""

    window: int = Field(default=50, ge=1, le=1000)
    waves: list[int | str] = Field(default_factory=_default_waves, min_length=1)
    max_failures: int | str = "5%"
    first_poll_s: float = Field(default=20.0, ge=0)
    poll_interval_s: float = Field(default=10.0, gt=0)
    timeout_s: float = Field(default=1800.0, gt=0)
    heartbeat_timeout_s: float = Field(
        default=30.0, ge=1, description="How soon a poll on a dead worker moves elsewhere."
    )
    create_retry: RetryPolicySpec = Field(default_factory=RetryPolicySpec)
    soak_s: float = Field(
        default=0.0, ge=0, description="After each wave, wait this long before the next starts."
    )
    verify: VerifySpec | None = None
    approve_after: list[int] = Field(
        default_factory=list,
        description="Wave numbers (1-based, within each region) after which the rollout waits "
        "for `meshfleet approve`.",
    )
    regions: RegionOrder | None = None
    existing: ExistingMode = Field(
        default="adopt",
        description="What to do with a target's mesh that exists: adopt it as it stands (drift "
        "is reported), converge it to the manifest, or require that it matches.",
    )
    notify: NotifySpec | None = None
    upgrade: UpgradeStrategy = Field(default_factory=UpgradeStrategy)

    @field_validator("waves")
    @classmethod
    def _waves(cls, waves: list[int | str]) -> list[int | str]:
        for i, wave in enumerate(waves):
            if isinstance(wave, int) and wave < 1:
                raise ValueError(f"waves[{i}]: a wave must hold at least 1 target")
            if isinstance(wave, str):
                match = PERCENT_RE.match(wave.strip())
                if not match or not 0 < float(match.group(1)) <= 100:
                    raise ValueError(f"waves[{i}]: {wave!r} is not a percentage in (0%, 100%]")
        return waves

    @field_validator("max_failures")
    @classmethod
    def _max_failures(cls, value: int | str) -> int | str:
        return _check_budget(value)

    @field_validator("approve_after")
    @classmethod
    def _approve_after(cls, waves: list[int]) -> list[int]:
        for i, wave in enumerate(waves):
            if wave < 1:
                raise ValueError(f"approve_after[{i}]: wave numbers start at 1")
        return sorted(set(waves))

    def wave_ends(self, total: int) -> list[int]:
        """Cumulative end index of each wave for ``total`` targets; the last ends at ``total``."""
        ends: list[int] = []
        for wave in self.waves:
            end = min(total, _count_or_percent(wave, total, name="waves"))
            if not ends or end > ends[-1]:
                ends.append(end)
        if not ends or ends[-1] < total:
            ends.append(total)
        return [e for e in ends if e > 0] or [total]

    def failure_budget(self, total: int) -> int:
        """How many failed targets the rollout tolerates before it halts."""
        return _budget(self.max_failures, total)


def _check_budget(value: int | str) -> int | str:
    if isinstance(value, int):
        if value < 0:
            raise ValueError("must be a count >= 0 or a percentage")
        return value
    match = PERCENT_RE.match(value.strip())
    if not match or float(match.group(1)) > 100:
        raise ValueError(f"{value!r} is not a count or a percentage like '5%'")
    return value


def _budget(max_failures: int | str, total: int) -> int:
    if isinstance(max_failures, int):
        return max_failures
    match = PERCENT_RE.match(max_failures.strip())
    assert match is not None  # checked by _check_budget when the strategy was read
    return math.floor(total * float(match.group(1)) / 100)


class RolloutSpec(_Model):
    """A validated manifest: what the CLI turns into a rollout."""

    rollout_id: RolloutId
    strategy: RolloutStrategy = Field(default_factory=RolloutStrategy)
    targets: list[MeshTarget] = Field(min_length=1)


OutcomeKind = Literal[
    "created",
    "adopted",
    "failed",
    "cancelled",
    "deleted",
    "kept",
    "updated",
    "in_sync",
    "restored",
    "upgraded",
    "finalized",
]
"""created, adopted, updated, in_sync, upgraded: a rollout's target Running (made, taken as it
stood, converged in place, found as the manifest wants it, or upgraded to its version with the old
control plane still installed); finalized: an upgraded mesh's old control plane uninstalled;
deleted, restored, kept: a rollback's target deleted (or gone already), given back what the
rollout replaced (configuration or version), or left alone because it is no longer the mesh the
rollout left (or can no longer go back)."""

SUCCEEDED: frozenset[str] = frozenset({"created", "adopted", "updated", "in_sync", "upgraded"})
"""The outcomes of a rollout's target that went well: its mesh runs as the rollout left it."""


def failure_summary(error_code: str | None, message: str | None) -> str:
    """A failure's code and message in one line, the code once: an ASM error's message already
    starts with its status and code (``409 ASM.01010003: …``), which is then the whole text."""
    code, text = error_code, (message or "").strip()
    if not code:
        return text or "-"
    if code in text.split(":", 1)[0].split():
        return text
    return f"{code} {text}".rstrip()


class TargetOutcome(_Model):
    """What happened to one target; the child workflow's result."""

    workflow_id: str
    project_id: str
    region: str
    cluster_id: str
    mesh_name: str
    outcome: OutcomeKind
    uid: str | None = None
    phase: str | None = None
    error_code: str | None = None
    message: str | None = None
    attempts: int = 0
    polls: int = 0
    seconds: float = 0.0
    drift: list[str] = Field(
        default_factory=list,
        description="How the mesh differed from its target when the rollout found it, one "
        "field each (``config.a.b: 1 -> 10``): an adopted mesh that drifted, an updated one, or "
        "one that failed MeshDrifted.",
    )
    config_before: dict[str, Any] | None = Field(
        default=None,
        description="An updated mesh: the configuration it had before the rollout's update, "
        "which a rollback puts back.",
    )
    upgrade: UpgradeRef | None = Field(
        default=None,
        description="A mesh the rollout created an upgrade task for: the task and how far it "
        "got, which a finalize finishes and a rollback rolls back.",
    )

    @property
    def succeeded(self) -> bool:
        """Running as the rollout left it: created, adopted, updated or in sync."""
        return self.outcome in SUCCEEDED

    @classmethod
    def failed(
        cls,
        target: MeshTarget,
        error_code: str | None,
        message: str | None,
        *,
        workflow_id: str | None = None,
        phase: str | None = None,
        attempts: int = 0,
        seconds: float = 0.0,
    ) -> TargetOutcome:
        """A target that ended without a running mesh, and why.

        Args:
            target: The target, which names the mesh in the outcome.
            error_code: What the report shows as the target's error code.
            message: Why, in words.
            workflow_id: The workflow that drove the target, when not the target's own id.
            phase: The last mesh phase seen, if any.
            attempts: The create attempts made.
            seconds: From the target's start to its failure.
        """
        return cls(
            workflow_id=workflow_id or target.workflow_id,
            project_id=target.project_id,
            region=target.region,
            cluster_id=target.cluster_id,
            mesh_name=target.mesh_name,
            outcome="failed",
            phase=phase,
            error_code=error_code,
            message=message,
            attempts=attempts,
            seconds=seconds,
        )


class TargetFailure(_Model):
    """A failed target as the report lists it."""

    project_id: str
    region: str
    cluster_id: str
    mesh_name: str
    error_code: str | None = None
    message: str | None = None

    @classmethod
    def of(cls, outcome: TargetOutcome) -> TargetFailure:
        """The report's view of a failed outcome."""
        return cls.model_validate(outcome.model_dump(include=set(cls.model_fields)))


class RolloutState(StrEnum):
    """Where a rollout stands."""

    RUNNING = "running"
    PAUSED = "paused"
    HALTED = "halted"
    CANCELLING = "cancelling"
    SOAKING = "soaking"
    """A wave finished; the next waits until ``soaking_until``."""
    VERIFYING = "verifying"
    """The wave's meshes are read again (and the verify webhook asked)."""
    AWAITING_APPROVAL = "awaiting_approval"
    """A gate of ``approve_after``: waits for ``meshfleet approve``."""
    AWAITING_FINALIZE = "awaiting_finalize"
    """Every wave passed; the upgraded meshes wait for ``meshfleet finalize``
    (``strategy.upgrade.finalize: manual``)."""
    FINALIZING = "finalizing"
    """The upgraded meshes' old control planes are uninstalled, in waves."""
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    FAILED = "failed"
    """Every target done, but more of them failed than the budget allowed."""

    @property
    def finished(self) -> bool:
        """The rollout will start no more targets and has none in flight."""
        return self in FINAL_STATES


FINAL_STATES = (RolloutState.CANCELLED, RolloutState.COMPLETED, RolloutState.FAILED)
"""The states a rollout ends in (docs/rollout-states.md)."""


class OutcomeCounts(BaseModel):
    """Running totals by outcome."""

    model_config = ConfigDict(extra="ignore")  # a tolerant reader, as ``_Model``

    created: int = 0
    adopted: int = 0
    failed: int = 0
    cancelled: int = 0
    deleted: int = 0
    kept: int = 0
    updated: int = 0
    in_sync: int = 0
    restored: int = 0
    drifted: int = 0
    """Adopted meshes that differ from their targets: counted among ``adopted`` too."""
    upgraded: int = 0
    finalized: int = 0
    """Upgraded meshes since finalized: counted among ``upgraded`` too."""

    def add(self, outcome: OutcomeKind) -> None:
        """Count one outcome."""
        setattr(self, outcome, getattr(self, outcome) + 1)

    @property
    def done(self) -> int:
        """Targets that reached an outcome."""
        return (
            self.created
            + self.adopted
            + self.failed
            + self.cancelled
            + self.deleted
            + self.kept
            + self.updated
            + self.in_sync
            + self.restored
            + self.upgraded
        )


MAX_REPORTED_FAILURES = 200


class DriftedMesh(_Model):
    """A target whose mesh differed from the manifest when the rollout found it."""

    project_id: str
    region: str
    cluster_id: str
    mesh_name: str
    outcome: str
    """What the rollout did about it: adopted (left as it stood), updated, or failed."""
    fields: list[str] = Field(default_factory=list)
    """Each differing field, ``config.a.b: before -> after``."""

    @classmethod
    def of(cls, outcome: TargetOutcome) -> DriftedMesh:
        """The drift an outcome recorded."""
        return cls(
            project_id=outcome.project_id,
            region=outcome.region,
            cluster_id=outcome.cluster_id,
            mesh_name=outcome.mesh_name,
            outcome=outcome.outcome,
            fields=list(outcome.drift),
        )


class KeptMesh(_Model):
    """A mesh a rollback left alone, and why."""

    project_id: str
    region: str
    cluster_id: str
    mesh_name: str
    reason: str

    @classmethod
    def of(cls, outcome: TargetOutcome) -> KeptMesh:
        """The mesh of a ``kept`` outcome, with the reason its workflow gave."""
        return cls(
            project_id=outcome.project_id,
            region=outcome.region,
            cluster_id=outcome.cluster_id,
            mesh_name=outcome.mesh_name,
            reason=outcome.message or "left alone",
        )


class UpgradedMesh(_Model):
    """Where one mesh's upgrade stands, as a report lists it."""

    project_id: str
    region: str
    cluster_id: str
    mesh_name: str
    uid: str
    version_before: str
    version: str
    task_id: str
    step: str | None = None
    """The last step that succeeded, None before the first."""
    finalized: bool = False
    outcome: str
    """The target's outcome: upgraded, finalized, failed (at ``step``'s next), cancelled
    (stopped after ``step``)."""

    @property
    def can_roll_back(self) -> bool:
        """As ``UpgradeRef.can_roll_back``."""
        return self.ref.can_roll_back

    @property
    def ref(self) -> UpgradeRef:
        """The task, as a finalize's target carries it."""
        return UpgradeRef(
            uid=self.uid,
            task_id=self.task_id,
            version_before=self.version_before,
            version=self.version,
            step=self.step,
            finalized=self.finalized,
        )

    @classmethod
    def of(cls, outcome: TargetOutcome) -> UpgradedMesh:
        """The upgrade an outcome recorded."""
        upgrade = outcome.upgrade
        assert upgrade is not None
        return cls(
            project_id=outcome.project_id,
            region=outcome.region,
            cluster_id=outcome.cluster_id,
            mesh_name=outcome.mesh_name,
            uid=upgrade.uid,
            version_before=upgrade.version_before,
            version=upgrade.version,
            task_id=upgrade.task_id,
            step=upgrade.step,
            finalized=upgrade.finalized,
            outcome=outcome.outcome,
        )


class Approval(_Model):
    """One approval gate passed (``meshfleet approve``)."""

    wave: int
    """The wave after which the gate stood (1-based, within its region)."""
    region: str | None = None
    by: str
    at: str
    """When the approval arrived (ISO 8601, UTC, workflow time)."""


class RolloutProgress(_Model):
    """The ``progress`` query and the final report share this shape.

    ``failures`` holds at most ``MAX_REPORTED_FAILURES`` entries (the first ones); ``failed``
    counts them all, and each target's own workflow keeps its full detail.
    """

    rollout_id: str
    state: RolloutState
    total: int
    created: int
    adopted: int
    failed: int
    cancelled: int
    in_flight: int
    pending: int
    wave: int
    waves: int
    failure_budget: int
    failures: list[TargetFailure] = Field(default_factory=list)
    started_at: str | None = None
    finished_at: str | None = None
    seconds: float = 0.0
    region: str | None = None
    """The region whose waves run now (``strategy.regions`` sequential), else None."""
    soaking_until: str | None = None
    """While ``soaking``: when the next wave may start (ISO 8601, UTC)."""
    halted_region: str | None = None
    """The region whose failures exceeded its own budget and halted the rollout."""
    halt_reason: str | None = None
    """Why the rollout halted, when not only the failure count: e.g. the verify webhook's answer."""
    approvals: list[Approval] = Field(default_factory=list)
    """Every gate passed: which wave, who approved it and when."""
    kind: Literal["rollout", "rollback"] = "rollout"
    """A rollback reports ``deleted`` and ``kept`` where a rollout reports created and adopted."""
    deleted: int = 0
    kept: int = 0
    kept_reasons: list[KeptMesh] = Field(default_factory=list)
    """A rollback's meshes left alone, each with why (at most ``MAX_REPORTED_FAILURES``)."""
    not_rolled_back: dict[str, int] = Field(default_factory=dict)
    """A rollback: the rollout's targets it never touches, by why (adopted, failed, ...)."""
    updated: int = 0
    """Existing meshes whose configuration the rollout converged in place."""
    in_sync: int = 0
    """Existing meshes that already read as the manifest wants: nothing was sent to them."""
    drifted: int = 0
    """Adopted meshes that differ from the manifest (among ``adopted``), left as they stood."""
    drift: list[DriftedMesh] = Field(default_factory=list)
    """The meshes found differing from the manifest, each with its fields (at most
    ``MAX_REPORTED_FAILURES``): adopted as they stood, updated, or failed MeshDrifted."""
    restored: int = 0
    """A rollback: updated meshes given back the configuration they had before."""
    upgraded: int = 0
    """Meshes the rollout upgraded through ASM's canary upgrade (finalized ones included)."""
    finalized: int = 0
    """Upgraded meshes whose old control plane is uninstalled: ASM can no longer roll them back."""
    upgrades: list[UpgradedMesh] = Field(default_factory=list)
    """Every mesh the rollout created an upgrade task for, and where it stands (at most
    ``MAX_REPORTED_FAILURES``)."""

    @property
    def done(self) -> int:
        """Targets that reached an outcome, whatever it was."""
        return (
            self.created
            + self.adopted
            + self.updated
            + self.in_sync
            + self.deleted
            + self.restored
            + self.kept
            + self.failed
            + self.cancelled
            + self.upgraded
        )

    @property
    def succeeded(self) -> bool:
        """Every target is Running as the rollout left it; a rollback's, deleted, restored or
        kept."""
        if self.kind == "rollback":
            done = self.deleted + self.kept + self.restored
        else:
            done = self.created + self.adopted + self.updated + self.in_sync + self.upgraded
        return self.state == RolloutState.COMPLETED and done == self.total
