"""Turn ASM client errors into Temporal ``ApplicationError``s: retryable or not, and why.

Whether an ASM error is retried is its class's to say (``meshfleet/asm/errors.py``); this is the
one place that says what it is called across the activity boundary.
"""

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


# The failure type of an ASM error, by its class; any other is ``AsmTransient``. Each type
# here is in ``NON_RETRYABLE_TYPES``, as each class here is permanent: the workflows' retry
# policies and the errors' own flag agree.
FAILURE_TYPES: tuple[tuple[type[AsmError], str], ...] = (
    (AsmValidationError, errors.INVALID_TARGET),
    (AsmBadRequestError, errors.BAD_REQUEST),
    (AsmAuthenticationError, errors.AUTHENTICATION),
    (AsmForbiddenError, errors.FORBIDDEN),
    (AsmNotFoundError, errors.NOT_FOUND),
)


def failure_type_of(exc: AsmError) -> str:
    """The ``ApplicationError`` type an ASM error fails an activity with."""
    return next((name for cls, name in FAILURE_TYPES if isinstance(exc, cls)), errors.TRANSIENT)


def application_error(exc: AsmError, *, attempt: int, action: str) -> ApplicationError:
    """The ``ApplicationError`` for an ASM failure during ``action``.

    Retryable as the error's class says (``AsmError.retryable``), after the server's
    ``Retry-After`` when it sent one. A 404 that reaches here was answered for a project's mesh
    collection (``POST`` or ``GET /v1/{project_id}/meshes``): the project, or the API path, does
    not exist. A 404 for one mesh by uid means it is gone, which its callers handle before this.
    """
    if isinstance(exc, AsmStatusError):
        details = FailureDetails(
            attempt=attempt,
            error_code=exc.error_code or f"HTTP{exc.status}",
            request_id=exc.request_id,
            status=exc.status,
        )
        what = exc.describe()
        if isinstance(exc, AsmNotFoundError):
            what = f"no such project or API path: {what}"
    elif isinstance(exc, AsmConnectionError):
        details = FailureDetails(attempt=attempt, error_code="ConnectionError")
        what = f"ASM unreachable: {exc}"
    else:
        details = FailureDetails(attempt=attempt)
        what = str(exc)
    delay = exc.retry_after if exc.retryable else None
    return failure(
        f"{action}: {what}",
        details,
        type=failure_type_of(exc),
        non_retryable=not exc.retryable,
        next_retry_delay=timedelta(seconds=delay) if delay is not None else None,
    )
