"""The recorder's scenarios of the version in development: progressive delivery (soak, verify,
webhook, gates, regions) and rollback.

Played by ``record_histories --release <the version in development>`` with this checkout's own
worker and CLI, since no release has these paths yet. Each scenario checks that it took the path
it exists for before its histories are written.
"""

from __future__ import annotations

from typing import Any

from temporalio.client import WorkflowExecutionStatus

from meshfleet.contract.payloads import TARGET_PAGE_WORKFLOW, TargetPage, page_workflow_id
from meshfleet.models import MeshTarget
from tests.upgrade.record_histories import (
    REGION,
    VERIFY_TOKEN,
    Stack,
    Target,
    Wanted,
    _runs_so_far,
    check,
    eventually,
    expect_report,
    rollout_id_of,
    rollout_wanted,
    targets_wanted,
)

SCENARIOS: dict[str, str] = {
    "soak-verify": "a soak after the canary (a durable timer), then verify_wave reads the wave "
    "again: the canary left Running during the soak, failed MeshUnknown over a budget of 0, "
    "halted before wave 2; resumed with a fresh budget, wave 2 created",
    "verify-webhook": "verify_wave asks the webhook after the re-read: a 200 passes and the "
    "next wave starts; a 500 (asked three times) halts the rollout with the hook's answer as "
    "its reason, and the halted rollout is cancelled",
    "approval-gate": "approve_after [1]: the rollout waits awaiting_approval after the canary "
    "until the approve update (by release-bot), then finishes",
    "regions-sequential": "three regions one after another, the waves within each; region 2's "
    "canary fails over the region's budget of 0: halted naming the region before region 3 got a "
    "POST; resumed with a fresh budget, region 3 created",
    "regions-parallel": "two regions in parallel mode: the waves over the whole fleet, grouped "
    "by region in the given order, a budget per region",
    "gates-continue-as-new": "targets in pages, two starts per run: the rollout continues as "
    "new during the soak and again at the approval gate (the soak's end and the gate carried "
    "over), and verify_wave reads the wave from the stored pages",
    "rollback": "a rollout with created, adopted and failed targets, one created mesh re-created "
    "by hand since; its rollback deletes the created meshes by uid (DeleteMeshWorkflow: "
    "delete_mesh, wait_for_mesh_gone), keeps the re-created one, never touches the others",
    "rollback-halt-resume": "a rollback whose first deletion ends DeleteFailed over a budget of "
    "0: halted; resumed with a fresh budget, the rest deleted",
    "rollback-continue-as-new": "a rollback of targets stored as pages (its own page workflows), "
    "two starts per run: continues as new with deletions in flight",
    "converge": "existing: converge over a mesh in sync, one of another configuration, a missing "
    "one and one at an older version: ConvergeMeshWorkflow judges each (judge_mesh), leaves the "
    "first alone, updates the second in place (update_mesh, wait_for_config), creates the third "
    "and upgrades the fourth, finalized after the rollout",
    "converge-rollback": "a converge that updated two meshes, one of them changed by hand since: "
    "its rollback restores the other's old configuration (RestoreMeshWorkflow), keeps the "
    "hand-changed one and deletes the mesh it created",
    "drift-check": "a drift schedule made by `meshfleet drift --every --name`, triggered: "
    "DriftCheckWorkflow reads its stored page and judges the fleet, and its page "
    "(DriftTargetPageWorkflow) is terminated when the schedule is deleted",
    "upgrade": "existing: converge over three meshes at 1.15.7-r3 with verify and a gate after "
    "the canary: each upgraded by ConvergeMeshWorkflow (upgrade_step: pre-check, control plane, "
    "data plane), verified, approved, then every mesh finalized in waves "
    "(FinalizeUpgradeWorkflow, step finish) after the last wave passed its checks",
    "upgrade-manual-finalize": "strategy.upgrade.finalize: manual: the rollout waits "
    "awaiting_finalize until the finalize update (`meshfleet finalize`), then finalizes",
    "upgrade-rollback": "a manual-finalize upgrade cancelled while it waits to finalize; its "
    "rollback rolls each upgraded mesh back through its task (RestoreMeshWorkflow, step "
    "rollback)",
    "upgrade-halt": "a first wave of four: a canary whose data plane fails (UpgradeStepFailed), "
    "a mesh two lines behind (UpgradePathTooLong), one Upgrading by someone else "
    "(MeshUpgrading) and one upgraded: halted over a budget of 0, then cancelled",
    "upgrade-cancel": "a cancel while two meshes' task creates are unanswered: the rollout tells "
    "them to stop (stop_after_step); each ends its pre-check and stops, cancelled",
    "cancel-during-page-load": "a cancel from Temporal while the rollout's first page of "
    "targets loads (its pages held on a task queue nobody polls): the rollout ends Canceled, "
    "its report cancelled with every target counted cancelled and no POST",
}

