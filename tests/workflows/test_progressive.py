"""Progressive delivery at the workflow level: soak, verify, approval gates, regions in order.

The real ``MeshRolloutWorkflow`` and ``CreateMeshWorkflow`` on a worker of the session's dev
server, with the stub ASM activities of ``test_rollout_logic`` (each create held until the test
releases it) and a stub ``verify_wave`` that answers what each test tells it. Soaks are short or
cancelled; nothing waits on the wall clock beyond a soak a test asked for.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from activities.targets import TargetWatchActivities
from meshfleet.contract.payloads import (
    APPROVE_UPDATE,
    CANCEL_UPDATE,
    PAUSE_UPDATE,
    PROGRESS_QUERY,
    RESUME_UPDATE,
    VERIFY_WAVE,
    ApproveInput,
    RegionSegment,
    VerifiedFailure,
    VerifyWaveInput,
    VerifyWaveResult,
    WebhookVerdict,
)
from meshfleet.models import MeshTarget, RolloutProgress, RolloutState
from meshfleet.rollouts import final_report
from tests.helpers.fleet import REGIONS, names, unique_fleet
from tests.helpers.rollout_stubs import REFUSED_CODE, StubMeshApi, start, started, update
from tests.helpers.rollout_watch import (
    WAIT_S,
    at_rest,
    progress_reaches,
    run_start,
    runs,
    state_is,
)
from workflows.create_mesh import CreateMeshWorkflow
from workflows.rollout import MeshRolloutWorkflow

WEBHOOK = "https://hooks.example.test/verify"


@dataclass
class StubVerify:
    """``verify_wave`` as the workflow calls it: records each call, answers as told."""

    calls: list[VerifyWaveInput] = field(default_factory=list)
    broken: dict[int, str] = field(default_factory=dict)
    """Target index -> error code verify reports for it (when in the wave and not skipped)."""
    webhook: WebhookVerdict | None = None
    error: str | None = None
    """Once set, every call fails permanently with this message."""

    @activity.defn(name=VERIFY_WAVE)
    async def verify_wave(self, inp: VerifyWaveInput) -> VerifyWaveResult:
        self.calls.append(inp)
        if self.error is not None:
            raise ApplicationError(self.error, type="VerifyUnreachable", non_retryable=True)
        indexes = [i for i in range(inp.start, inp.end) if i not in inp.skip]
        failures = [
            VerifiedFailure(index=i, error_code=code, message=f"mesh {i} is {code}")
            for i, code in sorted(self.broken.items())
            if i in indexes
        ]
        return VerifyWaveResult(
            checked=len(indexes),
            failures=failures,
            webhook=self.webhook if inp.webhook is not None else None,
        )


@dataclass
class Stubs:
    api: StubMeshApi
    verify: StubVerify


@pytest.fixture
async def stubs(client: Client, task_queue: str) -> AsyncIterator[Stubs]:
    """A worker of the real workflows with the stub activities, on this test's task queue."""
    stubs = Stubs(StubMeshApi(), StubVerify())
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[MeshRolloutWorkflow, CreateMeshWorkflow],
        activities=[
            stubs.api.create_mesh,
            stubs.api.wait_for_mesh,
            stubs.verify.verify_wave,
            TargetWatchActivities(client).await_target,
            TargetWatchActivities(client).request_cancel,
        ],
    )
    async with worker:
        try:
            yield stubs
        finally:
            stubs.api.release_all()  # a held stub would keep the worker from shutting down


def regional_fleet(*sizes: int) -> tuple[list[MeshTarget], list[RegionSegment]]:
    """Targets sorted by region (REGIONS in order, ``sizes[i]`` each), and their segments."""
    targets: list[MeshTarget] = []
    segments: list[RegionSegment] = []
    for region, size in zip(REGIONS, sizes, strict=False):
        start = len(targets)
        targets += unique_fleet(size, f"prog-{region[-1]}", first=start, region=region)
        segments.append(RegionSegment(region=region, start=start, end=len(targets)))
    return targets, segments


async def approve(handle: WorkflowHandle[Any, RolloutProgress], by: str | None) -> RolloutProgress:
    result: RolloutProgress = await handle.execute_update(
        APPROVE_UPDATE, ApproveInput(by=by), result_type=RolloutProgress
    )
    return result


