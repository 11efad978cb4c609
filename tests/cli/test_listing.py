"""``meshfleet list`` says of every rollout and rollback what ``status`` says, not only whether
its Temporal execution is open: a cancelled, an over-budget, a completed rollout, one at a gate,
and a rollback, against the dev server, a real worker and the simulator over loopback."""

from __future__ import annotations

import re
from pathlib import Path

from temporalio.client import Client

from meshfleet import rollouts
from meshfleet.cli.exit_codes import ExitCode
from meshfleet.cli.listing import LIST_KEYS
from meshfleet.simulator.testing import serve
from tests.helpers.cli_rollouts import doomed_simulator, temporal_env, unique
from tests.helpers.cli_run import manifest_target, meshfleet, write_manifest
from tests.helpers.fleet import running_worker
from tests.helpers.rollout_watch import progress_reaches

P1 = "5555555555555555555555555555555e"
MOMENT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


async def test_list_shows_each_rollout_and_rollback_in_the_state_status_says(
    client: Client, task_queue: str, tmp_path: Path
) -> None:
    tag = unique("ls")
    ids = {k: f"{tag}-{k}" for k in ("done", "over", "cancel", "gate")}
    done = write_manifest(tmp_path / "done.yaml", [manifest_target(P1, f"{tag}-ok")])
    over = write_manifest(
        tmp_path / "over.yaml",
        [manifest_target(P1, f"doomed-{tag}-{i}") for i in range(2)],
        max_failures=0,
    )
    cancel = write_manifest(
        tmp_path / "cancel.yaml", [manifest_target(P1, f"{tag}-c{i}") for i in range(4)], window=1
    )
    gate = write_manifest(
        tmp_path / "gate.yaml",
        [manifest_target(P1, f"{tag}-g{i}") for i in range(2)],
        waves=[1, "100%"],
        approve_after=[1],
    )
    env = temporal_env(client, task_queue)
    config = doomed_simulator()
    async with serve(config) as sim, running_worker(client, task_queue, sim.url):
        await meshfleet("start", str(done), "--rollout-id", ids["done"], "--wait", env=env)
        await meshfleet("start", str(over), "--rollout-id", ids["over"], "--wait", env=env)
        await meshfleet("start", str(cancel), "--rollout-id", ids["cancel"], env=env)
        await rollouts.pause(client, ids["cancel"])
        await progress_reaches(
            rollouts.rollout_handle(client, ids["cancel"]),
            lambda p: p.in_flight == 0,
            "the paused rollout has nothing in flight",
        )
        await rollouts.cancel(client, ids["cancel"])
        await meshfleet("wait", ids["cancel"], env=env)
        await meshfleet("start", str(gate), "--rollout-id", ids["gate"], "--wait", env=env)
        await meshfleet("rollback", ids["done"], "--wait", env=env)
        listed = await meshfleet("list", "--json", "--limit", "1000", env=env)
        table = await meshfleet("list", "--limit", "1000", env=env)
        statuses = {
            kind: (await meshfleet("status", rollout_id, "--json", env=env)).json()["state"]
            for kind, rollout_id in ids.items()
        }
        rollback_status = await meshfleet("status", ids["done"], "--rollback", "--json", env=env)
        await meshfleet("cancel", ids["gate"], env=env)

    assert listed.code == ExitCode.OK, listed.err
    rows = {
        (r["kind"], r["rollout_id"]): r for r in listed.json() if r["rollout_id"] in ids.values()
    }
    assert all(list(r) == list(LIST_KEYS) for r in rows.values())
    seen = {key: (r["state"], r["execution_status"]) for key, r in rows.items()}
    assert seen == {
        ("rollout", ids["done"]): ("completed", "Completed"),
        ("rollout", ids["over"]): ("failed", "Failed"),
        ("rollout", ids["cancel"]): ("cancelled", "Canceled"),
        ("rollout", ids["gate"]): ("awaiting_approval", "Running"),
        ("rollback", ids["done"]): ("completed", "Completed"),
    }
    # The state is the one `status` says, for each of them.
    for kind, rollout_id in ids.items():
        assert rows[("rollout", rollout_id)]["state"] == statuses[kind], kind
    assert rows[("rollback", ids["done"])]["state"] == rollback_status.json()["state"]
    assert rows[("rollback", ids["done"])]["workflow_id"] == f"rollback/{ids['done']}"
    for r in rows.values():
        assert MOMENT.match(r["started"]), r
        if r["execution_status"] == "Running":
            assert r["closed"] is None, r
        else:
            assert MOMENT.match(r["closed"]), r

    assert table.code == ExitCode.OK, table.err
    lines = table.out.splitlines()
    assert lines[0].split() == ["KIND", "ROLLOUT", "STATE", "STARTED", "CLOSED"]
    by_words = [line.split() for line in lines[1:]]
    assert ["rollout", ids["cancel"], "cancelled"] in [w[:3] for w in by_words]
    assert ["rollback", ids["done"], "completed"] in [w[:3] for w in by_words]
    gate_row = next(w for w in by_words if w[:2] == ["rollout", ids["gate"]])
    assert gate_row[2] == "awaiting_approval" and MOMENT.match(gate_row[3]) and gate_row[4] == "-"