REGIONS = ("ap-southeast-1", "ap-southeast-3", "cn-north-4")


def _state_is(state: str) -> Any:
    return lambda progress: progress["state"] == state


async def soak_verify(stack: Stack) -> list[Wanted]:
    """A canary that breaks during its soak, found by verify."""
    rollout = "soak-verify"
    canary = Target("soak-broken-00")
    rest = [Target(f"soak-{i:02d}") for i in range(1, 3)]
    await stack.start(
        rollout, [canary, *rest], waves=[1, "100%"], max_failures=0, soak="1s", verify=True
    )
    halted = await stack.until(rollout, _state_is("halted"), "halted by verify")
    codes = [f["error_code"] for f in halted["failures"]]
    check(codes == ["MeshUnknown"], f"{rollout}: failures {halted['failures']}")
    check(not any(stack.posts(t) for t in rest), f"{rollout}: wave 2 got a POST before resume")
    await stack.steer("resume", rollout)
    expect_report(rollout, await stack.report(rollout), created=2, failed=1)
    return [
        rollout_wanted(
            rollout,
            rollout,
            "soak 1 s, verify: the canary is Unknown, failed over a budget of 0, halted; resumed",
        ),
        *targets_wanted(rollout, [canary, *rest], "a target of the verified rollout: created"),
    ]


async def verify_webhook(stack: Stack) -> list[Wanted]:
    """One webhook says yes, another says no."""
    scenario = "verify-webhook"
    passing = [Target(f"hook-pass-{i:02d}") for i in range(2)]
    refused = [Target(f"hook-refused-{i:02d}") for i in range(2)]
    await stack.start(
        "hook-pass", passing, waves=[1, "100%"], verify={"webhook": stack.hooks["pass"].url}
    )
    await stack.start(
        "hook-refused", refused, waves=[1, "100%"], verify={"webhook": stack.hooks["refuse"].url}
    )
    expect_report("hook-pass", await stack.report("hook-pass"), created=2)
    halted = await stack.until("hook-refused", _state_is("halted"), "halted by the webhook")
    reason = halted["halt_reason"] or ""
    check(reason.startswith("verify webhook answered 500"), f"hook-refused: halt reason {reason!r}")
    await stack.steer("cancel", "hook-refused")
    expect_report("hook-refused", await stack.report("hook-refused"), "cancelled", created=1)
    received = [r for hook in stack.hooks.values() for r in hook.received]
    check(
        {r.authorization for r in received} == {f"Bearer {VERIFY_TOKEN}"},
        "the webhook did not get the worker's token",
    )
    return [
        Wanted(
            rollout_id_of("hook-pass"),
            scenario,
            "rollout-passed",
            "the webhook answered 200 after the canary: wave 2 started",
        ),
        Wanted(
            rollout_id_of("hook-refused"),
            scenario,
            "rollout-refused",
            "the webhook answered 500 three times: halted with its answer, then cancelled",
        ),
        *targets_wanted(scenario, [*passing, refused[0]], "a target of a verified rollout"),
    ]


