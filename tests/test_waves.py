"""One wave layout: what ``plan`` shows, what ``start --json`` reports and what the workflow walks.

The property test draws strategies (waves, regions in order or in parallel, gates) and fleets
(targets spread over regions) and checks that the plan's waves, the walk the workflow lays out
from the input its starter builds, and the report of a rollout just started all agree, and that
the waves cover every target once, in order. The example below runs the real workflow on the
dev server for the case that once disagreed: regions in sequence, a first region of one target.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.client import Client

from meshfleet import rollouts
from meshfleet.manifest.schedule import schedule_of
from meshfleet.models import MeshTarget, RolloutSpec, RolloutStrategy
from meshfleet.simulator.config import SimulatorConfig
from meshfleet.simulator.testing import serve
from meshfleet.waves import Wave
from tests.helpers.fleet import REGIONS, SIM_TOKEN, running_worker, spec, target
from tests.helpers.rollout_watch import progress_reaches
from workflows.layout import walk_of

WAVE = st.one_of(
    st.integers(min_value=1, max_value=12),
    st.integers(min_value=1, max_value=100).map(lambda p: f"{p}%"),
)


@st.composite
def rollouts_of(draw: st.DrawFn) -> RolloutSpec:
    """A valid rollout: 1-30 targets over up to three regions, any waves, regions and gates."""
    count = draw(st.integers(min_value=1, max_value=30))
    regions = draw(st.lists(st.sampled_from(REGIONS), min_size=count, max_size=count))
    targets: list[MeshTarget] = [target(i, region=region) for i, region in enumerate(regions)]
    strategy: dict[str, object] = {
        "waves": draw(st.lists(WAVE, min_size=1, max_size=4)),
        "approve_after": draw(st.lists(st.integers(1, 5), max_size=3, unique=True)),
    }
    if draw(st.booleans()):
        used = sorted(set(regions))
        order = draw(st.permutations([*used, *draw(st.sets(st.sampled_from(REGIONS)))]))
        strategy["regions"] = {
            "order": list(dict.fromkeys(order)),
            "mode": draw(st.sampled_from(["sequential", "parallel"])),
        }
    return RolloutSpec(
        rollout_id="waves-agree",
        strategy=RolloutStrategy.model_validate(strategy),
        targets=targets,
    )


def covers_in_order(waves: list[Wave], total: int) -> bool:
    """The waves start at 0, follow one another without gap or overlap, and end at ``total``."""
    ends = [0, *(w.end for w in waves)]
    return all(w.start == ends[i] and w.end > w.start for i, w in enumerate(waves)) and (
        ends[-1] == total
    )


@given(rollouts_of())
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_plan_start_and_the_workflow_lay_out_the_same_waves(rollout: RolloutSpec) -> None:
    planned = schedule_of(rollout.strategy, rollout.targets)
    ordered, inp = rollouts.rollout_input(rollout)
    # The workflow's first run walks by region whenever its starter sent segments.
    walked = walk_of(inp, by_region=inp.segments is not None).waves
    started = rollouts.started_report(rollout)

    assert planned.waves == walked
    assert covers_in_order(walked, len(rollout.targets))
    first = walked[0]
    assert (started.wave, started.waves, started.region) == (
        first.number,
        first.count,
        first.region,
    )
    for wave in walked:
        # A region's own walk holds only that region's targets, and counts its own waves.
        if wave.region is not None:
            assert {t.region for t in ordered[wave.start : wave.end]} == {wave.region}
            assert wave.count == sum(1 for w in walked if w.region == wave.region)
        else:
            assert wave.count == len(walked)
    assert not walked[-1].approval, "a gate after the very last wave"


async def test_start_reports_the_wave_and_region_the_workflow_is_in(
    client: Client, task_queue: str
) -> None:
    first, second = REGIONS[0], REGIONS[1]
    targets = [target(0, region=first), *(target(i, region=second) for i in range(1, 5))]
    rollout = spec(
        f"waves-{task_queue}",
        targets,
        waves=[1, "50%", "100%"],
        regions={"order": [first, second], "mode": "sequential"},
        approve_after=[1],
    )
    started = rollouts.started_report(rollout)
    assert (started.wave, started.waves, started.region) == (1, 1, first)

    config = SimulatorConfig(create_seconds=0.05, tokens=(SIM_TOKEN,))
    async with serve(config) as sim, running_worker(client, task_queue, sim.url):
        await rollouts.start_rollout(client, rollout, task_queue=task_queue)
        handle = rollouts.rollout_handle(client, rollout.rollout_id)
        # The first region's one wave is done and the gate after it stands: wave 1/1 of it.
        at_gate = await progress_reaches(
            handle, lambda p: p.state.value == "awaiting_approval", "the gate after region 1"
        )
        await handle.cancel()

    assert (at_gate.wave, at_gate.waves, at_gate.region) == (
        started.wave,
        started.waves,
        started.region,
    )


@pytest.mark.parametrize("mode", ["sequential", "parallel"])
def test_a_region_of_one_target_is_a_walk_of_its_own_only_in_sequence(mode: str) -> None:
    targets = [target(0, region=REGIONS[0]), *(target(i, region=REGIONS[1]) for i in range(1, 5))]
    strategy = RolloutStrategy.model_validate(
        {"waves": [1, "50%", "100%"], "regions": {"order": list(REGIONS[:2]), "mode": mode}}
    )
    waves = [(w.region, w.number, w.count, w.size) for w in schedule_of(strategy, targets).waves]
    if mode == "sequential":
        assert waves == [
            (REGIONS[0], 1, 1, 1),
            (REGIONS[1], 1, 3, 1),
            (REGIONS[1], 2, 3, 1),
            (REGIONS[1], 3, 3, 2),
        ]
    else:
        assert waves == [(None, 1, 3, 1), (None, 2, 3, 2), (None, 3, 3, 2)]
