"""Failure details and failed outcomes: what activities send, workflows read and reports show."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from temporalio.api.failure.v1 import Failure
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError, TerminatedError

from activities.errors import application_error, failure
from meshfleet.asm.errors import AsmBadRequestError
from meshfleet.contract import failures as errors
from meshfleet.contract.failures import FailureDetails, failure_type
from meshfleet.contract.payloads import CREATE_MESH_WORKFLOW, CreateMeshInput
from meshfleet.models import TargetFailure, TargetOutcome
from tests.helpers.fleet import SAMPLE_TARGET
from tests.helpers.paths import REPO

HISTORIES = REPO / "tests" / "histories"

TARGET = SAMPLE_TARGET


async def _encoded(err: BaseException) -> Failure:
    proto = Failure()
    await pydantic_data_converter.encode_failure(err, proto)
    return proto


async def _received(proto: Failure) -> BaseException:
    # As a workflow gets it: decoded with no type hints, so details arrive as plain JSON values.
    copy = Failure()
    copy.CopyFrom(proto)
    return await pydantic_data_converter.decode_failure(copy)


async def test_details_an_activity_sends_are_the_details_the_workflow_reads() -> None:
    sent = application_error(
        AsmBadRequestError(400, "ASM.01010001", "unsupported version", request_id="req-1"),
        attempt=3,
        action="create mesh",
    )
    received = await _received(await _encoded(sent))
    assert isinstance(received, ApplicationError)
    assert (received.type, received.non_retryable) == (errors.BAD_REQUEST, True)
    assert FailureDetails.of(received) == FailureDetails(
        error_code="ASM.01010001", request_id="req-1", attempt=3, status=400
    )


async def test_details_travel_as_the_json_object_release_0_1_0_wrote() -> None:
    # Histories of 0.1.0 hold this object (keys in this order), written from a dict: a worker
    # of either release must read what the other wrote.
    sent = failure(
        "mesh mesh-a not Running by its deadline",
        FailureDetails(attempt=2, error_code="Timeout", phase="Creating"),
        type=errors.MESH_TIMEOUT,
        non_retryable=True,
    )
    [payload] = (await _encoded(sent)).application_failure_info.details.payloads
    assert payload.data == (
        b'{"error_code":"Timeout","request_id":null,"attempt":2,"phase":"Creating","status":null}'
    )


@pytest.mark.parametrize(
    "cause",
    [
        None,
        TerminatedError("terminated"),
        ApplicationError("no details", type=errors.TARGET_VANISHED),
        ApplicationError("not an object", "CreateFailed", type=errors.MESH_FAILED),
        ApplicationError("a foreign shape", {"attempt": "many"}, type=errors.MESH_FAILED),
    ],
    ids=["none", "not-an-application-error", "no-details", "not-an-object", "unreadable"],
)
def test_a_failure_without_readable_details_reads_as_none(cause: BaseException | None) -> None:
    # Read inside workflow code: raising would fail the workflow task instead of the target.
    assert FailureDetails.of(cause) is None


def test_details_a_newer_release_extends_are_still_read() -> None:
    cause = ApplicationError(
        "x", {"error_code": "E", "attempt": 1, "retry_hint": "later"}, type=errors.TRANSIENT
    )
    assert FailureDetails.of(cause) == FailureDetails(error_code="E", attempt=1)


@dataclass(frozen=True)
class RecordedFailure:
    """An activity failure in a recorded history, and what the workflow made of it."""

    name: str
    failure: Failure
    local: bool
    inp: CreateMeshInput
    outcome: TargetOutcome


def _recorded_failures() -> Iterator[RecordedFailure]:
    for path in sorted(HISTORIES.glob("*/*.json")):
        if path.name == "index.json":
            continue
        history = WorkflowHistory.from_json(path.stem, path.read_text())
        started = history.events[0].workflow_execution_started_event_attributes
        if started.workflow_type.name != CREATE_MESH_WORKFLOW:
            continue
        failures: list[tuple[Failure, bool]] = []
        result = None
        for event in history.events:
            if event.marker_recorded_event_attributes.HasField("failure"):
                failures.append((event.marker_recorded_event_attributes.failure, True))
            if event.activity_task_failed_event_attributes.HasField("failure"):
                failures.append((event.activity_task_failed_event_attributes.failure, False))
            if event.HasField("workflow_execution_completed_event_attributes"):
                result = event.workflow_execution_completed_event_attributes.result
            if event.HasField("workflow_execution_failed_event_attributes"):
                # From 0.2.0 a failed target's workflow ends Failed, its outcome the first detail.
                failed = event.workflow_execution_failed_event_attributes.failure
                result = failed.application_failure_info.details
        if not failures:
            continue
        assert result is not None, path
        inp = CreateMeshInput.model_validate_json(started.input.payloads[0].data)
        outcome = TargetOutcome.model_validate_json(result.payloads[0].data)
        name = f"{path.parent.name}/{path.name}"
        for proto, local in failures:
            yield RecordedFailure(name, proto, local, inp, outcome)


RECORDED = list(_recorded_failures())


def test_the_recorded_histories_hold_failures_of_both_activities() -> None:
    assert {r.local for r in RECORDED} == {True, False}
    assert {r.outcome.error_code for r in RECORDED} >= {"ASM.01010003", "CreateFailed", "Timeout"}


@pytest.mark.parametrize("recorded", RECORDED, ids=[r.name for r in RECORDED])
async def test_recorded_details_read_as_the_recording_release_read_them(
    recorded: RecordedFailure,
) -> None:
    received = await _received(recorded.failure)
    assert isinstance(received, ApplicationError)
    details = FailureDetails.of(received)
    assert details is not None
    # Nothing the activity wrote is lost or read differently.
    written = json.loads(recorded.failure.application_failure_info.details.payloads[0].data)
    assert details.model_dump() == written
    outcome = recorded.outcome
    assert outcome.outcome == "failed"
    assert outcome.error_code == (details.error_code or failure_type(received))
    assert outcome.message == received.message
    if details.phase:
        assert outcome.phase == details.phase
    if recorded.local:
        # A failed poll reports the create's attempts; a failed create its own.
        assert outcome.attempts == details.attempt
    rebuilt = TargetOutcome.failed(
        recorded.inp.target,
        outcome.error_code,
        outcome.message,
        workflow_id=outcome.workflow_id,
        phase=outcome.phase,
        attempts=outcome.attempts,
        seconds=outcome.seconds,
    )
    assert rebuilt == outcome.model_copy(update={"uid": None})


def test_a_failed_outcome_names_its_target_and_why() -> None:
    outcome = TargetOutcome.failed(TARGET, "MeshBusy", "another rollout is driving this mesh")
    assert outcome.model_dump() == {
        "workflow_id": "mesh/ap-southeast-3/0123456789abcdef0123456789abcdef/mesh-a",
        "project_id": TARGET.project_id,
        "region": "ap-southeast-3",
        "cluster_id": "cluster-a",
        "mesh_name": "mesh-a",
        "outcome": "failed",
        "uid": None,
        "phase": None,
        "error_code": "MeshBusy",
        "message": "another rollout is driving this mesh",
        "attempts": 0,
        "polls": 0,
        "seconds": 0.0,
        "drift": [],
        "config_before": None,
        "upgrade": None,
    }
    assert not outcome.succeeded
    assert TargetFailure.of(outcome) == TargetFailure(
        project_id=TARGET.project_id,
        region="ap-southeast-3",
        cluster_id="cluster-a",
        mesh_name="mesh-a",
        error_code="MeshBusy",
        message="another rollout is driving this mesh",
    )


def test_a_failed_outcome_keeps_the_workflow_that_drove_it_and_how_far_it_got() -> None:
    outcome = TargetOutcome.failed(
        TARGET,
        "CreateFailed",
        "mesh mesh-a ended in phase CreateFailed",
        workflow_id="started-by-hand",
        phase="CreateFailed",
        attempts=2,
        seconds=41.5,
    )
    assert (outcome.workflow_id, outcome.phase, outcome.attempts, outcome.seconds) == (
        "started-by-hand",
        "CreateFailed",
        2,
        41.5,
    )
    assert (outcome.uid, outcome.polls) == (None, 0)