async def refusal(handle: WorkflowHandle[Any, RolloutProgress], name: str, *args: Any) -> str:
    """The reason the workflow gives for refusing update ``name``."""
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(name, *args, result_type=RolloutProgress)
    cause = refused.value.cause
    assert isinstance(cause, ApplicationError), cause
    return cause.message


async def details(handle: WorkflowHandle[Any, RolloutProgress]) -> str:
    """What the Temporal UI shows as the rollout's current details."""
    meta = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    text: str = meta.current_details
    return text


# --- soak ----------------------------------------------------------------------------------------


async def test_a_soak_holds_the_next_wave_and_says_until_when(
    client: Client, task_queue: str, stubs: Stubs
) -> None:
    targets = unique_fleet(4)
    n = names(targets)
    handle = await start(client, task_queue, targets, waves=[1, "100%"], soak_s=2)
    await started(stubs.api, n[:1])
    stubs.api.release(n[0])

    soaking = await progress_reaches(handle, state_is(RolloutState.SOAKING), "a soak")
    assert soaking.soaking_until is not None
    left = datetime.fromisoformat(soaking.soaking_until) - datetime.now(UTC)
    assert 0 < left.total_seconds() <= 2.5
    assert (soaking.created, soaking.wave, soaking.in_flight) == (1, 1, 0)
    assert f"soaking until {soaking.soaking_until}" in await details(handle)
    assert stubs.api.started() == n[:1], "a wave started during the soak"

    await started(stubs.api, n)  # the soak ends by itself
    after = await progress_reaches(handle, lambda p: p.wave == 2, "the second wave")
    assert (after.state, after.soaking_until) == (RolloutState.RUNNING, None)
    assert datetime.now(UTC) >= datetime.fromisoformat(soaking.soaking_until)
    stubs.api.release_all()
    report = await final_report(handle)
    assert (report.state, report.created) == (RolloutState.COMPLETED, 4)
    # One durable timer, after the first wave only: none after the last.
    events = (await handle.fetch_history()).events
    assert sum(e.event_type == EventType.EVENT_TYPE_TIMER_FIRED for e in events) == 1


async def test_cancel_ends_a_soak_at_once(client: Client, task_queue: str, stubs: Stubs) -> None:
    targets = unique_fleet(3)
    n = names(targets)
    handle = await start(client, task_queue, targets, waves=[1, "100%"], soak_s=3600)
    stubs.api.release(n[0])
    await progress_reaches(handle, state_is(RolloutState.SOAKING), "an hour's soak")
    refused = await refusal(handle, PAUSE_UPDATE)
    assert refused.startswith("rollout is soaking: nothing starts before"), refused

    began = time.monotonic()
    await update(handle, CANCEL_UPDATE)
    report = await final_report(handle)
    assert time.monotonic() - began < WAIT_S
    assert (report.state, report.created, report.cancelled) == (RolloutState.CANCELLED, 1, 2)
    assert stubs.api.started() == n[:1]


# --- verify --------------------------------------------------------------------------------------


async def test_verify_failures_count_against_the_budget_and_halt(
    client: Client, task_queue: str, stubs: Stubs
) -> None:
    targets = unique_fleet(5)
    n = names(targets)
    stubs.api.refused = {n[0]}
    stubs.verify.broken = {1: "MeshGone", 0: "MeshGone"}  # 0 failed already: skipped
    stubs.api.release_all()
    handle = await start(client, task_queue, targets, waves=[3, "100%"], max_failures=1, verify={})

    halted = await progress_reaches(handle, state_is(RolloutState.HALTED), "a halt after verify")
    # The refused create fit the budget; the mesh verify found gone did not.
    assert (halted.created, halted.failed, halted.pending) == (1, 2, 2)
    assert halted.halt_reason is None
    assert [(f.mesh_name, f.error_code) for f in halted.failures] == [
        (n[0], REFUSED_CODE),
        (n[1], "MeshGone"),
    ]
    (call,) = stubs.verify.calls
    assert (call.wave, call.start, call.end, call.skip, call.webhook) == (1, 0, 3, [0], None)
    assert call.targets == targets[:3]
    assert sorted(stubs.api.started()) == sorted(n[:3])

    await update(handle, RESUME_UPDATE)
    report = await final_report(handle)
    assert (report.state, report.created, report.failed) == (RolloutState.COMPLETED, 3, 2)
    assert len(stubs.verify.calls) == 1, "verify ran after the last wave or twice"


