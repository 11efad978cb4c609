"""Inputs, results and names shared by workflows, activities and starters.

Workflows call activities by these names so that ``workflows/`` never imports the HTTP stack, and
clients call queries and updates by the names the workflows register them under.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from meshfleet.models import (
    Approval,
    DriftedMesh,
    ExistingMode,
    KeptMesh,
    MeshTarget,
    OutcomeCounts,
    OutcomeKind,
    RetryPolicySpec,
    RolloutState,
    RolloutStrategy,
    TargetFailure,
    UpgradedMesh,
)

CREATE_MESH = "create_mesh"
WAIT_FOR_MESH = "wait_for_mesh"
JUDGE_MESH = "judge_mesh"
UPDATE_MESH = "update_mesh"
WAIT_FOR_CONFIG = "wait_for_config"
LOAD_TARGET_PAGE = "load_target_page"
AWAIT_TARGET = "await_target"
VERIFY_WAVE = "verify_wave"
# One step of a mesh's canary upgrade (the create of its task with the first), driven and polled
# to its end.
UPGRADE_STEP = "upgrade_step"
# The create of a mesh's upgrade task on its own: its completion records the task's id the
# moment ASM answers (a heartbeat may be held back by the SDK's throttling).
CREATE_UPGRADE_TASK = "create_upgrade_task"
# A rollout or rollback cancelled through its ``cancel`` update asks Temporal to cancel its own
# run, so that it can end Canceled: a workflow cannot request that of itself by a command.
REQUEST_CANCEL = "request_cancel"

ROLLOUT_WORKFLOW = "MeshRolloutWorkflow"
CREATE_MESH_WORKFLOW = "CreateMeshWorkflow"
CONVERGE_MESH_WORKFLOW = "ConvergeMeshWorkflow"
RESTORE_MESH_WORKFLOW = "RestoreMeshWorkflow"
FINALIZE_UPGRADE_WORKFLOW = "FinalizeUpgradeWorkflow"
TARGET_PAGE_WORKFLOW = "RolloutTargetPageWorkflow"

# Queries and updates, by the names clients call them (the CLI of the release before among them).
PROGRESS_QUERY = "progress"  # of a rollout
PHASE_QUERY = "phase"  # of a target
PAUSE_UPDATE = "pause"  # these three: of a rollout
RESUME_UPDATE = "resume"
CANCEL_UPDATE = "cancel"
APPROVE_UPDATE = "approve"
FINALIZE_UPDATE = "finalize"  # of a rollout waiting in awaiting_finalize
# Sent by a cancelled rollout to the targets in flight: an upgrade ends the step it runs and
# starts no other (a mesh's workflow that is not upgrading has nothing to stop).
STOP_SIGNAL = "stop_after_step"

# Above this many targets the workflow input would pass Temporal's 256 KB payload warning, so
# targets travel in pages stored as their own small workflows (see ``TargetPage``).
INLINE_TARGETS_MAX = 400
PAGE_SIZE = 400


def rollout_workflow_id(rollout_id: str) -> str:
    """Workflow id of a rollout: starting the same rollout id twice finds the running one."""
    return f"rollout/{rollout_id}"


def page_workflow_id(rollout_id: str, page: int) -> str:
    """Workflow id of one stored page of a rollout's targets."""
    return f"rollout/{rollout_id}/targets/{page}"


class Contract(BaseModel):
    """Base of every payload that crosses Temporal."""

    # Tolerant readers, as the models (meshfleet/models.py): fields a newer release adds are
    # ignored, never an error that fails a workflow task.
    model_config = ConfigDict(extra="ignore", frozen=True)


class MeshTiming(Contract):
    """Per-target timings, all from the rollout strategy so tests and demos can shrink them."""

    first_poll_s: float = 20.0
    poll_interval_s: float = 10.0
    timeout_s: float = 1800.0
    heartbeat_timeout_s: float = 30.0
    create_retry: RetryPolicySpec = Field(default_factory=RetryPolicySpec)

    @classmethod
    def of(cls, strategy: RolloutStrategy) -> MeshTiming:
        """The timings a rollout strategy gives each of its targets."""
        return cls.model_validate(strategy.model_dump(include=set(cls.model_fields)))


class MeshChangeInput(Contract):
    """Input of the workflow that changes one mesh (``CreateMeshWorkflow``,
    ``DeleteMeshWorkflow``): the target, the rollout it belongs to, and how to drive it."""

    rollout_id: str
    target: MeshTarget
    timing: MeshTiming = Field(default_factory=MeshTiming)
    search_attributes: bool = True
    existing: ExistingMode = Field(
        default="adopt", description="What a converge does with a mesh that differs."
    )


