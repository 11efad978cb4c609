"""Failures that cross the activity boundary: their types, by name, and their structured details."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from temporalio.exceptions import ApplicationError

_Model = TypeVar("_Model", bound=BaseModel)

BAD_REQUEST = "AsmBadRequest"
AUTHENTICATION = "AsmAuthenticationFailed"
FORBIDDEN = "AsmForbidden"
CLUSTER_CONFLICT = "MeshClusterConflict"
NAME_CONFLICT = "MeshNameConflict"
MESH_FAILED = "MeshFailed"
MESH_VANISHED = "MeshVanished"
MESH_TIMEOUT = "MeshTimeout"
INVALID_TARGET = "InvalidTarget"
TARGET_VANISHED = "TargetWorkflowVanished"
# A 404 on a project's mesh collection (a create's POST, a list): no such project or API path.
NOT_FOUND = "AsmNotFound"
# A mesh the target would adopt, listed without a uid: nothing could poll it or delete it by uid.
MESH_WITHOUT_UID = "MeshWithoutUid"

# A mesh that exists differs from its target where the rollout requires a match; or a change
# meshfleet will not make (a downgrade), cannot make yet (a version upgrade), or cannot make now
# (the mesh is not Running: only a Running mesh takes a configuration change).
MESH_DRIFTED = "MeshDrifted"
UPGRADE_NOT_AVAILABLE = "UpgradeNotAvailable"
DOWNGRADE_REFUSED = "DowngradeRefused"
MESH_NOT_RUNNING = "MeshNotRunning"

# A version upgrade meshfleet refuses before it sends anything: a version no upgrade path leads
# to, one more than one canary upgrade away, or a mesh someone else's upgrade holds.
UPGRADE_OFF_PATH = "UpgradeOffPath"
UPGRADE_PATH_TOO_LONG = "UpgradePathTooLong"
MESH_UPGRADING = "MeshUpgrading"
# An upgrade step ASM ran and ended Failed; the message names the step and ASM's reason.
UPGRADE_STEP_FAILED = "UpgradeStepFailed"
# A create met 409 with no task id on record: a task of unknown id holds the mesh (no call lists
# a mesh's tasks), so it must be finished or rolled back in the console; never a second task.
UPGRADE_TASK_UNKNOWN = "UpgradeTaskUnknown"
# A rollback of an upgrade ASM ran and ended Failed (the mesh is RollbackFailed).
UPGRADE_ROLLBACK_FAILED = "UpgradeRollbackFailed"

# Retrying these cannot help: the request, the credentials or the mesh itself must change first.
NON_RETRYABLE_TYPES = (
    BAD_REQUEST,
    AUTHENTICATION,
    FORBIDDEN,
    CLUSTER_CONFLICT,
    NAME_CONFLICT,
    MESH_FAILED,
    MESH_VANISHED,
    MESH_TIMEOUT,
    INVALID_TARGET,
    TARGET_VANISHED,
    NOT_FOUND,
    MESH_WITHOUT_UID,
    MESH_DRIFTED,
    UPGRADE_NOT_AVAILABLE,
    DOWNGRADE_REFUSED,
    MESH_NOT_RUNNING,
    UPGRADE_OFF_PATH,
    UPGRADE_PATH_TOO_LONG,
    MESH_UPGRADING,
    UPGRADE_STEP_FAILED,
    UPGRADE_TASK_UNKNOWN,
    UPGRADE_ROLLBACK_FAILED,
)

# What verify found where a Running mesh should be: gone, or in another phase (Mesh<phase>).
MESH_GONE = "MeshGone"


def mesh_seen_in(phase: str | None) -> str:
    """The error code of a mesh verify read again in ``phase`` instead of Running."""
    return f"Mesh{phase}" if phase else "MeshWithoutPhase"


TRANSIENT = "AsmTransient"
TARGET_STILL_RUNNING = "TargetStillRunning"

# How a mesh's workflow ends when its target failed, when no error code names the failure.
TARGET_FAILED = "TargetFailed"
# How a rollout's and a rollback's workflow end when they ended ``failed`` (over a budget).
ROLLOUT_FAILED = "RolloutFailed"
ROLLBACK_FAILED = "RollbackFailed"


def failure_type(cause: BaseException | None, default: str = "Error") -> str:
    """The name a failure goes by: an ``ApplicationError``'s own type, else its class name."""
    if isinstance(cause, ApplicationError) and cause.type:
        return cause.type
    return type(cause).__name__ if cause is not None else default


class FailureDetails(BaseModel):
    """The structured part of an activity failure, which the workflow copies into the outcome.

    It travels as the first detail of the ``ApplicationError``, a JSON object with these keys;
    histories written before this model existed hold the same object, built as a plain dict.
    """

    # A tolerant reader, as the payloads: keys a newer release adds are ignored.
    model_config = ConfigDict(extra="ignore", frozen=True)

    error_code: str | None = None
    request_id: str | None = None
    attempt: int = 0
    phase: str | None = None
    status: int | None = None

    @classmethod
    def of(cls, cause: BaseException | None) -> FailureDetails | None:
        """The details an activity attached to its failure, or None when it attached none.

        Never raises: this runs inside workflow code, where an exception would fail the
        workflow task, and a target with unreadable details still fails by its type.
        """
        return carried(cause, cls)


def carried(cause: BaseException | None, model: type[_Model]) -> _Model | None:
    """The ``model`` a failure carries as its first detail, or None.

    An activity's failure carries its ``FailureDetails`` there; a mesh's workflow whose target
    failed ends Failed with the ``TargetOutcome`` there, and a rollout that ended ``failed`` with
    its ``RolloutProgress``: readers get the same value a completed workflow returns. Never
    raises (it also runs inside workflow code).
    """
    if not isinstance(cause, ApplicationError) or not cause.details:
        return None
    first = cause.details[0]
    if isinstance(first, model):
        return first
    if not isinstance(first, dict):
        return None
    try:
        return model.model_validate(first)
    except ValidationError:
        return None