async def approval_gate(stack: Stack) -> list[Wanted]:
    """A gate after the canary, opened by the approve update."""
    rollout = "approval-gate"
    fleet = [Target(f"gate-{i:02d}") for i in range(3)]
    await stack.start(rollout, fleet, waves=[1, "100%"], approve_after=[1])
    await stack.until(rollout, _state_is("awaiting_approval"), "at the gate")
    check(sum(stack.posts(t) for t in fleet) == 1, f"{rollout}: POSTs past the gate")
    await stack.approve(rollout, "release-bot")
    report = await stack.report(rollout)
    expect_report(rollout, report, created=3)
    check([a["by"] for a in report["approvals"]] == ["release-bot"], f"{rollout}: approvals")
    return [
        rollout_wanted(rollout, rollout, "waits at the gate after wave 1, approved, finishes"),
        *targets_wanted(rollout, fleet, "a target of the gated rollout: created"),
    ]


async def regions_sequential(stack: Stack) -> list[Wanted]:
    """Region 2's canary fails over the region's budget."""
    rollout = "regions-sequential"
    fleet = [
        Target(f"region-bad-r{r}-{i}" if (r, i) == (1, 0) else f"region-r{r}-{i}", region=region)
        for r, region in enumerate(REGIONS)
        for i in range(3)
    ]
    regions = {"order": list(REGIONS), "mode": "sequential", "max_failures": 0}
    await stack.start(rollout, fleet, waves=[1, "100%"], regions=regions)
    halted = await stack.until(rollout, _state_is("halted"), "halted by region 2")
    check(halted["halted_region"] == REGIONS[1], f"{rollout}: halted by {halted['halted_region']}")
    third = [t for t in fleet if t.region == REGIONS[2]]
    check(not any(stack.posts(t) for t in third), f"{rollout}: region 3 got a POST")
    await stack.steer("resume", rollout)
    expect_report(rollout, await stack.report(rollout), created=8, failed=1)
    return [
        rollout_wanted(
            rollout, rollout, "regions in sequence; region 2 over its budget halts it; resumed"
        ),
        *targets_wanted(rollout, fleet, "a target of one region"),
    ]


async def regions_parallel(stack: Stack) -> list[Wanted]:
    """Two regions in parallel mode."""
    rollout = "regions-parallel"
    fleet = [
        Target(f"parallel-r{r}-{i}", region=region)
        for r, region in enumerate(REGIONS[:2])
        for i in range(2)
    ]
    regions = {"order": [REGIONS[1], REGIONS[0]], "mode": "parallel", "max_failures": 1}
    await stack.start(rollout, fleet, waves=[1, "100%"], regions=regions)
    expect_report(rollout, await stack.report(rollout), created=4)
    return [
        rollout_wanted(rollout, rollout, "two regions in parallel, a budget each: completed"),
        *targets_wanted(rollout, fleet, "a target of one region"),
    ]


async def gates_continue_as_new(stack: Stack) -> list[Wanted]:
    """Soak and gate across runs, targets in pages."""
    rollout = "gates-continue-as-new"
    fleet = [Target(f"gates-can-{i:02d}") for i in range(5)]
    await stack.start(
        rollout,
        fleet,
        page_size=2,
        max_starts_per_run=2,
        waves=[2, "100%"],
        soak="2s",
        verify=True,
        approve_after=[1],
    )
    await stack.until(rollout, _state_is("awaiting_approval"), "at the gate")
    runs = await _runs_so_far(stack.client, rollout_id_of(rollout))
    check(len(runs) >= 2, f"{rollout}: {len(runs)} run(s) at the gate, not continued as new")
    await stack.approve(rollout, "release-bot")
    expect_report(rollout, await stack.report(rollout), created=5)
    pages = [
        Wanted(
            f"rollout/{rollout}/targets/{n}",
            rollout,
            f"page-{n}",
            f"stored page {n} of the rollout's targets",
        )
        for n in range(3)
    ]
    return [
        rollout_wanted(
            rollout, rollout, "continues as new in the soak and at the gate; verify reads pages"
        ),
        *pages,
        *targets_wanted(rollout, fleet, "a target read from a page: created"),
    ]


