"""Turn ASM client errors into Temporal ``ApplicationError``s: retryable or not, and why."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.exceptions import ApplicationError

from asm.errors import (
    AsmAuthenticationError,
    AsmBadRequestError,
    AsmConnectionError,
    AsmError,
    AsmForbiddenError,
    AsmStatusError,
    AsmValidationError,
)
from meshfleet import errors


def failure_details(
    *,
    attempt: int,
    error_code: str | None = None,
    request_id: str | None = None,
    phase: str | None = None,
    status: int | None = None,
) -> dict[str, Any]:
    """The structured part of an activity failure that the workflow copies into the outcome."""
    return {
        "error_code": error_code,
        "request_id": request_id,
        "attempt": attempt,
        "phase": phase,
        "status": status,
    }


def application_error(exc: AsmError, *, attempt: int, action: str) -> ApplicationError:
    """The ``ApplicationError`` for an ASM failure during ``action``.

    400, 401 and 403 cannot be fixed by retrying; 429, 5xx, other statuses and connection
    failures can, and a ``Retry-After`` from the server sets the next delay.
    """
    if isinstance(exc, AsmValidationError):
        return ApplicationError(
            f"{action}: {exc}",
            failure_details(attempt=attempt),
            type=errors.INVALID_TARGET,
            non_retryable=True,
        )
    if isinstance(exc, AsmConnectionError):
        return ApplicationError(
            f"{action}: ASM unreachable: {exc}",
            failure_details(attempt=attempt, error_code="ConnectionError"),
            type=errors.TRANSIENT,
        )
    if isinstance(exc, AsmStatusError):
        details = failure_details(
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
        for cls, type_name in permanent.items():
            if isinstance(exc, cls):
                return ApplicationError(
                    f"{action}: {exc.describe()}", details, type=type_name, non_retryable=True
                )
        return ApplicationError(
            f"{action}: {exc.describe()}",
            details,
            type=errors.TRANSIENT,
            next_retry_delay=(
                timedelta(seconds=exc.retry_after) if exc.retry_after is not None else None
            ),
        )
    return ApplicationError(
        f"{action}: {exc}", failure_details(attempt=attempt), type=errors.TRANSIENT
    )
