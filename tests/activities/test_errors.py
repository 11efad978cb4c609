"""``application_error``: an ASM error as the ``ApplicationError`` an activity fails with, retried
as its class says and named as the workflows' retry policies and operators know it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from activities.errors import application_error
from meshfleet.asm.errors import (
    AsmConnectionError,
    AsmError,
    AsmStatusError,
    AsmValidationError,
    status_error,
)
from meshfleet.contract import failures as errors
from meshfleet.contract.failures import FailureDetails
from tests.asm.test_errors import ALL_CLASSES


def _instance(cls: type[AsmError]) -> AsmError:
    if issubclass(cls, AsmStatusError):
        return cls(599, "X.1", "message", "req-1", 5.0)
    return cls("message")


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=[c.__name__ for c in ALL_CLASSES])
def test_the_flag_and_the_type_agree_for_every_class(cls: type[AsmError]) -> None:
    # The workflows retry by type (NON_RETRYABLE_TYPES), Temporal by the flag: never one
    # without the other.
    failed = application_error(_instance(cls), attempt=1, action="call")
    assert failed.non_retryable == (not cls.retryable)
    assert (failed.type in errors.NON_RETRYABLE_TYPES) == failed.non_retryable


@pytest.mark.parametrize(
    ("status", "type_name", "non_retryable"),
    [
        (400, errors.BAD_REQUEST, True),
        (401, errors.AUTHENTICATION, True),
        (403, errors.FORBIDDEN, True),
        (404, errors.NOT_FOUND, True),
        (409, errors.TRANSIENT, False),
        (418, errors.TRANSIENT, False),
        (429, errors.TRANSIENT, False),
        (500, errors.TRANSIENT, False),
    ],
)
def test_a_status_fails_with_its_type_code_and_request_id(
    status: int, type_name: str, non_retryable: bool
) -> None:
    failed = application_error(
        status_error(status, "ASM.0101", "refused", "req-9"), attempt=2, action="delete mesh"
    )
    assert (failed.type, failed.non_retryable) == (type_name, non_retryable)
    assert FailureDetails.of(failed) == FailureDetails(
        error_code="ASM.0101", request_id="req-9", attempt=2, status=status
    )
    assert failed.message.startswith("delete mesh: ")
    assert f"HTTP {status} ASM.0101: refused (request id req-9)" in failed.message


def test_a_status_without_a_code_is_named_by_it() -> None:
    failed = application_error(status_error(502, "", "Bad Gateway"), attempt=1, action="list")
    details = FailureDetails.of(failed)
    assert details is not None and details.error_code == "HTTP502"


def test_retry_after_sets_the_next_delay_of_a_retryable_error_only() -> None:
    throttled = application_error(
        status_error(429, "ASM.01429001", "locked", retry_after=7), attempt=1, action="create"
    )
    assert throttled.next_retry_delay == timedelta(seconds=7)
    assert (
        application_error(
            status_error(503, "", "busy"), attempt=1, action="create"
        ).next_retry_delay
        is None
    )
    refused = application_error(
        status_error(400, "ASM.01010001", "bad", retry_after=7), attempt=1, action="create"
    )
    assert (refused.non_retryable, refused.next_retry_delay) == (True, None)


def test_no_answer_and_a_refused_value() -> None:
    unreachable = application_error(
        AsmConnectionError("GET /v1: no answer within 30 s"), attempt=4, action="show mesh"
    )
    assert (unreachable.type, unreachable.non_retryable) == (errors.TRANSIENT, False)
    assert unreachable.message == "show mesh: ASM unreachable: GET /v1: no answer within 30 s"
    assert FailureDetails.of(unreachable) == FailureDetails(error_code="ConnectionError", attempt=4)

    invalid = application_error(
        AsmValidationError("project_id must be 32 hex characters"), attempt=1, action="create mesh"
    )
    assert (invalid.type, invalid.non_retryable) == (errors.INVALID_TARGET, True)
    assert invalid.message == "create mesh: project_id must be 32 hex characters"
    assert FailureDetails.of(invalid) == FailureDetails(attempt=1)


def test_a_404_on_a_collection_names_the_project_or_path() -> None:
    failed = application_error(
        status_error(404, "APIGW.0101", "no API POST /x"), attempt=1, action="create mesh"
    )
    assert failed.message == (
        "create mesh: no such project or API path: HTTP 404 APIGW.0101: no API POST /x"
    )