@pytest.mark.parametrize("how", ["webhook", "activity-error"])
async def test_a_failed_verify_halts_with_the_reason(
    client: Client, task_queue: str, stubs: Stubs, how: str
) -> None:
    targets = unique_fleet(3)
    n = names(targets)
    if how == "webhook":
        stubs.verify.webhook = WebhookVerdict(passed=False, status=503, excerpt="error rate 40%")
        expected = "verify webhook answered 503: error rate 40%"
    else:
        stubs.verify.error = "ASM API unreachable"
        expected = "verify_wave failed: VerifyUnreachable: ASM API unreachable"
    stubs.api.release_all()
    handle = await start(
        client, task_queue, targets, waves=[1, "100%"], verify={"webhook": WEBHOOK}
    )

    halted = await progress_reaches(handle, state_is(RolloutState.HALTED), "a halt")
    assert halted.halt_reason == expected
    assert (halted.created, halted.failed, halted.pending) == (1, 0, 2)
    assert stubs.verify.calls[0].webhook == WEBHOOK
    assert expected in await details(handle)
    assert stubs.api.started() == n[:1]

    await update(handle, CANCEL_UPDATE)
    report = await final_report(handle)
    assert (report.state, report.cancelled) == (RolloutState.CANCELLED, 2)


@pytest.mark.parametrize("how", ["webhook", "activity-error"])
async def test_resume_after_a_failed_verify_verifies_the_wave_again(
    client: Client, task_queue: str, stubs: Stubs, how: str
) -> None:
    targets = unique_fleet(3)
    if how == "webhook":
        stubs.verify.webhook = WebhookVerdict(passed=False, status=500, excerpt="probes failed")
    else:
        stubs.verify.error = "ASM API unreachable"
    stubs.api.release_all()
    handle = await start(
        client, task_queue, targets, waves=[1, "100%"], verify={"webhook": WEBHOOK}
    )
    await progress_reaches(handle, state_is(RolloutState.HALTED), "a halt")
    calls = len(stubs.verify.calls)

    # The cause is fixed; resume asks again, and only a yes lets wave 2 start.
    stubs.verify.webhook = WebhookVerdict(passed=True, status=200, excerpt="ok")
    stubs.verify.error = None
    await update(handle, RESUME_UPDATE)
    report = await final_report(handle)

    assert len(stubs.verify.calls) == calls + 1
    assert stubs.verify.calls[-1].wave == 1
    assert (report.state, report.created, report.halt_reason) == (RolloutState.COMPLETED, 3, None)


# --- approval gates ------------------------------------------------------------------------------


async def test_an_approval_gate_waits_for_approve_and_records_who(
    client: Client, task_queue: str, stubs: Stubs
) -> None:
    targets = unique_fleet(4)
    n = names(targets)
    handle = await start(client, task_queue, targets, waves=[1, 2, "100%"], approve_after=[1, 3])
    stubs.api.release(n[0])

    gate = await progress_reaches(handle, state_is(RolloutState.AWAITING_APPROVAL), "the gate")
    assert (gate.wave, gate.created, gate.approvals) == (1, 1, [])
    assert stubs.api.started() == n[:1]
    assert "awaiting approval after wave 1/3" in await details(handle)
    assert "nothing starts until `approve`" in await refusal(handle, PAUSE_UPDATE)
    assert "nothing starts until `approve`" in await refusal(handle, RESUME_UPDATE)

    opened = await approve(handle, "alice")
    assert opened.state == RolloutState.RUNNING
    (approval,) = opened.approvals
    assert (approval.wave, approval.region, approval.by) == (1, None, "alice")
    stubs.api.release_all()
    report = await final_report(handle)

    # Wave 2 is not in approve_after, and wave 3 is the last: no gate after either.
    assert (report.state, report.created) == (RolloutState.COMPLETED, 4)
    assert [a.by for a in report.approvals] == ["alice"]


