"""What the Temporal UI's default view of a rollout shows while it waits: a pending timer whose
summary says why and which command moves it on.

The production worker against the simulator over loopback, on the session's dev server; the
summaries are read from the history as the UI reads them (``TimerStarted`` user metadata).
"""

from __future__ import annotations

import uuid

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from meshfleet import rollouts
from meshfleet.contract.payloads import APPROVE_UPDATE, PAUSE_UPDATE, ApproveInput
from meshfleet.models import RolloutProgress, RolloutState
from meshfleet.simulator.config import FaultConfig, SimulatorConfig
from meshfleet.simulator.testing import serve
from tests.helpers.eventually import eventually_value
from tests.helpers.fleet import SIM_TOKEN, running_worker, spec, target
from tests.helpers.rollout_watch import progress_reaches, state_is


async def open_banners(client: Client, rollout_id: str) -> list[str]:
    """The summaries of the rollout's timers that have started and not (yet) ended."""
    history = await rollouts.rollout_handle(client, rollout_id).fetch_history()
    started: dict[int, str] = {}
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
            payload = event.user_metadata.summary
            text = client.data_converter.payload_converter.from_payloads([payload])[0]
            started[event.event_id] = str(text)
        elif event.event_type == EventType.EVENT_TYPE_TIMER_FIRED:
            started.pop(event.timer_fired_event_attributes.started_event_id, None)
        elif event.event_type == EventType.EVENT_TYPE_TIMER_CANCELED:
            started.pop(event.timer_canceled_event_attributes.started_event_id, None)
    return list(started.values())


async def banner_with(client: Client, rollout_id: str, text: str) -> str:
    banners = await eventually_value(
        lambda: open_banners(client, rollout_id),
        lambda found: any(text in b for b in found),
        30,
        f"a timer of {rollout_id} saying {text!r}",
    )
    return next(b for b in banners if text in b)


def _config(tag: str, create_seconds: float = 0.2) -> SimulatorConfig:
    return SimulatorConfig(
        create_seconds=create_seconds,
        tokens=(SIM_TOKEN,),
        faults=FaultConfig(rules=[f"doomed-{tag}-*=create-failed"]),
    )


async def test_a_halted_rollout_shows_why_and_how_to_go_on(client: Client, task_queue: str) -> None:
    tag = uuid.uuid4().hex[:6]
    rollout_id = f"banner-halt-{tag}"
    targets = [target(0, f"doomed-{tag}-0"), *(target(i) for i in range(1, 4))]
    rollout = spec(rollout_id, targets, window=1, waves=[1, "100%"], max_failures=0)
    async with serve(_config(tag)) as sim, running_worker(client, task_queue, sim.url):
        await rollouts.start_rollout(client, rollout, task_queue=task_queue)
        halted = await progress_reaches(
            rollouts.rollout_handle(client, rollout_id),
            lambda p: p.state == RolloutState.HALTED and p.in_flight == 0,
            "the rollout halted",
        )
        banner = await banner_with(client, rollout_id, "HALTED")
        await rollouts.cancel(client, rollout_id)
        await rollouts.wait_for_report(client, rollout_id)
        after = await open_banners(client, rollout_id)

    assert halted.failed == 1
    assert banner == (
        "HALTED: 1 failed, over the failure budget of 0 · "
        f"`meshfleet resume {rollout_id}` goes on, `meshfleet cancel {rollout_id}` stops"
    )
    # Once the rollout moved on, its banner is gone from the view.
    assert after == []


async def test_a_paused_and_a_gated_rollout_say_what_they_wait_for(
    client: Client, task_queue: str
) -> None:
    tag = uuid.uuid4().hex[:6]
    rollout_id = f"banner-gate-{tag}"
    targets = [target(i) for i in range(3)]
    rollout = spec(rollout_id, targets, window=1, waves=[1, "100%"], approve_after=[1])
    async with (
        serve(_config(tag, create_seconds=1.0)) as sim,
        running_worker(client, task_queue, sim.url),
    ):
        await rollouts.start_rollout(client, rollout, task_queue=task_queue)
        handle = rollouts.rollout_handle(client, rollout_id)
        gate = await progress_reaches(handle, rollouts.at_gate, "the rollout at its gate")
        gated = await banner_with(client, rollout_id, "AWAITING APPROVAL")
        await handle.execute_update(
            APPROVE_UPDATE, ApproveInput(by="test", wave=gate.wave), result_type=RolloutProgress
        )
        await handle.execute_update(PAUSE_UPDATE, result_type=RolloutProgress)
        paused = await banner_with(client, rollout_id, "PAUSED")
        await rollouts.resume(client, rollout_id)
        report = await rollouts.wait_for_report(client, rollout_id)

    assert gated == (
        f"AWAITING APPROVAL after wave 1/2 · `meshfleet approve {rollout_id}` opens the gate"
    )
    assert paused == f"PAUSED: nothing new starts · `meshfleet resume {rollout_id}` goes on"
    assert report.state == RolloutState.COMPLETED


async def test_a_soaking_rollout_says_until_when(client: Client, task_queue: str) -> None:
    tag = uuid.uuid4().hex[:6]
    rollout_id = f"banner-soak-{tag}"
    rollout = spec(rollout_id, [target(i) for i in range(2)], waves=[1, "100%"], soak_s=3600)
    async with serve(_config(tag)) as sim, running_worker(client, task_queue, sim.url):
        await rollouts.start_rollout(client, rollout, task_queue=task_queue)
        soaking = await progress_reaches(
            rollouts.rollout_handle(client, rollout_id),
            state_is(RolloutState.SOAKING),
            "the rollout soaking",
        )
        banner = await banner_with(client, rollout_id, "SOAKING")
        await rollouts.cancel(client, rollout_id)
        await rollouts.wait_for_report(client, rollout_id)

    assert soaking.soaking_until is not None
    until = soaking.soaking_until
    assert banner == f"SOAKING until {until[:19]}Z after wave 1/2, then the next wave"