async def rollback(stack: Stack) -> list[Wanted]:
    """Created, adopted, failed and re-created meshes, then the rollback."""
    rollout = "rollback-source"
    created = [Target(f"rollback-new-{i:02d}") for i in range(3)]
    adopted = Target("rollback-old-00")
    failed = Target("create-failed-rollback-00")
    stack.state.seed_mesh(adopted.project_id, adopted.name, [adopted.cluster_id])
    await stack.start(rollout, [*created, adopted, failed], waves=[1, "100%"])
    expect_report(rollout, await stack.report(rollout), created=3, adopted=1, failed=1)
    # By hand, after the rollout: the first created mesh deleted and created again.
    first = stack.state.mesh_of(created[0])
    stack.state.delete_mesh(first.project_id, first.uid)

    async def gone() -> bool | None:
        return True if not stack.exists(created[0]) else None

    await eventually(gone, 30, "the hand-deleted mesh is gone")
    stack.state.seed_mesh(first.project_id, first.name, [created[0].cluster_id])
    await stack.rollback(rollout)
    report = await stack.rollback_report(rollout)
    check(
        (report["state"], report["deleted"], report["kept"]) == ("completed", 2, 1),
        f"rollback of {rollout}: {report['state']}, deleted {report['deleted']}, "
        f"kept {report['kept']}",
    )
    check(stack.exists(adopted) and stack.exists(created[0]), "a mesh it must keep is gone")
    return [
        rollout_wanted(
            rollout, "rollback", "the rolled-back rollout: 3 created, 1 adopted, 1 failed"
        ),
        Wanted(
            f"rollback/{rollout}",
            "rollback",
            "rollback",
            "deletes 2 by uid, keeps the re-created one, reports 1 adopted and 1 failed as "
            "not rolled back",
        ),
        Wanted(
            created[0].workflow_id,
            "rollback",
            "delete-kept",
            "DeleteMeshWorkflow of the re-created mesh: its uid is gone, another stands: kept",
        ),
        Wanted(
            created[1].workflow_id,
            "rollback",
            "delete-deleted",
            "DeleteMeshWorkflow: DELETE accepted, polled until 404",
        ),
    ]


async def rollback_halt_resume(stack: Stack) -> list[Wanted]:
    """A deletion that fails spends the rollback's budget of 0."""
    rollout = "rollback-halting"
    # The rollout's canary is deleted last: the stubborn mesh is in the wave deleted first.
    fleet = [Target("rollback-halt-00"), Target("rollback-stubborn-01"), Target("rollback-halt-02")]
    await stack.start(rollout, fleet, waves=[1, "100%"], max_failures=0)
    expect_report(rollout, await stack.report(rollout), created=3)
    await stack.rollback(rollout)
    await stack.until_rollback(rollout, "halted")
    check(stack.exists(fleet[0]), f"rollback of {rollout}: the canary was deleted before resume")
    await stack.steer_rollback("resume", rollout)
    report = await stack.rollback_report(rollout)
    check(
        (report["deleted"], report["failed"]) == (2, 1),
        f"rollback of {rollout}: deleted {report['deleted']}, failed {report['failed']}",
    )
    return [
        rollout_wanted(rollout, "rollback-halt-resume", "the rolled-back rollout: 3 created"),
        Wanted(
            f"rollback/{rollout}",
            "rollback-halt-resume",
            "rollback",
            "a deletion of the first wave ends DeleteFailed over a budget of 0: halted before "
            "the canary; resumed, the canary deleted",
        ),
        Wanted(
            fleet[1].workflow_id,
            "rollback-halt-resume",
            "delete-failed",
            "DeleteMeshWorkflow: the deletion ends DeleteFailed, a failed outcome",
        ),
    ]


