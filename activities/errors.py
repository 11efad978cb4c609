"""Turn ASM client errors into Temporal ``ApplicationError``s: retryable or not, and why."""

from __future__ import annotations

from datetime import timedelta

import structlog
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from meshfleet.asm.errors import (
    AsmAuthenticationError,
    AsmBadRequestError,
    AsmConnectionError,
    AsmError,
    AsmForbiddenError,
    AsmNotFoundError,
    AsmStatusError,
    AsmValidationError,
)
from meshfleet.contract import failures as errors
from meshfleet.contract.failures import FailureDetails

log = structlog.get_logger("meshfleet.activities")


def failure(
    message: str,
    details: FailureDetails,
    *,
    type: str,
    non_retryable: bool = False,
    next_retry_delay: timedelta | None = None,
) -> ApplicationError:
    """An activity failure, logged once here with the activity's bound context.

    Marked benign: each is an expected outcome (a target's failure or a retry), so the SDK's
    own warning with a traceback would only repeat this line as noise.
    """
    fields = details.model_dump()
    log.warning(message, error_type=type, retryable=not non_retryable, **fields)
    # Sent as the plain JSON object, whatever data converter the worker was given.
    return ApplicationError(
        message,
        fields,
        type=type,
        non_retryable=non_retryable,
        next_retry_delay=next_retry_delay,
        category=ApplicationErrorCategory.BENIGN,
    )


def application_error(exc: AsmError, *, attempt: int, action: str) -> ApplicationError:
    """The ``ApplicationError`` for an ASM failure during ``action``.

    400, 401, 403 and 404 cannot be fixed by retrying; 429, 5xx, other statuses and connection
    failures can, and a ``Retry-After`` from the server sets the next delay. A 404 that reaches
    here was answered for a project's mesh collection (``POST`` or ``GET
    /v1/{project_id}/meshes``): the project, or the API path, does not exist. A 404 for one
    mesh by uid means it is gone, which its callers handle before this.
    """
    if isinstance(exc, AsmValidationError):
        return failure(
            f"{action}: {exc}",
            FailureDetails(attempt=attempt),
            type=errors.INVALID_TARGET,
            non_retryable=True,
        )
    if isinstance(exc, AsmConnectionError):
        return failure(
            f"{action}: ASM unreachable: {exc}",
            FailureDetails(attempt=attempt, error_code="ConnectionError"),
            type=errors.TRANSIENT,
        )
    if isinstance(exc, AsmStatusError):
        details = FailureDetails(
            attempt=attempt,
            error_code=exc.error_code or f"HTTP{exc.status}",
            request_id=exc.request_id,
            status=exc.status,
        )
        permanent = {
            AsmBadRequestError: errors.BAD_REQUEST,
            AsmAuthenticationError: errors.AUTHENTICATION,
            AsmForbiddenError: errors.FORBIDDEN,
        }
        if isinstance(exc, AsmNotFoundError):
            return failure(
                f"{action}: no such project or API path: {exc.describe()}",
                details,
                type=errors.NOT_FOUND,
                non_retryable=True,
            )
        for cls, type_name in permanent.items():
            if isinstance(exc, cls):
                return failure(
                    f"{action}: {exc.describe()}", details, type=type_name, non_retryable=True
                )
        return failure(
            f"{action}: {exc.describe()}",
            details,
            type=errors.TRANSIENT,
            next_retry_delay=(
                timedelta(seconds=exc.retry_after) if exc.retry_after is not None else None
            ),
        )
    return failure(f"{action}: {exc}", FailureDetails(attempt=attempt), type=errors.TRANSIENT)