CreateMeshInput = MeshChangeInput
"""Input of ``CreateMeshWorkflow``."""


class CreateMeshActivityInput(Contract):
    """Input of the ``create_mesh`` activity."""

    target: MeshTarget
    started_at: str = Field(description="When the target's workflow started (ISO 8601, UTC).")
    rollout_id: str | None = None
    after_lost_task: bool = Field(
        default=False,
        description="An earlier workflow task of this target was lost (its worker died), so a "
        "POST of this target may already have created the mesh.",
    )


class CreateMeshResult(Contract):
    """Result of ``create_mesh``: the mesh uid and whether it was created or adopted."""

    uid: str
    phase: str | None
    adopted: bool
    attempts: int
    drift: list[str] = Field(
        default_factory=list,
        description="An adopted mesh: each field in which it differs from its target.",
    )


class WaitForMeshInput(Contract):
    """Input of ``wait_for_mesh``."""

    project_id: str
    region: str
    mesh_name: str
    uid: str
    cluster_id: str | None = None
    rollout_id: str | None = None
    first_poll_s: float
    poll_interval_s: float
    deadline: str = Field(description="Absolute deadline (ISO 8601, UTC): retries never extend it.")


class WaitProgress(Contract):
    """Heartbeat details of ``wait_for_mesh``: a retried poll resumes from here."""

    phase: str | None = None
    polls: int = 0


class WaitForMeshResult(Contract):
    """The mesh reached ``Running``."""

    phase: str
    polls: int


class LoadPageInput(Contract):
    """Input of ``load_target_page``."""

    rollout_id: str
    page: int
    workflow_id: str | None = Field(
        default=None,
        description="The page workflow's id, when not the rollout's own page (a rollback's).",
    )


class VerifyWaveInput(Contract):
    """Input of ``verify_wave``: the targets of one finished wave, by index, to read again.

    The targets travel as an index range (``start``..``end``) and are read from the inline list
    or the stored pages, so a wave of thousands never becomes one large payload.
    """

    rollout_id: str
    wave: int = Field(description="The wave's number, 1-based (within its region, if any).")
    region: str | None = None
    start: int
    end: int
    targets: list[MeshTarget] | None = Field(
        default=None, description="Inline targets of the wave (start..end), when not paged."
    )
    page_size: int = PAGE_SIZE
    skip: list[int] = Field(
        default_factory=list, description="Indexes that already failed: not read again."
    )
    webhook: str | None = None


class VerifiedFailure(Contract):
    """A mesh of the wave that is gone or no longer Running."""

    index: int
    error_code: str = Field(
        description="MeshGone, or Mesh<phase> as read (e.g. MeshUnknown, MeshUpgradeFailed)."
    )
    message: str
    phase: str | None = None


class WebhookVerdict(Contract):
    """The verify webhook's answer."""

    passed: bool
    status: int | None = Field(default=None, description="HTTP status; None: no answer.")
    excerpt: str = Field(default="", description="The start of the body, or why none came.")


class VerifyWaveResult(Contract):
    """Result of ``verify_wave``."""

    checked: int
    failures: list[VerifiedFailure] = Field(default_factory=list)
    webhook: WebhookVerdict | None = None


class FinalizeInput(Contract):
    """Input of the ``finalize`` update."""

    by: str | None = Field(default=None, description="Who finalizes (recorded in the history).")


class ApproveInput(Contract):
    """Argument of the ``approve`` update."""

    by: str | None = Field(default=None, description="Who approves (recorded in the history).")
    wave: int | None = Field(
        default=None,
        description="The gate's wave as the approver saw it; the rollout refuses the approval "
        "when it waits at another gate. None: whichever gate it waits at.",
    )
    region: str | None = Field(default=None, description="The gate's region, with ``wave``.")


class RegionSegment(Contract):
    """The targets of one region, ``start``..``end`` in the rollout's order."""

    region: str
    start: int
    end: int


class AwaitTargetInput(Contract):
    """Input of ``await_target``: a target workflow an earlier run of the rollout started."""

    workflow_id: str
    run_id: str | None = None


class RequestCancelInput(Contract):
    """Input of ``request_cancel``: the run of a rollout (or rollback) that asks to end Canceled."""

    workflow_id: str
    run_id: str | None = None


