"""Drift schedules end to end: the CLI saves, lists and deletes them on the real dev server; a
check it triggers runs on the production worker against the simulator over HTTP, and posts what
drifted to a webhook on a loopback port.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleSpec,
    ScheduleState,
    WorkflowExecutionStatus,
)
from temporalio.service import RPCError, RPCStatusCode

from meshfleet.cli.exit_codes import ExitCode
from meshfleet.contract.drift import (
    CHECK_DRIFT,
    DRIFT_CHECK_WORKFLOW,
    DRIFT_PAGE_WORKFLOW,
    NOTIFY_DRIFT,
    DriftPages,
    drift_page_workflow_id,
    drift_schedule_id,
)
from meshfleet.drift_schedules import (
    ListedSchedule,
    NoSuchDriftScheduleError,
    delete_drift_schedule,
    describe_drift_schedule,
    open_pages,
    save_drift_schedule,
    targets_digest,
    trigger_drift_check,
)
from meshfleet.manifest.load import load_manifest
from meshfleet.models import MeshTarget
from meshfleet.simulator.config import SimulatorConfig
from meshfleet.simulator.stats import LIST
from meshfleet.simulator.testing import serve
from tests.drift.fleet import (
    NOTIFY_TOKEN,
    P1,
    REGION,
    SAMPLED_LESS,
    SAMPLING,
    VERSION,
    drift_worker,
    fleet,
    new_tag,
    seed,
    sim_writes,
    tagged,
)
from tests.helpers.cli_rollouts import temporal_env
from tests.helpers.cli_run import meshfleet, write_manifest
from tests.helpers.eventually import eventually, eventually_value
from tests.helpers.fleet import SIM_TOKEN, history_bytes, unique_fleet
from tests.helpers.simulator_site import SimulatorSite, simulator_site
from tests.helpers.webhook import serve_hook


async def _finished_run(client: Client, name: str) -> ListedSchedule:
    """The schedule once a run it started has completed, and none runs."""

    def done(listed: ListedSchedule) -> bool:
        last = listed.last_run
        return last is not None and last.status == "completed" and listed.running == 0

    return await eventually_value(
        lambda: describe_drift_schedule(client, name),
        done,
        60,
        f"a check of drift schedule {name} completed",
    )


async def _status(client: Client, workflow_id: str) -> WorkflowExecutionStatus | None:
    try:
        return (await client.get_workflow_handle(workflow_id).describe()).status
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise


async def _statuses(client: Client, ids: list[str]) -> set[WorkflowExecutionStatus | None]:
    return {await _status(client, workflow_id) for workflow_id in ids}


@asynccontextmanager
async def _deleted_after(client: Client, name: str) -> AsyncIterator[None]:
    """A schedule a test saves is gone after it, whatever the test did."""
    try:
        yield
    finally:
        with suppress(NoSuchDriftScheduleError):
            await delete_drift_schedule(client, name)


def _listed(run_out: Any, name: str) -> dict[str, Any] | None:
    return next((s for s in run_out if s["name"] == name), None)


async def test_a_schedule_checks_the_fleet_reads_only_and_tells_the_webhook(
    client: Client, task_queue: str, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    tag = new_tag()
    name = f"nightly-{tag}"
    env = temporal_env(client, task_queue)
    config = SimulatorConfig(create_seconds=0, tokens=(SIM_TOKEN,))
    async with (
        serve(config) as sim,
        serve_hook("/drift") as hook,
        _deleted_after(client, name),
    ):
        seed(sim.state, tag)
        path = write_manifest(tmp_path / "fleet.yaml", fleet(tag), notify={"webhook": hook.url})
        saved = await meshfleet("drift", str(path), "--every", "6h", "--name", name, env=env)
        assert saved.code == ExitCode.OK, saved.err
        assert saved.out.startswith(
            f"created drift schedule {name} (drift/{name}): 5 targets of {path.resolve()} every "
            "6h, in 1 page; next run "
        ), saved.out

        listed = await eventually_value(
            lambda: meshfleet("drift", "--list", "--json", env=env),
            lambda run: run.code == 0 and _listed(run.json(), name) is not None,
            30,
            f"drift --list shows {name}",
            interval=0.3,
        )
        entry = _listed(listed.json(), name)
        assert entry is not None
        assert {k: entry[k] for k in ("schedule_id", "every", "every_s", "source", "targets")} == {
            "schedule_id": f"drift/{name}",
            "every": "6h",
            "every_s": 21600.0,
            "source": str(path.resolve()),
            "targets": 5,
        }
        assert (entry["pages"], entry["paused"], entry["webhook"]) == (1, False, hook.url)
        assert entry["last_run"] is None
        assert entry["next_run"] is not None

        base = hook.url.removesuffix("/drift")
        # A hook that echoes what it was sent: the token must not reach the check's history.
        hook.answer((200, f"ok, Authorization: Bearer {NOTIFY_TOKEN}"))
        writes_before = await sim_writes(http, sim.url)
        async with drift_worker(client, task_queue, sim.url, allowed=base):
            await client.get_schedule_handle(drift_schedule_id(name)).trigger()
            done = await _finished_run(client, name)
            assert done.last_run is not None
            check = client.get_workflow_handle(done.last_run.workflow_id)
            meta = await check.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
            after_check = await meshfleet("drift", "--list", env=env)
            histories = await history_bytes(client, f'WorkflowId = "{done.last_run.workflow_id}"')
        writes_after = await sim_writes(http, sim.url)

    report = done.last_run.report
    assert report is not None
    assert report.counts() == {
        "in_sync": 2,
        "missing": 1,
        "update": 1,
        "upgrade": 1,
        "downgrade": 0,
        "conflict": 0,
        "error": 0,
    }
    assert {(t.mesh_name, t.judgement) for t in report.drifted} == {
        (tagged("drift", tag), "update"),
        (tagged("old", tag), "upgrade"),
        (tagged("new", tag), "missing"),
    }
    [update] = [t for t in report.drifted if t.judgement == "update"]
    assert [(c.path, c.before, c.after) for c in update.changes] == [(SAMPLING, 1, 10)]
    # A check never writes to ASM.
    assert writes_after == writes_before == {"posts": 0, "puts": 0, "deletes": 0}

    # The webhook got the summary once, with the worker's token.
    [received] = hook.received
    assert received.authorization == f"Bearer {NOTIFY_TOKEN}"
    body = received.body
    assert (body["schedule_id"], body["name"], body["total"], body["not_in_sync"]) == (
        f"drift/{name}",
        name,
        5,
        3,
    )
    assert body["summary"] == "5 targets: 2 in sync, 3 drifted (1 missing, 1 update, 1 upgrade)"
    assert {t["mesh_name"] for t in body["drifted"]} == {
        tagged("drift", tag),
        tagged("old", tag),
        tagged("new", tag),
    }
    assert report.notified is not None
    assert (report.notified.sent, report.notified.status) == (True, 200)
    assert NOTIFY_TOKEN not in report.notified.excerpt
    assert histories and NOTIFY_TOKEN.encode() not in histories

    # The UI's details of the run name the drifted targets; the list shows the result.
    details = meta.current_details
    assert details.startswith("**drift found**"), details
    missing = f"- missing    ap-southeast-3  {P1}  {tagged('new', tag)}  cluster cluster-new-{tag}"
    assert missing in details.splitlines(), details
    [row] = [line for line in after_check.out.splitlines() if line.startswith(name)]
    assert "3 of 5 drifted" in row


async def test_a_changed_manifest_replaces_the_pages_and_delete_removes_everything(
    client: Client, task_queue: str, tmp_path: Path
) -> None:
    tag = new_tag()
    name = f"paged-{tag}"
    config = SimulatorConfig(create_seconds=0, tokens=(SIM_TOKEN,))
    first = load_manifest(str(write_manifest(tmp_path / "a.yaml", fleet(tag))))
    # The mesh that drifted is now what the manifest wants; the first mesh is no longer a target.
    _same, sampled, drift, old, new = fleet(tag)
    second = [sampled, {**drift, "config": SAMPLED_LESS}, old, new]
    second_spec = load_manifest(str(write_manifest(tmp_path / "b.yaml", second)))
    env = temporal_env(client, task_queue)
    async with serve(config) as sim, _deleted_after(client, name):
        seed(sim.state, tag)
        # Two targets a page: five targets are three pages.
        saved = await save_drift_schedule(
            client,
            name,
            first.targets,
            every_s=3600,
            source="a.yaml",
            task_queue=task_queue,
            page_size=2,
        )
        old_pages = saved.input.page_ids()
        assert (saved.created, saved.input.pages, len(old_pages)) == (True, 3, 3)
        async with drift_worker(client, task_queue, sim.url):
            await trigger_drift_check(client, name)
            done = await _finished_run(client, name)
            assert done.last_run is not None and done.last_run.report is not None
            assert (done.last_run.report.total, done.last_run.report.not_in_sync) == (5, 3)
            assert done.last_run.report.notified is None  # no webhook in this manifest

            # Paused by an operator: saving again keeps it paused.
            handle = client.get_schedule_handle(drift_schedule_id(name))
            await handle.pause(note="maintenance window")
            updated = await save_drift_schedule(
                client,
                name,
                second_spec.targets,
                every_s=7200,
                source="b.yaml",
                task_queue=task_queue,
                page_size=2,
            )
            new_pages = updated.input.page_ids()
            assert (updated.created, updated.input.total, updated.input.pages) == (False, 4, 2)
            assert updated.input.digest != saved.input.digest
            assert not set(new_pages) & set(old_pages)
            assert updated.old_pages_terminated == 3
            assert await _statuses(client, old_pages) == {WorkflowExecutionStatus.TERMINATED}
            assert await _statuses(client, new_pages) == {WorkflowExecutionStatus.RUNNING}

            listed = await describe_drift_schedule(client, name)
            assert (listed.paused, listed.note, listed.every_s) == (
                True,
                "maintenance window",
                7200.0,
            )
            assert (listed.source, listed.created_from) == ("b.yaml", "a.yaml")
            shown = await meshfleet("drift", "--list", env=env)
            [row] = [line for line in shown.out.splitlines() if line.startswith(name)]
            assert "paused (maintenance window)" in row

            # A run of the updated schedule checks the new targets, from the new pages.
            first_run = done.last_run.run_id
            await trigger_drift_check(client, name)
            again = await eventually_value(
                lambda: describe_drift_schedule(client, name),
                lambda s: (
                    s.last_run is not None
                    and s.last_run.run_id != first_run
                    and s.last_run.status == "completed"
                ),
                60,
                "a check of the updated schedule completed",
            )
        assert again.last_run is not None and again.last_run.report is not None
        second_report = again.last_run.report
        assert second_report.total == 4
        assert {t.mesh_name for t in second_report.drifted} == {
            tagged("old", tag),
            tagged("new", tag),
        }

        deleted = await meshfleet("drift", "--delete", name, env=env)
        assert deleted.code == ExitCode.OK, deleted.err
        assert (
            deleted.err.strip()
            == f"deleted drift schedule {name}; 2 pages of its targets terminated"
        )
        with pytest.raises(RPCError) as gone:
            await client.get_schedule_handle(drift_schedule_id(name)).describe()
        assert gone.value.status == RPCStatusCode.NOT_FOUND
        assert await _statuses(client, new_pages) == {WorkflowExecutionStatus.TERMINATED}
        await eventually(
            lambda: _no_open_pages(client, name), 30, f"visibility lists no open page of {name}"
        )

        again_deleted = await meshfleet("drift", "--delete", name, env=env)
        assert again_deleted.code == ExitCode.INVALID
        assert again_deleted.err.startswith(f"meshfleet: no drift schedule '{name}'")


async def _no_open_pages(client: Client, name: str) -> bool:
    return not await open_pages(client, name)


def test_pages_of_other_sizes_are_other_pages() -> None:
    # The digest names the pages: the same targets in pages of another size must never be read
    # from pages stored at the first size.
    targets = unique_fleet(3)

    assert targets_digest(targets, 2) != targets_digest(targets, 400)
    assert targets_digest(targets, 2) == targets_digest(list(targets), 2)
    assert DriftPages(name="n", digest=targets_digest(targets, 2), total=3, page_size=2).pages == 2


def test_the_names_schedules_and_histories_hold_stay_as_released() -> None:
    assert (DRIFT_CHECK_WORKFLOW, DRIFT_PAGE_WORKFLOW) == (
        "DriftCheckWorkflow",
        "DriftTargetPageWorkflow",
    )
    assert (CHECK_DRIFT, NOTIFY_DRIFT) == ("check_drift", "notify_drift")
    assert drift_schedule_id("n") == "drift/n"


async def test_a_check_still_running_is_not_started_twice(client: Client, task_queue: str) -> None:
    tag = new_tag()
    name = f"overlap-{tag}"
    targets = load_manifest_targets(fleet(tag))
    config = SimulatorConfig(create_seconds=0, tokens=(SIM_TOKEN,))
    async with simulator_site(config) as site, _deleted_after(client, name):
        seed(site.state, tag)
        await save_drift_schedule(
            client, name, targets, every_s=3600, source="fleet.yaml", task_queue=task_queue
        )
        handle = client.get_schedule_handle(drift_schedule_id(name))
        # Every list call waits at the door: the first check stays running.
        site.hold(LIST)
        async with drift_worker(client, task_queue, site.url):
            await trigger_drift_check(client, name)
            await eventually(
                lambda: _holding(site), 30, "the first check's list calls wait at the simulator"
            )
            await trigger_drift_check(client, name)
            skipped = await eventually_value(
                handle.describe,
                lambda d: d.info.num_actions_skipped_overlap >= 1,
                30,
                "the second trigger skipped while the first check runs",
            )
            assert (skipped.info.num_actions, len(skipped.info.running_actions)) == (1, 1)
            site.release()
            done = await _finished_run(client, name)
    assert done.last_run is not None and done.last_run.report is not None
    assert done.last_run.report.not_in_sync == 3


def _holding(site: SimulatorSite) -> bool:
    return site.held > 0


def load_manifest_targets(entries: list[dict[str, Any]]) -> list[MeshTarget]:
    """The targets of a manifest of ``entries``, as the loader reads them."""
    return [
        MeshTarget.model_validate({"region": REGION, "version": VERSION, **entry})
        for entry in entries
    ]


async def test_a_schedule_of_that_id_that_runs_something_else_is_left_alone(
    client: Client, task_queue: str, tmp_path: Path
) -> None:
    tag = new_tag()
    name = f"foreign-{tag}"
    path = write_manifest(tmp_path / "fleet.yaml", fleet(tag))
    foreign = await client.create_schedule(
        drift_schedule_id(name),
        Schedule(
            action=ScheduleActionStartWorkflow(
                "SomeoneElsesWorkflow", {"x": 1}, id=f"other-{tag}", task_queue=task_queue
            ),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=1))]),
            state=ScheduleState(paused=True),
        ),
    )
    try:
        env = temporal_env(client, task_queue)
        saved = await meshfleet("drift", str(path), "--every", "1h", "--name", name, env=env)
        deleted = await meshfleet("drift", "--delete", name, env=env)
        listed = await meshfleet("drift", "--list", "--json", env=env)
        described = await foreign.describe()
    finally:
        await foreign.delete()

    assert saved.code == ExitCode.INVALID
    assert saved.err.startswith(
        f"meshfleet: --name {name}: schedule drift/{name} does not run DriftCheckWorkflow"
    )
    assert deleted.code == ExitCode.INVALID
    assert _listed(listed.json(), name) is None
    # Untouched: still what its owner made it, and no page was stored for it.
    action = described.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert action.workflow == "SomeoneElsesWorkflow"
    spec = load_manifest(str(path))
    digest = targets_digest(spec.targets)
    assert await _status(client, drift_page_workflow_id(name, digest, 0)) is None
