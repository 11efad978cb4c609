"""A rollout id names one manifest: `meshfleet start` with a taken id, end to end.

The real dev server, the production worker in this process, the simulator over loopback and
the CLI as a process: what is checked is the exit code a pipeline sees, what it is told, and
that the simulator received no POST for the refused manifest.
"""

from __future__ import annotations

from pathlib import Path

from temporalio.client import Client

from meshfleet import rollouts
from meshfleet.cli.exit_codes import ExitCode
from meshfleet.contract.payloads import ROLLOUT_WORKFLOW, rollout_workflow_id
from meshfleet.rollout_identity import (
    RolloutIdReusedError,
    check_reuse,
    manifest_digest,
    recorded_digest,
)
from meshfleet.simulator.config import SimulatorConfig
from meshfleet.simulator.testing import serve
from tests.helpers.cli_rollouts import temporal_env, unique
from tests.helpers.cli_run import manifest_target, meshfleet, write_manifest
from tests.helpers.fleet import SIM_TOKEN, running_worker, spec, target
from tests.helpers.rollout_watch import runs

P1 = "8888888888888888888888888888888c"


async def test_a_taken_id_with_another_manifest_is_refused_and_posts_nothing(
    client: Client, task_queue: str, tmp_path: Path
) -> None:
    tag = unique("reuse")[-6:]
    first = write_manifest(
        tmp_path / "first.yaml", [manifest_target(P1, f"one-{tag}-{i}") for i in range(2)]
    )
    other = write_manifest(
        tmp_path / "other.yaml", [manifest_target(P1, f"two-{tag}-{i}") for i in range(3)]
    )
    rollout_id = unique("reuse")
    config = SimulatorConfig(create_seconds=0.2, delete_seconds=0.2, tokens=(SIM_TOKEN,))
    async with serve(config) as sim, running_worker(client, task_queue, sim.url):
        env = temporal_env(client, task_queue) | {
            "ASM_ENDPOINT": sim.url,
            "ASM_AUTH_TOKEN": SIM_TOKEN,
        }
        ran = await meshfleet("start", str(first), "--rollout-id", rollout_id, "--wait", env=env)
        refused = await meshfleet("start", str(other), "--rollout-id", rollout_id, env=env)
        same = await meshfleet("start", str(first), "--rollout-id", rollout_id, env=env)
        posts_of_other = sum(sim.state.stats.posts(P1, f"two-{tag}-{i}") for i in range(3))
        rolled_back = await meshfleet("rollback", rollout_id, "--wait", env=env)
        after_rollback = await meshfleet("start", str(first), "--rollout-id", rollout_id, env=env)
        posts_of_first = sum(sim.state.stats.posts(P1, f"one-{tag}-{i}") for i in range(2))

    assert ran.code == ExitCode.OK, ran.err
    assert refused.code == ExitCode.INVALID, refused.err
    assert refused.err.count("\n") == 1  # one line
    assert f"rollout {rollout_id!r} ran another manifest" in refused.err
    assert "the manifests differ, nothing started" in refused.err
    assert posts_of_other == 0
    # The same manifest attaches, as a pipeline's retry expects.
    assert same.code == ExitCode.OK, same.err
    assert "attached, nothing new started" in same.err
    assert rolled_back.code == ExitCode.OK, rolled_back.err
    assert after_rollback.code == ExitCode.INVALID, after_rollback.err
    assert f"rollout {rollout_id!r} was rolled back" in after_rollback.err
    assert posts_of_first == 2  # once each, by the first start
    assert await runs(client, rollout_workflow_id(rollout_id)) == 1


async def test_a_rollout_without_the_memo_is_judged_by_its_input(
    client: Client, task_queue: str
) -> None:
    # Started as a release before the memo started it: the input alone, no worker needed.
    rollout_id = unique("no-memo")
    rollout = spec(rollout_id, [target(i) for i in range(3)])
    targets, inp = rollouts.rollout_input(rollout, use_search_attributes=False)
    workflow_id = rollout_workflow_id(rollout_id)
    handle = await client.start_workflow(
        ROLLOUT_WORKFLOW, inp, id=workflow_id, task_queue=task_queue
    )
    try:
        desc = await handle.describe()
        digest = manifest_digest(rollout.strategy, targets)
        assert await recorded_digest(client, desc) == digest
        assert await check_reuse(client, rollout_id, workflow_id, digest) is not None
        other = spec(rollout_id, [target(i) for i in range(4)])
        try:
            await rollouts.start_rollout(client, other, task_queue=task_queue)
        except RolloutIdReusedError as exc:
            assert "the manifests differ" in str(exc)
        else:
            raise AssertionError("another manifest attached to the rollout")
    finally:
        await handle.terminate("test done")


def test_the_digest_follows_what_the_manifest_does_not_how_it_is_written() -> None:
    a = spec("d", [target(0), target(1)])
    spelled_out = spec("d", [target(0), target(1)], window=a.strategy.window)
    assert manifest_digest(a.strategy, a.targets) == manifest_digest(
        spelled_out.strategy, spelled_out.targets
    )
    reordered = spec("d", [target(1), target(0)])
    assert manifest_digest(a.strategy, a.targets) != manifest_digest(
        reordered.strategy, reordered.targets
    )
    wider = spec("d", [target(0), target(1)], window=a.strategy.window + 1)
    assert manifest_digest(a.strategy, a.targets) != manifest_digest(wider.strategy, wider.targets)
