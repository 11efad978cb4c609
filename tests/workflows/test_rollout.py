"""The fleet rollout end to end: real dev server, real worker, the simulator over loopback HTTP."""

from __future__ import annotations

import asyncio

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.service import RPCError

from meshfleet import __version__, rollouts
from meshfleet.contract.payloads import PHASE_QUERY
from meshfleet.models import RolloutState
from meshfleet.simulator.config import FaultConfig, SimulatorConfig
from meshfleet.simulator.testing import serve
from tests.helpers.audit import assert_reported_once, audit_rollout
from tests.helpers.eventually import eventually_value
from tests.helpers.fleet import SIM_TOKEN, history_bytes, running_worker, spec, target
from tests.helpers.rollout_watch import at_rest, progress_reaches, run_chain, runs, state_is


async def test_fifty_targets_with_every_fault_class_are_counted_exactly(
    client: Client, task_queue: str
) -> None:
    config = SimulatorConfig(
        create_seconds=0.3,
        tokens=(SIM_TOKEN,),
        faults=FaultConfig(
            rules=[
                "flaky-*=500-before:2",
                "lost-*=500-after:1",
                "locked-*=429:2",
                "doomed-*=create-failed",
            ]
        ),
    )
    plain = [target(i) for i in range(30)]
    flaky = [target(30 + i, f"flaky-{i:02d}") for i in range(4)]
    lost = [target(34 + i, f"lost-{i:02d}") for i in range(4)]
    locked = [target(38 + i, f"locked-{i:02d}") for i in range(3)]
    doomed = [target(41 + i, f"doomed-{i:02d}") for i in range(3)]
    existing = [target(44 + i, f"exists-{i:02d}") for i in range(5)]
    conflict = [target(49, "conflict-00", cluster="cluster-taken")]
    fleet = plain + flaky + lost + locked + doomed + existing + conflict
    assert len(fleet) == 50

    async with serve(config) as sim:
        for t in existing:
            sim.state.seed_mesh(t.project_id, t.mesh_name, [t.cluster_id], phase="Running")
        other = target(99, "someone-elses")
        sim.state.seed_mesh(other.project_id, other.mesh_name, ["cluster-taken"], phase="Running")

        async with running_worker(client, task_queue, sim.url):
            started = await rollouts.start_rollout(
                client, spec("fifty", fleet, window=8), task_queue=task_queue
            )
            assert started.started
            report = await asyncio.wait_for(rollouts.wait_for_report(client, "fifty"), 120)

        assert report.state == RolloutState.COMPLETED
        assert report.total == 50
        assert report.created == len(plain + flaky + lost + locked)
        assert report.adopted == len(existing)
        assert report.failed == len(doomed) + 1
        failed = {f.mesh_name: f for f in report.failures}
        assert set(failed) == {t.mesh_name for t in doomed} | {"conflict-00"}
        assert all(failed[t.mesh_name].error_code == "CreateFailed" for t in doomed)
        assert failed["conflict-00"].error_code == "ASM.01010003"
        assert "cluster-taken" in (failed["conflict-00"].message or "")

        stats = sim.state.stats
        for t in fleet:
            assert stats.creations(t.project_id, t.mesh_name) <= 1, t.mesh_name
        for t in plain + flaky + lost + locked + doomed:
            assert stats.creations(t.project_id, t.mesh_name) == 1, t.mesh_name
        assert all(stats.creations(t.project_id, t.mesh_name) == 0 for t in existing)

    recorded = await history_bytes(client, 'MeshRolloutId = "fifty"')
    assert b"conflict-00" in recorded  # the scan does see payloads
    assert SIM_TOKEN.encode() not in recorded


async def test_same_rollout_id_attaches_instead_of_starting_again(
    client: Client, task_queue: str
) -> None:
    fleet = [target(200 + i) for i in range(3)]
    async with serve(SimulatorConfig(create_seconds=0.2, tokens=(SIM_TOKEN,))) as sim:
        async with running_worker(client, task_queue, sim.url):
            first = await rollouts.start_rollout(
                client, spec("again", fleet), task_queue=task_queue
            )
            second = await rollouts.start_rollout(
                client, spec("again", fleet), task_queue=task_queue
            )
            report = await asyncio.wait_for(rollouts.wait_for_report(client, "again"), 60)
            third = await rollouts.start_rollout(
                client, spec("again", fleet), task_queue=task_queue
            )
        assert (first.started, second.started, third.started) == (True, False, False)
        assert report.created == 3
        assert all(sim.state.stats.posts(t.project_id, t.mesh_name) == 1 for t in fleet)