async def rollback_continue_as_new(stack: Stack) -> list[Wanted]:
    """A paged rollback over several runs."""
    rollout = "rollback-paged"
    fleet = [Target(f"rollback-paged-{i:02d}") for i in range(5)]
    await stack.start(rollout, fleet, waves=[2, "100%"])
    expect_report(rollout, await stack.report(rollout), created=5)
    await stack.rollback(rollout, "2", "2")
    report = await stack.rollback_report(rollout)
    check(report["deleted"] == 5, f"rollback of {rollout}: deleted {report['deleted']}")
    runs = await _runs_so_far(stack.client, f"rollback/{rollout}")
    check(len(runs) >= 2, f"rollback of {rollout}: {len(runs)} run(s), not continued as new")
    pages = [
        Wanted(
            f"rollback/{rollout}/targets/{n}",
            "rollback-continue-as-new",
            f"page-{n}",
            f"stored page {n} of the rollback's targets",
        )
        for n in range(3)
    ]
    return [
        rollout_wanted(rollout, "rollback-continue-as-new", "the rolled-back rollout"),
        Wanted(
            f"rollback/{rollout}",
            "rollback-continue-as-new",
            "rollback",
            "5 deletions from pages, two starts per run",
        ),
        *pages,
        *targets_wanted("rollback-continue-as-new", fleet[:1], "a mesh's deletion"),
    ]


async def cancel_during_page_load(stack: Stack) -> list[Wanted]:
    """A cancel that strikes while the rollout awaits its first page."""
    rollout = "cancel-page-load"
    fleet = [Target(f"cancel-page-{i:02d}") for i in range(4)]
    pages = [page_workflow_id(rollout, n) for n in range(2)]
    # The pages exist before the start (which keeps a page stored already) on a task queue no
    # worker polls: the rollout's first load_target_page waits on them until the cancel.
    for n, workflow_id in enumerate(pages):
        targets = [
            MeshTarget.model_validate({"region": REGION, **t.manifest()})
            for t in fleet[2 * n : 2 * n + 2]
        ]
        await stack.client.start_workflow(
            TARGET_PAGE_WORKFLOW,
            TargetPage(rollout_id=rollout, page=n, targets=targets),
            id=workflow_id,
            task_queue="nobody-polls-this",
        )
    await stack.start(rollout, fleet, page_size=2)
    handle = stack.client.get_workflow_handle(rollout_id_of(rollout))

    async def loading() -> bool | None:
        pending = (await handle.describe()).raw_description.pending_activities
        return True if any(a.activity_type.name == "load_target_page" for a in pending) else None

    await eventually(loading, 60, f"{rollout} waits for its first page")
    await handle.cancel()
    report = await stack.report(rollout)
    for workflow_id in pages:
        await stack.client.get_workflow_handle(workflow_id).terminate("recorded")
    status = (await handle.describe()).status
    check(status == WorkflowExecutionStatus.CANCELED, f"{rollout}: ended {status}")
    expect_report(rollout, report, "cancelled", cancelled=4, created=0)
    check(not any(stack.posts(t) for t in fleet), f"{rollout}: a target got a POST")
    return [
        rollout_wanted(
            rollout,
            "cancel-during-page-load",
            "cancelled from Temporal while load_target_page waits: Canceled, 4 cancelled",
        )
    ]


