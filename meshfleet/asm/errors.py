"""Errors of the ASM client: one base, connection failures, one class per meaningful status, and
the mapping from an error answer (of ASM, the API gateway or IAM) to its class.

Each class also says, once, what asking again can do about it (``retryable``, ``transient``,
``retry_after``), so that every caller retries the same errors: the client itself never does.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar


class AsmError(Exception):
    """Anything that went wrong talking to ASM.

    Attributes:
        retryable: Whether asking again may succeed. False where the request, the credentials or
            the project must change first; True otherwise, answers nobody expected included
            (another status, a 2xx body that is not a mesh).
        transient: Whether ASM was only busy, failing or out of reach for a moment (429, 5xx, no
            answer): the next call will likely get through, so a poll outlives it and reads
            again. Only a retryable error is transient.
        retry_after: Seconds the server asked to wait before the next call, when it said.
    """

    retryable: ClassVar[bool] = True
    transient: ClassVar[bool] = False
    retry_after: float | None = None


class AsmValidationError(AsmError, ValueError):
    """A value was refused before any request was sent (e.g. a project_id unfit for a URL path);
    permanent: the same value is refused again."""

    retryable = False


class AsmConnectionError(AsmError):
    """The request did not get an HTTP answer: refused, reset, DNS failure or timeout; transient."""

    transient = True


class AsmStatusError(AsmError):
    """ASM answered with a non-2xx status.

    Attributes:
        status: The HTTP status code.
        error_code: ``errorCode`` of the body, e.g. ``ASM.01010001`` (empty when absent).
        error_msg: ``errorMsg`` of the body, or a short excerpt of a non-JSON body.
        request_id: The ``X-Request-Id`` response header, for support tickets.
        retry_after: Seconds from a ``Retry-After`` header, when the server sent one.
    """

    def __init__(
        self,
        status: int,
        error_code: str,
        error_msg: str,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.error_code = error_code
        self.error_msg = error_msg
        self.request_id = request_id
        self.retry_after = retry_after
        super().__init__(self.describe())

    def describe(self) -> str:
        """One line for logs and reports: status, code, message and request id."""
        code = f" {self.error_code}" if self.error_code else ""
        rid = f" (request id {self.request_id})" if self.request_id else ""
        return f"HTTP {self.status}{code}: {self.error_msg}{rid}"


class AsmBadRequestError(AsmStatusError):
    """400: the request was invalid; permanent."""

    retryable = False


class AsmAuthenticationError(AsmStatusError):
    """401: the token or signature was refused; permanent for this run.

    The client has already asked once more with a fresh token where one could help; asking in a
    loop with a wrong password gets an IAM user locked.
    """

    retryable = False


class AsmForbiddenError(AsmStatusError):
    """403: the credentials may not do this; permanent."""

    retryable = False


class AsmNotFoundError(AsmStatusError):
    """404: no such mesh (or project, or API path); permanent: what is not there stays so.

    For one mesh by uid that is an answer, not a failure: a poll or a delete reads it as gone.
    """

    retryable = False


class AsmConflictError(AsmStatusError):
    """409: a mesh of that name exists, or a cluster already belongs to a mesh.

    Whether that is final depends on what stands in the way, which only a list of the project's
    meshes tells (``create_mesh`` judges it); a 409 on any other call is retried.
    """


class AsmThrottledError(AsmStatusError):
    """429: a resource lock or gateway throttling; transient."""

    transient = True


class AsmServerError(AsmStatusError):
    """5xx: ASM failed; transient, and the mesh may have been created anyway."""

    transient = True


_BY_STATUS: dict[int, type[AsmStatusError]] = {
    400: AsmBadRequestError,
    401: AsmAuthenticationError,
    403: AsmForbiddenError,
    404: AsmNotFoundError,
    409: AsmConflictError,
    429: AsmThrottledError,
}


def status_error(
    status: int,
    error_code: str,
    error_msg: str,
    request_id: str | None = None,
    retry_after: float | None = None,
) -> AsmStatusError:
    """The most specific error class for a status (5xx all map to ``AsmServerError``)."""
    cls = _BY_STATUS.get(status) or (AsmServerError if status >= 500 else AsmStatusError)
    return cls(status, error_code, error_msg, request_id, retry_after)


# A server asking for more than an hour is capped: the rollout's own timeouts take over.
MAX_RETRY_AFTER_S = 3600.0


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        # "inf" and "nan" parse as floats; neither is a delay a retry policy can use.
        return None if math.isnan(seconds) else min(max(0.0, seconds), MAX_RETRY_AFTER_S)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(0.0, (when - (now or datetime.now(UTC))).total_seconds()), MAX_RETRY_AFTER_S)


_EXCERPT_CHARS = 200


def excerpt(raw: bytes) -> str:
    """A body that is not the expected JSON, on one line and cut short, for an error message."""
    text = " ".join(raw.decode("utf-8", errors="replace").split())
    return text if len(text) <= _EXCERPT_CHARS else text[:_EXCERPT_CHARS] + "…"


def _error_fields(body: Any) -> tuple[str, str, str | None] | None:
    """(code, message, request id) from the error body shapes Huawei services use."""
    if not isinstance(body, dict):
        return None
    # ASM itself: {"errorCode", "errorMsg"}.
    if "errorCode" in body or "errorMsg" in body:
        return str(body.get("errorCode") or ""), str(body.get("errorMsg") or ""), None
    # The API gateway in front of every service (e.g. APIGW.0308 throttling) answers snake_case.
    if "error_code" in body or "error_msg" in body:
        rid = body.get("request_id")
        return (
            str(body.get("error_code") or ""),
            str(body.get("error_msg") or ""),
            str(rid) if rid else None,
        )
    # IAM (Keystone style): {"error": {"code": 401, "message": ..., "title": ...}}.
    inner = body.get("error")
    if isinstance(inner, dict):
        code = inner.get("code")
        message = inner.get("message") or inner.get("title") or ""
        return (str(code) if code is not None else ""), str(message), None
    return None


def error_from_response(
    status: int, headers: Mapping[str, str], raw: bytes, reason: str | None = None
) -> AsmStatusError:
    """The ``AsmStatusError`` subclass for a non-2xx answer, whatever the body looks like.

    Args:
        status: HTTP status code.
        headers: Response headers (``X-Request-Id``, ``Retry-After``).
        raw: The response body; JSON error bodies of ASM, the API gateway and IAM are understood,
            anything else becomes a short excerpt.
        reason: The HTTP reason phrase, used when the body is empty.
    """
    code, message, body_rid = "", "", None
    try:
        fields = _error_fields(json.loads(raw)) if raw else None
    except ValueError:
        fields = None
    if fields is not None:
        code, message, body_rid = fields
    else:
        message = excerpt(raw)
    if not message:
        message = reason or f"HTTP {status}"
    return status_error(
        status,
        code,
        message,
        headers.get("X-Request-Id") or body_rid,
        parse_retry_after(headers.get("Retry-After")),
    )
