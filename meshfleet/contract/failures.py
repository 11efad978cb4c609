"""Error types that cross the activity boundary, by name, so workflows can tell them apart."""

from __future__ import annotations

from temporalio.exceptions import ApplicationError

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
)

TRANSIENT = "AsmTransient"
TARGET_STILL_RUNNING = "TargetStillRunning"


def failure_type(cause: BaseException | None, default: str = "Error") -> str:
    """The name a failure goes by: an ``ApplicationError``'s own type, else its class name."""
    if isinstance(cause, ApplicationError) and cause.type:
        return cause.type
    return type(cause).__name__ if cause is not None else default