async def converge(stack: Stack) -> list[Wanted]:
    """Each judgement of a converging target, one mesh each."""
    rollout = "converge"
    in_sync = Target("converge-same-00", sampling=10)
    other = Target("converge-other-00", sampling=10)
    missing = Target("converge-new-00", sampling=10)
    older = Target("converge-older-00", sampling=10)
    state = stack.state
    state.seed_mesh(in_sync.project_id, in_sync.name, [in_sync.cluster_id], config=in_sync.config)
    state.seed_mesh(
        other.project_id, other.name, [other.cluster_id], config=Target("x", sampling=1).config
    )
    state.seed_mesh(
        older.project_id,
        older.name,
        [older.cluster_id],
        version="1.15.7-r3",
        config=older.config,
    )
    await stack.start(rollout, [in_sync, other, missing, older], existing="converge")
    report = await stack.report(rollout)
    check(
        (report["in_sync"], report["updated"], report["created"], report["upgraded"])
        == (1, 1, 1, 1),
        f"{rollout}: {report}",
    )
    check(report["finalized"] == 1 and report["failed"] == 0, f"{rollout}: {report}")
    check(state.stats.updates(state.mesh_of(in_sync).uid) == 0, f"{rollout}: in sync got a PUT")
    return [
        rollout_wanted(rollout, "converge", "1 in sync, 1 updated, 1 created, 1 failed"),
        Wanted(in_sync.workflow_id, "converge", "in-sync", "judged in sync: nothing sent"),
        Wanted(other.workflow_id, "converge", "updated", "judged, one PUT, read back"),
        Wanted(missing.workflow_id, "converge", "created", "judged missing, then created"),
        Wanted(
            older.workflow_id,
            "converge",
            "finalized",
            "an older version: upgraded, then finalized after the rollout",
        ),
    ]


async def converge_rollback(stack: Stack) -> list[Wanted]:
    """Updated meshes put back, one changed by hand since kept, a created one deleted."""
    rollout = "converge-undone"
    restored = Target("undone-restored-00", sampling=10)
    edited = Target("undone-edited-00", sampling=10)
    created = Target("undone-new-00", sampling=10)
    state = stack.state
    before = Target("x", sampling=1).config
    for t in (restored, edited):
        state.seed_mesh(t.project_id, t.name, [t.cluster_id], config=before)
    await stack.start(rollout, [restored, edited, created], existing="converge")
    expect_report(rollout, await stack.report(rollout), created=1)
    # By hand, after the rollout: another configuration for one of the updated meshes.
    record = state.mesh_of(edited)
    state.update_mesh(record.project_id, record.uid, Target("x", sampling=50).config or {})

    async def edited_applied() -> bool | None:
        spec = state.mesh_of(edited).spec_at(state.now())
        return True if spec.get("config") == Target("x", sampling=50).config else None

    await eventually(edited_applied, 30, "the hand edit is echoed")
    await stack.rollback(rollout)
    report = await stack.rollback_report(rollout)
    check(
        (report["state"], report["restored"], report["deleted"], report["kept"])
        == ("completed", 1, 1, 1),
        f"rollback of {rollout}: {report}",
    )
    return [
        Wanted(
            f"rollback/{rollout}",
            "converge-rollback",
            "rollback",
            "restores 1 updated mesh, keeps 1 changed since, deletes 1 created",
        ),
        Wanted(restored.workflow_id, "converge-rollback", "restored", "judged, one PUT back"),
        Wanted(edited.workflow_id, "converge-rollback", "restore-kept", "changed since: kept"),
    ]


async def drift_check(stack: Stack) -> list[Wanted]:
    """A drift schedule's triggered check, and its page once the schedule is deleted."""
    name = "recorded"
    fleet = [Target("drift-same-00", sampling=10), Target("drift-other-00", sampling=10)]
    state = stack.state
    state.seed_mesh(
        fleet[0].project_id, fleet[0].name, [fleet[0].cluster_id], config=fleet[0].config
    )
    state.seed_mesh(
        fleet[1].project_id,
        fleet[1].name,
        [fleet[1].cluster_id],
        config=Target("x", sampling=1).config,
    )
    manifest = str(stack._manifest(f"drift-{name}", fleet, {}))
    await stack._release_python(
        "-m", "meshfleet", "drift", manifest, "--every", "1h", "--name", name
    )
    await stack.client.get_schedule_handle(f"drift/{name}").trigger()

    async def checked() -> str | None:
        async for execution in stack.client.list_workflows(
            "WorkflowType = 'DriftCheckWorkflow' AND ExecutionStatus = 'Completed'"
        ):
            return execution.id
        return None

    check_id = await eventually(checked, 60, "the triggered drift check completed")
    report = await stack.client.get_workflow_handle(check_id).result()
    check(report["total"] - report["in_sync"] == 1, f"drift check {check_id}: {report}")

    async def page_id() -> str | None:
        async for execution in stack.client.list_workflows(
            "WorkflowType = 'DriftTargetPageWorkflow'"
        ):
            if execution.status != WorkflowExecutionStatus.RUNNING:
                return execution.id
        return None

    await stack._release_python("-m", "meshfleet", "drift", "--delete", name)
    page = await eventually(page_id, 30, "the drift page is terminated")
    return [
        Wanted(check_id, "drift-check", "check", "a triggered check of 2 targets, 1 drifted"),
        Wanted(page, "drift-check", "page", "a drift schedule's page, terminated on delete"),
    ]