async def test_approve_is_refused_unless_the_rollout_awaits_it(
    client: Client, task_queue: str, stubs: Stubs
) -> None:
    targets = unique_fleet(2)
    handle = await start(client, task_queue, targets, waves=[1, "100%"], approve_after=[1])
    await started(stubs.api, names(targets)[:1])

    reason = await refusal(handle, APPROVE_UPDATE, ApproveInput(by="eager"))
    assert reason == "rollout is running, not awaiting approval"
    stubs.api.release_all()
    await progress_reaches(handle, state_is(RolloutState.AWAITING_APPROVAL), "the gate")
    # An approval of another gate than the one it waits at opens nothing.
    reason = await refusal(handle, APPROVE_UPDATE, ApproveInput(by="late", wave=2))
    assert reason == "the rollout waits after wave 1, not after wave 2: nothing approved"
    await approve(handle, None)
    report = await final_report(handle)
    assert [a.by for a in report.approvals] == ["unknown"]


async def test_continue_as_new_carries_the_gate_and_its_approvals(
    client: Client, task_queue: str, stubs: Stubs
) -> None:
    targets = unique_fleet(3)
    n = names(targets)
    # One start per run: the first run hands over with the canary in flight.
    handle = await start(
        client,
        task_queue,
        targets,
        waves=[1, 2, "100%"],
        window=1,
        approve_after=[1, 2],
        max_starts_per_run=1,
    )
    await started(stubs.api, n[:1])
    stubs.api.release(n[0])
    first = await progress_reaches(handle, state_is(RolloutState.AWAITING_APPROVAL), "gate 1")
    assert await runs(client, handle.id, at_least=2) >= 2
    assert (first.wave, first.created) == (1, 1)

    await approve(handle, "alice")
    await started(stubs.api, n[:2])  # whose start hands over to a third run
    stubs.api.release(n[1])
    second = await progress_reaches(
        handle, lambda p: p.state == RolloutState.AWAITING_APPROVAL and p.wave == 2, "gate 2"
    )
    assert await runs(client, handle.id, at_least=3) >= 3
    assert [(a.wave, a.by) for a in second.approvals] == [(1, "alice")]
    assert stubs.api.started() == n[:2]

    await approve(handle, "bob")
    stubs.api.release_all()
    report = await final_report(handle)
    assert (report.state, report.created) == (RolloutState.COMPLETED, 3)
    assert [(a.wave, a.by) for a in report.approvals] == [(1, "alice"), (2, "bob")]


# A run continues as new once its history holds this many events: every run passes it by its
# second workflow task, so each hands over at its first chance. A run that begins at the gate
# checks it once, in its first task (3 events), and then has nothing to do: the gate is handed
# over once, to a run that keeps it.
HAND_OVER_AFTER_EVENTS = 4


async def test_continue_as_new_while_awaiting_approval_keeps_the_gate(
    client: Client, task_queue: str, stubs: Stubs
) -> None:
    targets = unique_fleet(3)
    n = names(targets)
    stubs.api.release_all()
    handle = await start(
        client,
        task_queue,
        targets,
        waves=[1, "100%"],
        approve_after=[1],
        continue_as_new_after_events=HAND_OVER_AFTER_EVENTS,
    )

    gate = await progress_reaches(handle, state_is(RolloutState.AWAITING_APPROVAL), "the gate")
    assert (gate.wave, gate.created, gate.approvals) == (1, 1, [])
    await at_rest(client, handle.id)  # the run holding the gate hands over no further
    holder = await run_start(client, handle.id)
    at_gate = await runs(client, handle.id, at_least=2)
    # The gate came with the holder's input: the run before it continued as new at the gate.
    assert holder.input.carry is not None
    assert holder.input.carry.state == RolloutState.AWAITING_APPROVAL
    assert "approval" not in holder.input.carry.checks_passed
    assert holder.input.carry.runs == at_gate
    assert holder.continued_from is not None
    before = client.get_workflow_handle(handle.id, run_id=holder.continued_from)
    handed_over = await before.query(PROGRESS_QUERY, result_type=RolloutProgress)
    assert (handed_over.state, handed_over.wave) == (RolloutState.AWAITING_APPROVAL, 1)
    assert stubs.api.started() == n[:1]

    await approve(handle, "carol")
    report = await final_report(handle)
    assert (report.state, report.created) == (RolloutState.COMPLETED, 3)
    assert [a.by for a in report.approvals] == ["carol"]
    assert await runs(client, handle.id, at_least=at_gate + 1) > at_gate


# --- regions -------------------------------------------------------------------------------------


