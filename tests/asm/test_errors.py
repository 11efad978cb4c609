"""What asking again can do about each ASM error, as its class says it for every caller."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

# Imported for its error classes: every AsmError subclass the client can raise is checked.
import meshfleet.asm.auth  # noqa: F401
from meshfleet.asm.errors import (
    AsmConnectionError,
    AsmError,
    AsmStatusError,
    AsmValidationError,
    error_from_response,
    status_error,
)


def _subclasses(cls: type[AsmError]) -> Iterator[type[AsmError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


ALL_CLASSES: list[type[AsmError]] = [AsmError, *_subclasses(AsmError)]
"""Every class of error the client raises."""


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=[c.__name__ for c in ALL_CLASSES])
def test_only_a_retryable_error_is_transient(cls: type[AsmError]) -> None:
    assert cls.retryable or not cls.transient


@pytest.mark.parametrize(
    ("status", "retryable", "transient"),
    [
        (400, False, False),
        (401, False, False),
        (403, False, False),
        (404, False, False),
        # Final or not depends on what stands in the way, which only create_mesh judges.
        (409, True, False),
        (429, True, True),
        (500, True, True),
        (502, True, True),
        (503, True, True),
        # An answer nobody expected: asked again, but a poll does not outlive it.
        (418, True, False),
        (302, True, False),
    ],
)
def test_each_status_says_whether_to_ask_again(
    status: int, retryable: bool, transient: bool
) -> None:
    err = status_error(status, "", "message")
    assert (err.retryable, err.transient) == (retryable, transient)


def test_no_answer_is_transient_and_a_refused_value_permanent() -> None:
    assert (AsmConnectionError("reset").retryable, AsmConnectionError("reset").transient) == (
        True,
        True,
    )
    refused = AsmValidationError("project_id must be 32 hex characters")
    assert (refused.retryable, refused.transient) == (False, False)
    # A 2xx body that is not a mesh: retried, not outlived.
    odd = AsmError("create mesh: unexpected response body")
    assert (odd.retryable, odd.transient, odd.retry_after) == (True, False, None)


def test_retry_after_is_carried_by_the_answer_that_sent_it() -> None:
    throttled = error_from_response(
        429, {"Retry-After": "7"}, b'{"error_code":"APIGW.0308","error_msg":"throttled"}'
    )
    assert (throttled.retry_after, throttled.transient) == (7.0, True)
    assert error_from_response(500, {}, b"").retry_after is None
    assert AsmConnectionError("timeout").retry_after is None


def test_the_answer_of_one_call_does_not_change_its_class() -> None:
    first = status_error(429, "ASM.01429001", "locked", retry_after=3)
    second = status_error(429, "ASM.01429001", "locked")
    assert isinstance(first, AsmStatusError)
    assert (first.retry_after, second.retry_after) == (3, None)
    assert type(first).retry_after is None