OLD = "1.15.7-r3"


def _seed_old(stack: Stack, fleet: list[Target], **seeded: Any) -> None:
    for t in fleet:
        stack.state.seed_mesh(t.project_id, t.name, [t.cluster_id], **{"version": OLD, **seeded})


async def upgrade(stack: Stack) -> list[Wanted]:
    """The canary upgraded, the gate, the rest, then every mesh finalized."""
    rollout = "upgrade"
    fleet = [Target(f"upgrade-{i:02d}") for i in range(3)]
    _seed_old(stack, fleet)
    await stack.start(
        rollout, fleet, existing="converge", waves=[1, "100%"], approve_after=[1], verify=True
    )
    gate = await stack.until(rollout, _state_is("awaiting_approval"), "at the gate")
    check((gate["upgraded"], gate["finalized"]) == (1, 0), f"{rollout}: at the gate {gate}")
    await stack.approve(rollout, "release-bot")
    report = await stack.report(rollout)
    check(
        (report["upgraded"], report["finalized"], report["failed"]) == (3, 3, 0),
        f"{rollout}: {report}",
    )
    return [
        rollout_wanted(
            rollout, rollout, "upgraded, gated, verified, then finalized in waves: 3 finalized"
        ),
        *targets_wanted(rollout, fleet, "a mesh's last run: its upgrade finalized"),
    ]


async def upgrade_manual_finalize(stack: Stack) -> list[Wanted]:
    """A rollout waits to finalize until it is told to."""
    rollout = "upgrade-manual"
    fleet = [Target(f"upgrade-manual-{i:02d}") for i in range(2)]
    _seed_old(stack, fleet)
    await stack.start(rollout, fleet, existing="converge", upgrade={"finalize": "manual"})
    waiting = await stack.until(rollout, _state_is("awaiting_finalize"), "waiting to finalize")
    check(waiting["finalized"] == 0, f"{rollout}: finalized before it was asked: {waiting}")
    await stack._release_python("-m", "meshfleet", "finalize", rollout, "--by", "release-bot")
    report = await stack.report(rollout)
    check((report["upgraded"], report["finalized"]) == (2, 2), f"{rollout}: {report}")
    return [
        rollout_wanted(
            rollout, "upgrade-manual-finalize", "awaiting_finalize, the finalize update, done"
        )
    ]


async def upgrade_rollback(stack: Stack) -> list[Wanted]:
    """Upgraded meshes rolled back through their tasks before they were finalized."""
    rollout = "upgrade-undone"
    fleet = [Target(f"upgrade-undone-{i:02d}") for i in range(2)]
    _seed_old(stack, fleet)
    await stack.start(rollout, fleet, existing="converge", upgrade={"finalize": "manual"})
    await stack.until(rollout, _state_is("awaiting_finalize"), "waiting to finalize")
    await stack.steer("cancel", rollout)
    await stack.report(rollout)
    await stack.rollback(rollout)
    report = await stack.rollback_report(rollout)
    check(
        (report["state"], report["restored"], report["kept"]) == ("completed", 2, 0),
        f"rollback of {rollout}: {report}",
    )
    return [
        rollout_wanted(rollout, "upgrade-rollback", "cancelled while waiting to finalize"),
        Wanted(
            f"rollback/{rollout}",
            "upgrade-rollback",
            "rollback",
            "rolls 2 upgraded meshes back through their tasks",
        ),
        Wanted(fleet[0].workflow_id, "upgrade-rollback", "rolled-back", "an upgrade rolled back"),
    ]


