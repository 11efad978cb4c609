"""The starter (meshfleet/rollouts.py): the workflow input, region order and stored pages."""

from __future__ import annotations

import uuid

from temporalio.client import Client

from meshfleet import rollouts
from meshfleet.contract.payloads import (
    RegionSegment,
    RolloutInput,
    TargetPage,
    page_workflow_id,
    rollout_workflow_id,
)
from meshfleet.models import MeshTarget, RegionOrder, RolloutState
from tests.helpers.fleet import names, spec, target
from tests.helpers.reports import progress_factory

EU = "eu-west-101"
AP = "ap-southeast-3"
CN = "cn-north-4"


def fleet(*regions: str) -> list[MeshTarget]:
    """One target per entry of ``regions``, named by its position."""
    return [target(i + 1, f"mesh-{i:03d}", region=region) for i, region in enumerate(regions)]


def test_without_regions_the_input_is_exactly_as_before() -> None:
    rollout = spec("plain", fleet(EU, AP, EU, CN))
    targets, inp = rollouts.rollout_input(rollout, use_search_attributes=False)
    # The input a starter built before regions existed, field for field.
    before = RolloutInput(
        rollout_id="plain",
        strategy=rollout.strategy,
        total=4,
        targets=list(rollout.targets),
        search_attributes=False,
    )
    assert inp == before
    assert inp.segments is None
    assert inp.model_dump(mode="json", exclude_defaults=True) == before.model_dump(
        mode="json", exclude_defaults=True
    )
    assert targets == rollout.targets


def test_regions_sort_the_targets_stably_and_name_the_segments() -> None:
    rollout = spec(
        "regional",
        fleet(EU, AP, EU, CN, AP, EU),
        regions=RegionOrder(order=[AP, "ap-southeast-1", EU, CN]),
    )
    targets, inp = rollouts.rollout_input(rollout)
    expected = ["mesh-001", "mesh-004", "mesh-000", "mesh-002", "mesh-005", "mesh-003"]
    assert names(targets) == names(inp.targets) == expected
    # A region of the order without targets has no segment.
    assert inp.segments == [
        RegionSegment(region=AP, start=0, end=2),
        RegionSegment(region=EU, start=2, end=5),
        RegionSegment(region=CN, start=5, end=6),
    ]
    assert inp.total == 6


def test_a_large_regional_fleet_has_no_inline_targets_but_segments() -> None:
    rollout = spec("big", fleet(*[EU, AP] * 5), regions=RegionOrder(order=[AP, EU]))
    targets, inp = rollouts.rollout_input(rollout, page_size=3)
    assert inp.targets is None
    assert inp.segments == [
        RegionSegment(region=AP, start=0, end=5),
        RegionSegment(region=EU, start=5, end=10),
    ]
    assert [t.region for t in targets] == [AP] * 5 + [EU] * 5


def test_at_gate_is_the_awaiting_approval_state() -> None:
    progress = progress_factory(rollout_id="r")

    assert rollouts.at_gate(progress(state=RolloutState.AWAITING_APPROVAL))
    assert not any(
        rollouts.at_gate(progress(state=state))
        for state in RolloutState
        if state != RolloutState.AWAITING_APPROVAL
    )


async def test_pages_are_written_in_region_order(client: Client, task_queue: str) -> None:
    # No worker: the pages and the rollout are only written, then the rollout is terminated.
    rollout_id = f"paged-regions-{uuid.uuid4().hex[:8]}"
    rollout = spec(rollout_id, fleet(*[EU, CN, AP] * 3), regions=RegionOrder(order=[CN, AP, EU]))
    started = await rollouts.start_rollout(
        client, rollout, task_queue=task_queue, use_search_attributes=False, page_size=4
    )
    assert started.started
    try:
        pages: list[TargetPage] = []
        for page in range(3):
            history = await client.get_workflow_handle(
                page_workflow_id(rollout_id, page)
            ).fetch_history()
            attributes = history.events[0].workflow_execution_started_event_attributes
            (stored,) = await client.data_converter.decode(attributes.input.payloads, [TargetPage])
            pages.append(stored)
        history = await client.get_workflow_handle(rollout_workflow_id(rollout_id)).fetch_history()
        attributes = history.events[0].workflow_execution_started_event_attributes
        (inp,) = await client.data_converter.decode(attributes.input.payloads, [RolloutInput])
    finally:
        for workflow_id in [rollout_workflow_id(rollout_id)] + [
            page_workflow_id(rollout_id, page) for page in range(3)
        ]:
            await client.get_workflow_handle(workflow_id).terminate("test cleanup")

    stored_regions = [t.region for page in pages for t in page.targets]
    assert stored_regions == [CN] * 3 + [AP] * 3 + [EU] * 3
    assert [len(page.targets) for page in pages] == [4, 4, 1]
    assert isinstance(inp, RolloutInput)
    assert inp.targets is None
    assert inp.segments == [
        RegionSegment(region=CN, start=0, end=3),
        RegionSegment(region=AP, start=3, end=6),
        RegionSegment(region=EU, start=6, end=9),
    ]