async def test_paged_fleet_survives_many_continue_as_new_runs(
    client: Client, task_queue: str
) -> None:
    fleet = [target(300 + i) for i in range(40)]
    async with serve(SimulatorConfig(create_seconds=0.2, tokens=(SIM_TOKEN,))) as sim:
        async with running_worker(client, task_queue, sim.url):
            await rollouts.start_rollout(
                client,
                spec("paged", fleet, window=6),
                task_queue=task_queue,
                page_size=7,
                max_starts_per_run=9,
            )
            report = await asyncio.wait_for(rollouts.wait_for_report(client, "paged"), 120)
        assert (report.state, report.created, report.failed) == (RolloutState.COMPLETED, 40, 0)
        assert all(sim.state.stats.creations(t.project_id, t.mesh_name) == 1 for t in fleet)
    chain = await run_chain(client, "rollout/paged")
    assert len(chain) >= 40 // 9  # it really continued as new, several times
    assert await runs(client, "rollout/paged") == len(chain)  # one execution, no other start
    # The first run's input came from the starter; every later one says which release wrote it.
    assert chain[0].input.carry is None
    assert [str(r.input.carry.written_by) for r in chain[1:] if r.input.carry is not None] == [
        __version__
    ] * (len(chain) - 1)
    pages = [p async for p in client.list_workflows('WorkflowId STARTS_WITH "rollout/paged/"')]
    assert len(pages) == 6  # ceil(40 / 7) stored pages


async def test_canary_failure_halts_before_next_wave_until_resumed(
    client: Client, task_queue: str
) -> None:
    canary = target(400, "doomed-canary")
    rest = [target(401 + i) for i in range(9)]
    config = SimulatorConfig(
        create_seconds=0.2,
        tokens=(SIM_TOKEN,),
        faults=FaultConfig(rules=["doomed-*=create-failed"]),
    )
    async with serve(config) as sim:
        async with running_worker(client, task_queue, sim.url):
            await rollouts.start_rollout(
                client,
                spec("canary", [canary, *rest], waves=[1, "50%", "100%"], max_failures=0),
                task_queue=task_queue,
            )
            handle = rollouts.rollout_handle(client, "canary")
            halted = await progress_reaches(handle, state_is(RolloutState.HALTED), "a halt")
            # Once the rollout has nothing pending, everything it decided is in its history: a
            # rollout that ignored the halt would have started the next wave's children by then.
            rested = await at_rest(client, handle.id)
            still = await rollouts.progress(client, "canary")
            assert (halted.failed, still.state, still.pending) == (1, RolloutState.HALTED, 9)
            assert rested.count(EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED) == 1
            assert all(sim.state.stats.posts(t.project_id, t.mesh_name) == 0 for t in rest)

            await rollouts.resume(client, "canary")
            report = await asyncio.wait_for(rollouts.wait_for_report(client, "canary"), 60)
        assert (report.state, report.created, report.failed) == (RolloutState.COMPLETED, 9, 1)
        assert [f.mesh_name for f in report.failures] == ["doomed-canary"]


async def test_pause_holds_new_starts_and_cancel_reports_the_rest(
    client: Client, task_queue: str
) -> None:
    fleet = [target(500 + i) for i in range(12)]
    async with serve(SimulatorConfig(create_seconds=1.0, tokens=(SIM_TOKEN,))) as sim:
        async with running_worker(client, task_queue, sim.url):
            await rollouts.start_rollout(
                client, spec("steer", fleet, window=3), task_queue=task_queue
            )
            paused = await rollouts.pause(client, "steer")
            assert paused.state == RolloutState.PAUSED
            # The first window finishes, each end a workflow task that may start nothing new;
            # after the last one the rollout has nothing pending and all it started is recorded.
            handle = rollouts.rollout_handle(client, "steer")
            await progress_reaches(handle, lambda p: p.in_flight == 0, "the window finished")
            rested = await at_rest(client, handle.id)
            held = await rollouts.progress(client, "steer")
            assert (held.state, held.in_flight) == (RolloutState.PAUSED, 0)
            assert held.pending >= 12 - 3  # no more than the window started before the pause
            assert held.created == 12 - held.pending
            started_children = EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED
            assert rested.count(started_children) == 12 - held.pending
            posted = sum(sim.state.stats.posts(t.project_id, t.mesh_name) for t in fleet)
            assert posted == 12 - held.pending

            await rollouts.resume(client, "steer")
            await progress_reaches(
                handle, lambda p: p.created > held.created, "a mesh after the resume"
            )
            await rollouts.cancel(client, "steer")
            report = await asyncio.wait_for(rollouts.wait_for_report(client, "steer"), 60)
        assert report.state == RolloutState.CANCELLED
        assert report.in_flight == 0 and report.pending == 0
        assert report.created + report.cancelled == 12
        assert report.cancelled > 0
        created = sum(sim.state.stats.creations(t.project_id, t.mesh_name) for t in fleet)
        assert created == report.created  # every started target finished; none half-handled