async def test_regions_in_sequence_each_with_its_own_canary(
    client: Client, task_queue: str, stubs: Stubs
) -> None:
    targets, segments = regional_fleet(3, 3)
    n = names(targets)
    r1, r2 = segments[0].region, segments[1].region
    handle = await start(
        client,
        task_queue,
        targets,
        segments=segments,
        waves=[1, "100%"],
        regions={"order": [r1, r2]},
    )

    await started(stubs.api, n[:1])
    canary = await progress_reaches(handle, lambda p: p.in_flight == 1, "region 1's canary")
    assert (canary.region, canary.wave, canary.waves, canary.pending) == (r1, 1, 2, 5)
    stubs.api.release(n[0])
    await started(stubs.api, n[:3])
    stubs.api.release(n[1])
    held = await progress_reaches(handle, lambda p: p.created == 2, "2 of region 1 done")
    assert (held.region, held.wave, held.in_flight) == (r1, 2, 1)
    assert sorted(stubs.api.started()) == sorted(n[:3]), "region 2 began before region 1 ended"

    stubs.api.release(n[2])
    await started(stubs.api, n[:4])  # region 2's canary, alone
    second = await progress_reaches(handle, lambda p: p.created == 3, "region 1 done")
    assert (second.region, second.wave, second.waves, second.in_flight) == (r2, 1, 2, 1)
    assert f"region {r2} wave 1/2" in await details(handle)
    stubs.api.release(n[3])
    await started(stubs.api, n)
    stubs.api.release_all()
    report = await final_report(handle)

    assert (report.state, report.created) == (RolloutState.COMPLETED, 6)
    assert stubs.api.position("start", n[3]) > stubs.api.position("end", n[2])
    assert stubs.api.position("start", n[4]) > stubs.api.position("end", n[3])


async def test_a_region_over_its_budget_halts_and_later_regions_get_nothing(
    client: Client, task_queue: str, stubs: Stubs
) -> None:
    targets, segments = regional_fleet(3, 2)
    n = names(targets)
    r1, r2 = segments[0].region, segments[1].region
    stubs.api.refused = {n[1]}
    stubs.api.release_all()
    handle = await start(
        client,
        task_queue,
        targets,
        segments=segments,
        waves=["100%"],
        max_failures="100%",  # the fleet's budget allows it all: only the region's halts
        regions={"order": [r1, r2], "max_failures": 0},
    )

    halted = await progress_reaches(
        handle, lambda p: p.state == RolloutState.HALTED and p.in_flight == 0, "a region's halt"
    )
    assert (halted.halted_region, halted.region) == (r1, r1)
    assert (halted.created, halted.failed, halted.pending) == (2, 1, 2)
    assert f"region {r1} over its failure budget" in await details(handle)
    assert sorted(stubs.api.started()) == sorted(n[:3]), "a later region got a POST"

    await update(handle, CANCEL_UPDATE)
    report = await final_report(handle)
    assert (report.state, report.cancelled) == (RolloutState.CANCELLED, 2)
    assert sorted(stubs.api.started()) == sorted(n[:3])


async def test_regions_in_parallel_halt_naming_the_region_over_its_budget(
    client: Client, task_queue: str, stubs: Stubs
) -> None:
    targets, segments = regional_fleet(2, 3)
    n = names(targets)
    r1, r2 = segments[0].region, segments[1].region
    stubs.api.refused = {n[2], n[3]}
    stubs.api.release_all()
    # One at a time across the whole fleet, so which target ends when is fixed.
    handle = await start(
        client,
        task_queue,
        targets,
        segments=segments,
        window=1,
        max_failures="100%",
        regions={"order": [r1, r2], "mode": "parallel", "max_failures": 1},
    )

    halted = await progress_reaches(handle, state_is(RolloutState.HALTED), "a region's halt")
    assert (halted.halted_region, halted.region, halted.waves) == (r2, None, 1)
    assert (halted.created, halted.failed, halted.pending) == (2, 2, 1)
    assert stubs.api.started() == n[:4]

    resumed = await update(handle, RESUME_UPDATE)
    assert (resumed.state, resumed.halted_region) == (RolloutState.RUNNING, None)
    report = await final_report(handle)
    # The fresh budget of the region holds the rest: completed, not a second halt.
    assert (report.state, report.created, report.failed) == (RolloutState.COMPLETED, 3, 2)