class TargetPage(Contract):
    """One page of a rollout's targets, stored as the input and result of a tiny workflow."""

    rollout_id: str
    page: int
    targets: list[MeshTarget]


class RolloutCarry(BaseModel):
    """State a rollout hands to its next run on continue-as-new."""

    model_config = ConfigDict(extra="ignore")  # a tolerant reader, as ``Contract``

    next_index: int = 0
    wave: int = 0
    state: RolloutState = RolloutState.RUNNING
    counts: OutcomeCounts = Field(default_factory=OutcomeCounts)
    failures: list[TargetFailure] = Field(default_factory=list)
    in_flight: dict[str, int] = Field(default_factory=dict)
    """Target workflow id -> target index, for every target started and not yet counted."""
    run_ids: dict[str, str] = Field(default_factory=dict)
    """Target workflow id -> run id, once its start is confirmed."""
    allowed_failures: int = 0
    started_at: str | None = None
    runs: int = 1
    written_by: str | None = None
    """The meshfleet version of the worker that continued the rollout as new; None: 0.1.0."""
    by_region: bool = False
    """Region order and budgets (``strategy.regions``) apply; False: written by a release, or a
    run, that walked the fleet without them, which the rest of the rollout keeps doing."""
    region_failed: dict[str, int] = Field(default_factory=dict)
    """Region -> failed targets of that region so far."""
    region_allowed: dict[str, int] = Field(default_factory=dict)
    """Region -> failures it tolerates, once ``resume`` granted it a fresh budget."""
    checks_passed: list[str] = Field(default_factory=list)
    """What already ran after the current wave finished: ``soak``, ``verify``, ``approval``."""
    soaking_until: str | None = None
    """While soaking: when the soak ends (ISO 8601, UTC), so the next run waits only the rest."""
    step_failed: list[int] = Field(default_factory=list)
    """Indexes of the current wave's targets that failed: verify does not read them again."""
    step_adopted: list[int] = Field(default_factory=list)
    """Indexes of the current wave's targets that were adopted, so a target verify finds broken
    moves out of the right count."""
    step_converged: dict[int, OutcomeKind] = Field(default_factory=dict)
    """Index -> ``updated`` or ``in_sync`` of the current wave's targets, for the same reason."""
    halted_region: str | None = None
    halt_reason: str | None = None
    approvals: list[Approval] = Field(default_factory=list)
    kept: list[KeptMesh] = Field(default_factory=list)
    """A rollback's meshes left alone, with why."""
    drift: list[DriftedMesh] = Field(default_factory=list)
    """Meshes found differing from the manifest so far (at most ``MAX_REPORTED_FAILURES``)."""
    upgrades: dict[int, UpgradedMesh] = Field(default_factory=dict)
    """Index -> the upgrade of every target the rollout created a task for: the only record of
    the task's id, which the finalize, the report and a rollback need."""
    finalize_order: list[int] = Field(default_factory=list)
    """The upgraded targets to finalize, by index, fixed when the finalize began."""
    finalize_next: int = 0
    """How many of ``finalize_order`` the finalize has started."""
    finalize_done: int = 0
    """How many of ``finalize_order`` have an outcome."""


ActionKind = Literal["create", "delete", "converge", "restore", "finalize"]
"""What a rollout does to each target's mesh (``meshfleet.contract.actions``)."""


class RolloutInput(Contract):
    """Input of ``MeshRolloutWorkflow``.

    Small fleets carry their targets inline; larger ones carry only ``total`` and the workflow
    loads ``PAGE_SIZE`` targets at a time with ``load_target_page``.
    """

    rollout_id: str
    action: ActionKind = Field(
        default="create", description="The change each target's mesh goes through."
    )
    strategy: RolloutStrategy = Field(default_factory=RolloutStrategy)
    total: int = Field(ge=1)
    targets: list[MeshTarget] | None = None
    page_size: int = PAGE_SIZE
    search_attributes: bool = True
    max_starts_per_run: int | None = Field(
        default=None, ge=1, description="Continue as new after this many starts (tests)."
    )
    continue_as_new_after_events: int | None = Field(
        default=None,
        ge=1,
        description="Continue as new once a run's history holds this many events; by default "
        "when Temporal suggests it (thousands of events).",
    )
    segments: list[RegionSegment] | None = Field(
        default=None,
        description="With strategy.regions: the targets grouped by region in its order, as the "
        "starter sorted them; None without regions.",
    )
    carry: RolloutCarry | None = None
