"""The recorder's scenarios of progressive delivery: soak, verify, webhook, gates, regions.

Played by ``record_histories --release <the version in development>`` with this checkout's own
worker and CLI, since no release has these paths yet. Each scenario checks that it took the path
it exists for before its histories are written.
"""

from __future__ import annotations

from typing import Any

from tests.upgrade.record_histories import (
    VERIFY_TOKEN,
    Stack,
    Target,
    Wanted,
    _runs_so_far,
    check,
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


ALL = (
    soak_verify,
    verify_webhook,
    approval_gate,
    regions_sequential,
    regions_parallel,
    gates_continue_as_new,
)
