"""``meshfleet drift FILE``: one check of the fleet, through the real CLI against the simulator.

Each command runs as its own process, so the exit codes asserted are those a pipeline sees.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from meshfleet.cli.exit_codes import ExitCode
from meshfleet.simulator.config import SimulatorConfig
from meshfleet.simulator.testing import serve
from tests.drift.fleet import (
    OLDER,
    P1,
    P2,
    REGION,
    SAMPLING,
    VERSION,
    fleet,
    in_sync_fleet,
    new_tag,
    seed,
    tagged,
)
from tests.helpers.cli_run import cli_env, meshfleet, write_manifest
from tests.helpers.fleet import SIM_TOKEN


async def test_a_fleet_that_drifted_is_listed_and_exits_5(tmp_path: Path) -> None:
    tag = new_tag()
    path = write_manifest(tmp_path / "fleet.yaml", fleet(tag))
    async with serve(SimulatorConfig(create_seconds=0, tokens=(SIM_TOKEN,))) as sim:
        seed(sim.state, tag)
        held = len(sim.state.all_meshes())
        env = cli_env(ASM_ENDPOINT=sim.url, ASM_AUTH_TOKEN=SIM_TOKEN)
        text = await meshfleet("drift", str(path), env=env)
        as_json = await meshfleet("drift", str(path), "--json", env=env)
        after = len(sim.state.all_meshes())
        writes = sum(sim.state.stats.requests[op] for op in ("create", "update", "delete"))
        lists = sim.state.stats.requests["list"]

    assert text.code == ExitCode.CHANGES_PENDING, text.err
    assert text.out.splitlines() == [
        "5 targets: 2 in sync, 3 drifted (1 missing, 1 update, 1 upgrade)",
        f"update     {REGION}  {P1}  {tagged('drift', tag)}  cluster cluster-drift-{tag}  "
        "1 field differs, phase Running",
        f"    {SAMPLING}: 1 -> 10",
        f"upgrade    {REGION}  {P2}  {tagged('old', tag)}  cluster cluster-old-{tag}  "
        f"{OLDER} -> {VERSION}, phase Running",
        f"missing    {REGION}  {P1}  {tagged('new', tag)}  cluster cluster-new-{tag}",
    ]
    assert text.err == ""

    assert as_json.code == ExitCode.CHANGES_PENDING, as_json.err
    document = as_json.json()
    assert {k: document[k] for k in ("source", "total", "not_in_sync", "in_sync")} == {
        "source": str(path),
        "total": 5,
        "not_in_sync": 3,
        "in_sync": 2,
    }
    assert {k: document[k] for k in ("missing", "update", "upgrade", "downgrade")} == {
        "missing": 1,
        "update": 1,
        "upgrade": 1,
        "downgrade": 0,
    }
    assert (document["conflict"], document["error"], document["unlisted"]) == (0, 0, 0)
    assert document["refused"] == []
    by_name = {t["mesh_name"]: t for t in document["drifted"]}
    assert set(by_name) == {tagged("drift", tag), tagged("old", tag), tagged("new", tag)}
    assert by_name[tagged("drift", tag)] == {
        "project_id": P1,
        "region": REGION,
        "cluster_id": f"cluster-drift-{tag}",
        "mesh_name": tagged("drift", tag),
        "judgement": "update",
        "changes": [{"path": SAMPLING, "before": 1, "after": 10}],
        "mesh_version": VERSION,
        "detail": "1 field differs, phase Running",
    }
    assert by_name[tagged("old", tag)]["judgement"] == "upgrade"
    assert by_name[tagged("old", tag)]["mesh_version"] == OLDER
    assert by_name[tagged("new", tag)]["judgement"] == "missing"
    assert by_name[tagged("new", tag)]["mesh_version"] is None

    # Read-only: nothing created, updated or deleted; one list per project and region, each run.
    assert (after, writes) == (held, 0)
    assert lists == 2 * 2


async def test_a_fleet_in_sync_exits_0(tmp_path: Path) -> None:
    tag = new_tag()
    path = write_manifest(tmp_path / "fleet.yaml", in_sync_fleet(tag))
    async with serve(SimulatorConfig(create_seconds=0, tokens=(SIM_TOKEN,))) as sim:
        seed(sim.state, tag)
        env = cli_env(ASM_ENDPOINT=sim.url, ASM_AUTH_TOKEN=SIM_TOKEN)
        text = await meshfleet("drift", str(path), env=env)
        as_json = await meshfleet("drift", str(path), "--json", env=env)

    assert text.code == ExitCode.OK, text.err
    assert text.out.splitlines() == ["2 targets: all in sync"]
    assert as_json.code == ExitCode.OK
    document = as_json.json()
    assert (document["total"], document["in_sync"], document["not_in_sync"]) == (2, 2, 0)
    assert document["drifted"] == []


async def test_a_refused_list_exits_1_and_asm_unreachable_exits_3(tmp_path: Path) -> None:
    tag = new_tag()
    path = write_manifest(tmp_path / "fleet.yaml", fleet(tag))
    async with serve(SimulatorConfig(tokens=(SIM_TOKEN,))) as sim:
        refused = await meshfleet(
            "drift", str(path), "--json", env=cli_env(ASM_ENDPOINT=sim.url, ASM_AUTH_TOKEN="nope")
        )
    unreachable = await meshfleet(
        "drift", str(path), env=cli_env(ASM_ENDPOINT="http://127.0.0.1:1", ASM_AUTH_TOKEN="t")
    )

    assert refused.code == ExitCode.FAILED, refused.err
    document = refused.json()
    assert (document["error"], document["not_in_sync"]) == (5, 5)
    assert {(r["project_id"], r["status"]) for r in document["refused"]} == {(P1, 401), (P2, 401)}
    # Why, once per project and region, on standard error.
    assert sum("list call refused: HTTP 401" in line for line in refused.err.splitlines()) == 2

    assert unreachable.code == ExitCode.UNREACHABLE
    assert unreachable.out == ""
    assert "ASM unreachable" in unreachable.err


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--every", "30s", "--name", "n"], "--every: 30s is shorter than a minute"),
        (["--every", "soon", "--name", "n"], "--every: 'soon' is not a duration"),
        (["--every", "6h"], "--every and --name go together"),
        (["--name", "n"], "--every and --name go together"),
        (["--every", "6h", "--name", "a/b"], "--name: 'a/b' is not a drift schedule name"),
        (["--list"], "--list and --delete take no FILE"),
    ],
)
async def test_usage_mistakes_are_refused_with_2_before_anything_is_asked(
    tmp_path: Path, args: list[str], said: str
) -> None:
    path = write_manifest(tmp_path / "fleet.yaml", in_sync_fleet(new_tag()))
    # Nothing listens at either address: a usage error must not need them.
    env = cli_env(ASM_ENDPOINT="http://127.0.0.1:1", TEMPORAL_ADDRESS="127.0.0.1:1")

    run = await meshfleet("drift", str(path), *args, env=env)

    assert run.code == ExitCode.INVALID
    assert run.out == ""
    [line] = run.err.splitlines()
    assert line.startswith(f"meshfleet: {said}"), line


async def test_without_a_file_or_a_schedule_to_look_at_it_is_a_usage_error() -> None:
    run = await meshfleet("drift", env=cli_env(TEMPORAL_ADDRESS="127.0.0.1:1"))

    assert run.code == ExitCode.INVALID
    assert run.err.startswith("meshfleet: missing FILE, or --list, or --delete NAME")