async def upgrade_halt(stack: Stack) -> list[Wanted]:
    """A first wave whose upgrades fail or are refused: halted, then cancelled."""
    rollout = "upgrade-halt"
    failing = Target("upgrade-dp-failed-00")
    behind = Target("upgrade-behind-01")
    busy = Target("upgrade-busy-02")
    fine = Target("upgrade-fine-03")
    later = Target("upgrade-later-04")
    _seed_old(stack, [failing, fine, later])
    _seed_old(stack, [behind], version="1.13.9-r1")
    _seed_old(stack, [busy], phase="Upgrading")
    fleet = [failing, behind, busy, fine, later]
    await stack.start(rollout, fleet, existing="converge", waves=[4, "100%"], max_failures=0)
    halted = await stack.until(
        rollout,
        lambda p: p["state"] == "halted" and p["in_flight"] == 0,
        "halted by the failed upgrades, nothing in flight",
    )
    codes = {f["mesh_name"]: f["error_code"] for f in halted["failures"]}
    check(
        codes
        == {
            failing.name: "UpgradeStepFailed",
            behind.name: "UpgradePathTooLong",
            busy.name: "MeshUpgrading",
        },
        f"{rollout}: failures {halted['failures']}",
    )
    check(halted["upgraded"] == 1, f"{rollout}: {halted}")
    await stack.steer("cancel", rollout)
    await stack.report(rollout)
    return [
        rollout_wanted(rollout, "upgrade-halt", "halted by 3 failed upgrades, cancelled"),
        Wanted(failing.workflow_id, "upgrade-halt", "step-failed", "data plane failed"),
        Wanted(behind.workflow_id, "upgrade-halt", "path-too-long", "two lines behind"),
        Wanted(busy.workflow_id, "upgrade-halt", "upgrading", "someone else's upgrade"),
        Wanted(fine.workflow_id, "upgrade-halt", "upgraded", "upgraded, not finalized"),
    ]


async def upgrade_cancel(stack: Stack) -> list[Wanted]:
    """A cancel while task creates wait unanswered: each upgrade stops after its pre-check."""
    rollout = "upgrade-cancel"
    fleet = [Target(f"upgrade-held-{i:02d}") for i in range(2)]
    _seed_old(stack, fleet)
    await stack.start(rollout, fleet, existing="converge")
    state = stack.state

    async def held() -> bool | None:
        uids = [state.mesh_of(t).uid for t in fleet]
        return True if all(state.stats.upgrade_tasks(uid) == 1 for uid in uids) else None

    await eventually(held, 30, "both tasks created, their answers held")
    await stack.steer("cancel", rollout)
    report = await stack.report(rollout)
    stands = {u["mesh_name"]: (u["outcome"], u["step"]) for u in report["upgrades"]}
    check(
        stands == {t.name: ("cancelled", "pre_check") for t in fleet},
        f"{rollout}: {report['upgrades']}",
    )
    return [
        rollout_wanted(rollout, "upgrade-cancel", "cancelled during the pre-checks"),
        Wanted(fleet[0].workflow_id, "upgrade-cancel", "stopped", "stopped after its pre-check"),
    ]


ALL = (
    upgrade,
    upgrade_manual_finalize,
    upgrade_rollback,
    upgrade_halt,
    upgrade_cancel,
    converge,
    converge_rollback,
    drift_check,
    cancel_during_page_load,
    rollback,
    rollback_halt_resume,
    rollback_continue_as_new,
    soak_verify,
    verify_webhook,
    approval_gate,
    regions_sequential,
    regions_parallel,
    gates_continue_as_new,
)