async def test_next_rollout_of_the_same_meshes_adopts_them_right_after(client: Client) -> None:
    fleet = [target(800 + i) for i in range(12)]
    async with serve(SimulatorConfig(create_seconds=0.2, tokens=(SIM_TOKEN,))) as sim:
        # Each rollout on its own task queue, its worker gone as soon as the report is in: any
        # child still open would hold its mesh's workflow id with no worker to close it.
        for rollout_id, queue in (("first", "q-first"), ("second", "q-second")):
            async with running_worker(client, f"{queue}-{id(sim)}", sim.url):
                await rollouts.start_rollout(
                    client, spec(rollout_id, fleet), task_queue=f"{queue}-{id(sim)}"
                )
                report = await asyncio.wait_for(rollouts.wait_for_report(client, rollout_id), 60)
            if rollout_id == "first":
                assert report.created == 12
        assert (report.adopted, report.failed) == (12, 0), report.failures
        assert all(sim.state.stats.creations(t.project_id, t.mesh_name) == 1 for t in fleet)


async def test_a_target_terminated_while_its_rollout_waits_fails_by_that_name(
    client: Client, task_queue: str
) -> None:
    # The run that started the target awaits it: its end arrives as a ChildWorkflowError whose
    # cause names the failure, as await_target names it for a run that inherited the target.
    doomed = target(700, "terminated-00")
    async with serve(SimulatorConfig(create_seconds=60.0, tokens=(SIM_TOKEN,))) as sim:
        async with running_worker(client, task_queue, sim.url):
            await rollouts.start_rollout(
                client, spec("terminated", [doomed]), task_queue=task_queue
            )
            child = client.get_workflow_handle(doomed.workflow_id)
            await eventually_value(
                lambda: child.query(PHASE_QUERY),
                lambda phase: phase == "Creating",
                30,
                "the target's mesh is Creating",
                retry_on=(RPCError,),  # the child has not started yet
            )
            await child.terminate("operator gave up")
            report = await asyncio.wait_for(rollouts.wait_for_report(client, "terminated"), 60)
        assert (report.state, report.failed, report.created) == (RolloutState.COMPLETED, 1, 0)
        [failure] = report.failures
        assert (failure.mesh_name, failure.error_code) == (doomed.mesh_name, "TerminatedError")
        assert sim.state.stats.creations(doomed.project_id, doomed.mesh_name) == 1


async def test_targets_in_flight_at_continue_as_new_are_awaited_by_the_next_run(
    client: Client, task_queue: str
) -> None:
    # Four starts per run, window 4, meshes that take 3 s: every run hands all four of its
    # targets to the next one still in flight. One of them is terminated meanwhile: its outcome
    # can only come from the next run's await_target, and must say what happened.
    fleet = [target(600 + i, f"carried-{i:02d}") for i in range(12)]
    doomed = fleet[0]
    async with serve(SimulatorConfig(create_seconds=3.0, tokens=(SIM_TOKEN,))) as sim:
        async with running_worker(client, task_queue, sim.url):
            await rollouts.start_rollout(
                client,
                spec("carried", fleet, window=4),
                task_queue=task_queue,
                max_starts_per_run=4,
            )
            await runs(client, "rollout/carried", at_least=2)  # it continued as new
            await client.get_workflow_handle(doomed.workflow_id).terminate("operator gave up")
            report = await asyncio.wait_for(rollouts.wait_for_report(client, "carried"), 90)
        audit = await audit_rollout(client, "carried", len(fleet))
        assert_reported_once(report, audit, fleet)
        assert (report.created, report.adopted, report.failed) == (11, 0, 1)
        [failure] = report.failures
        assert (failure.mesh_name, failure.error_code) == (doomed.mesh_name, "TerminatedError")
        assert all(sim.state.stats.creations(t.project_id, t.mesh_name) == 1 for t in fleet)
    assert audit.rollout_runs == 3  # 12 targets, 4 starts per run
    history = await client.get_workflow_handle("rollout/carried").fetch_history()
    awaited = [
        e
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
        and e.activity_task_scheduled_event_attributes.activity_type.name == "await_target"
    ]
    assert len(awaited) == 4  # the last run waits for the second run's four targets
