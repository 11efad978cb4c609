"""``meshfleet plan`` as the fleet's change set, through the real CLI against the simulator.

A fleet holds a target in each judgement: missing (create), created from the target's own
request (in_sync), created with another configuration (update, its field on a line below),
running a version one line older (upgrade) and a newer one (downgrade), and a name taken on another
cluster (conflict). The plan says, below each mesh that differs, what the rollout does with it
under ``strategy.existing``; ``--json`` says the same per target; and the exit code says whether
anything is pending (5) or the fleet is the manifest (0).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from meshfleet.cli.exit_codes import ExitCode
from meshfleet.cli.plan_output import UPGRADE_NOTE
from meshfleet.models import MeshTarget
from meshfleet.simulator.config import SimulatorConfig
from meshfleet.simulator.state import SimulatorState
from meshfleet.simulator.testing import serve
from tests.helpers.cli_run import Run, cli_env, manifest_target, meshfleet, write_manifest
from tests.helpers.fleet import SIM_TOKEN

P1 = "0123456789abcdef0123456789abcdef"
REGION = "ap-southeast-3"
VERSION = "1.18.7-r5"
OLDER = "1.15.7-r1"
NEWER = "1.18.9-r1"
SAMPLED = {"telemetryConfig": {"tracing": {"randomSamplingPercentage": 10}}}
SAMPLED_LESS = {"telemetryConfig": {"tracing": {"randomSamplingPercentage": 1}}}
SAMPLING = "config.telemetryConfig.tracing.randomSamplingPercentage"
NOT_COMPARED = (
    "note: ASM does not echo a cluster's installation nodes and injection namespaces, so a "
    "change to node_ids or namespaces is not seen"
)


def _target(name: str, *, config: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    entry = manifest_target(P1, name, **extra)
    return entry if config is None else {**entry, "config": config}


FLEET = [
    _target("mesh-new"),
    _target("mesh-same", config=SAMPLED),
    _target("mesh-drift", config=SAMPLED),
    _target("mesh-old"),
    _target("mesh-ahead"),
    _target("mesh-taken"),
]


def _put_in_place(state: SimulatorState, entry: dict[str, Any], **changed: Any) -> None:
    """The mesh a rollout of ``entry`` would have created, with ``changed`` fields of its own."""
    target = MeshTarget.model_validate({"region": REGION, "version": VERSION, **entry, **changed})
    state.create_mesh(P1, target.to_request())


def _seed_fleet(state: SimulatorState) -> None:
    by_name = {entry["mesh_name"]: entry for entry in FLEET}
    _put_in_place(state, by_name["mesh-same"])
    _put_in_place(state, by_name["mesh-drift"], config=SAMPLED_LESS)
    state.seed_mesh(P1, "mesh-old", ["cluster-mesh-old"], version=OLDER)
    state.seed_mesh(P1, "mesh-ahead", ["cluster-mesh-ahead"], version=NEWER)
    state.seed_mesh(P1, "mesh-taken", ["cluster-someone-elses"])


async def _plan(path: Path, *flags: str) -> tuple[Run, int]:
    """``meshfleet plan`` of ``path`` against a simulator holding the fleet; and how many
    meshes the simulator holds after it (a dry run adds none)."""
    async with serve(SimulatorConfig(create_seconds=0, tokens=(SIM_TOKEN,))) as sim:
        _seed_fleet(sim.state)
        held = len(sim.state.all_meshes())
        env = cli_env(ASM_ENDPOINT=sim.url, ASM_AUTH_TOKEN=SIM_TOKEN)
        run = await meshfleet("plan", str(path), *flags, env=env)
        assert len(sim.state.all_meshes()) == held
        return run, held


def _rows_and_lines_under(out: str) -> list[tuple[str, list[str]]]:
    """Each row's first cell (the judgement) with the indented lines below it."""
    header, *lines = out.splitlines()
    assert header.split() == ["ACTION", "REGION", "PROJECT", "MESH", "CLUSTER"]
    rows: list[tuple[str, list[str]]] = []
    for line in lines:
        if line.startswith("  "):
            rows[-1][1].append(line.strip())
        else:
            rows.append((line.split("  ")[0], []))
    return rows


# --- the text --------------------------------------------------------------------------------


ROWS = [
    "create",
    "in_sync (exists, phase Running)",
    "update",
    f"upgrade ({OLDER} -> {VERSION}, phase Running)",
    f"downgrade ({NEWER} -> {VERSION}, phase Running)",
    "conflict (name used by a mesh on cluster cluster-someone-elses)",
]
"""The first cell of each row of ``FLEET``'s plan; an update's says how many fields differ."""


def _judged(rows: list[tuple[str, list[str]]]) -> list[tuple[str, list[str]]]:
    """An update's row cell without its count of fields (the lines below list them)."""
    return [
        (cell.split(" (")[0] if cell.startswith("update") else cell, below) for cell, below in rows
    ]


REFUSED = (
    f"fails DowngradeRefused: mesh mesh-ahead runs {NEWER}, newer than the manifest's {VERSION}: "
    "meshfleet never downgrades a mesh"
)
UPGRADED = (
    "upgrade through ASM's canary upgrade: pre-check, control plane, data plane; finalized "
    "after the rollout"
)


@pytest.mark.parametrize(
    ("existing", "update", "upgrade", "downgrade", "does"),
    [
        (
            "adopt",
            "adopted as it stands (drifted)",
            "adopted as it stands (drifted)",
            # Adopting changes nothing, so a newer mesh too is taken as it stands.
            "adopted as it stands (drifted)",
            "1 create, 1 nothing, 3 adopt, 1 fail",
        ),
        (
            "converge",
            "update in place",
            UPGRADED,
            REFUSED,
            "1 create, 1 nothing, 1 update, 1 upgrade, 2 fail",
        ),
        (
            "require_match",
            "fails MeshDrifted",
            "fails MeshDrifted",
            REFUSED,
            "1 create, 1 nothing, 4 fail",
        ),
    ],
)
async def test_the_plan_shows_every_judgement_and_what_the_rollout_does_with_it(
    tmp_path: Path, existing: str, update: str, upgrade: str, downgrade: str, does: str
) -> None:
    path = write_manifest(tmp_path / "fleet.yaml", FLEET, existing=existing)
    run, _ = await _plan(path)

    assert run.code == ExitCode.CHANGES_PENDING, run.err
    assert _judged(_rows_and_lines_under(run.out)) == [
        (ROWS[0], []),
        (ROWS[1], []),
        (ROWS[2], [f"rollout: {update}", f"{SAMPLING}: 1 -> 10"]),
        (ROWS[3], [f"rollout: {upgrade}"]),
        # Converging never takes a mesh back to an older version.
        (ROWS[4], [f"rollout: {downgrade}"]),
        (ROWS[5], []),
    ]
    # The rows keep their columns; the lines below them take no part in the widths.
    rows = [line for line in run.out.splitlines() if not line.startswith(" ")]
    assert {line.index("mesh-") for line in rows[1:]} == {rows[0].index("MESH")}
    # A rollout that upgrades says when it finalizes, once.
    upgrade_note = [UPGRADE_NOTE] if "1 upgrade" in does else []
    notes = 3 + len(upgrade_note)
    assert run.err.splitlines()[:notes] == [
        "6 targets: 1 create, 1 in_sync, 1 update, 1 upgrade, 1 downgrade, 1 conflict",
        f"with existing {existing}, the rollout does: {does}",
        *upgrade_note,
        NOT_COMPARED,
    ]
    assert run.err.splitlines()[notes].startswith("schedule: ")


async def test_a_config_that_differs_in_several_places_gets_a_line_a_field(
    tmp_path: Path,
) -> None:
    wanted = {
        "telemetryConfig": {"tracing": {"randomSamplingPercentage": 10}},
        "proxyConfig": {"includeIPRanges": "10.0.0.0/8,172.16.0.0/12"},
    }
    had = {
        "telemetryConfig": {"tracing": {"randomSamplingPercentage": 1}},
        # The same ranges in another order: the API reads them as a set, so no change.
        "proxyConfig": {
            "includeIPRanges": "172.16.0.0/12, 10.0.0.0/8",
            "excludeOutboundPorts": "8443",
        },
    }
    entry = _target("mesh-drift", config=wanted)
    path = write_manifest(tmp_path / "fleet.yaml", [entry], existing="converge")
    async with serve(SimulatorConfig(create_seconds=0, tokens=(SIM_TOKEN,))) as sim:
        _put_in_place(sim.state, entry, config=had)
        env = cli_env(ASM_ENDPOINT=sim.url, ASM_AUTH_TOKEN=SIM_TOKEN)
        run = await meshfleet("plan", str(path), env=env)
        as_json = await meshfleet("plan", str(path), "--json", env=env)

    assert run.code == as_json.code == ExitCode.CHANGES_PENDING, run.err
    assert _judged(_rows_and_lines_under(run.out)) == [
        (
            "update",
            [
                "rollout: update in place",
                "config.proxyConfig.excludeOutboundPorts: '8443' -> absent",
                f"{SAMPLING}: 1 -> 10",
            ],
        )
    ]
    (planned,) = as_json.json()["targets"]
    assert planned["changes"] == [
        {"path": "config.proxyConfig.excludeOutboundPorts", "before": "8443", "after": None},
        {"path": SAMPLING, "before": 1, "after": 10},
    ]


async def test_converging_a_mesh_that_is_not_running_fails_it_and_the_plan_says_so(
    tmp_path: Path,
) -> None:
    entry = _target("mesh-busy", config=SAMPLED)
    path = write_manifest(tmp_path / "fleet.yaml", [entry], existing="converge")
    # Still creating for the whole test: only a Running mesh takes a configuration change.
    async with serve(SimulatorConfig(create_seconds=3600, tokens=(SIM_TOKEN,))) as sim:
        _put_in_place(sim.state, entry, config=SAMPLED_LESS)
        env = cli_env(ASM_ENDPOINT=sim.url, ASM_AUTH_TOKEN=SIM_TOKEN)
        run = await meshfleet("plan", str(path), env=env)
        as_json = await meshfleet("plan", str(path), "--json", env=env)

    assert run.code == as_json.code == ExitCode.CHANGES_PENDING, run.err
    ((cell, below),) = _rows_and_lines_under(run.out)
    assert cell.startswith("update (") and cell.endswith("phase Creating)")
    assert below == [
        "rollout: fails MeshNotRunning while it is Creating (only a Running mesh takes a "
        "configuration change)",
        f"{SAMPLING}: 1 -> 10",
    ]
    (planned,) = as_json.json()["targets"]
    assert (planned["action"], planned["does"], planned["phase"]) == ("update", "fail", "Creating")


# --- the JSON document -----------------------------------------------------------------------


async def test_the_json_plan_gives_each_target_its_judgement_what_is_done_and_the_changes(
    tmp_path: Path,
) -> None:
    path = write_manifest(tmp_path / "fleet.yaml", FLEET, existing="converge")
    run, _ = await _plan(path, "--json")

    assert run.code == ExitCode.CHANGES_PENDING, run.err
    document = run.json()
    counts = {key: document[key] for key in ("total", "create", "in_sync", "update")}
    assert counts == {"total": 6, "create": 1, "in_sync": 1, "update": 1}
    assert (document["upgrade"], document["downgrade"], document["conflict"]) == (1, 1, 1)
    assert document["error"] == 0
    assert document["existing"] == "converge"
    assert document["does"] == {
        "create": 1,
        "nothing": 1,
        "adopt": 0,
        "update": 1,
        "upgrade": 1,
        "fail": 2,
    }
    # Kept for pipelines that read it: the meshes taken as they stand (none, converging).
    assert document["adopt"] == 0
    assert document["changes_pending"] is True
    assert document["not_compared"] == ["node_ids", "namespaces"]

    by_name = {t["mesh_name"]: t for t in document["targets"]}
    seen = {
        name: (t["action"], t["does"], t["mesh_version"], t["changes"])
        for name, t in by_name.items()
    }
    assert seen == {
        "mesh-new": ("create", "create", None, []),
        "mesh-same": ("in_sync", "nothing", VERSION, []),
        "mesh-drift": (
            "update",
            "update",
            VERSION,
            [{"path": SAMPLING, "before": 1, "after": 10}],
        ),
        "mesh-old": ("upgrade", "upgrade", OLDER, []),
        "mesh-ahead": ("downgrade", "fail", NEWER, []),
        "mesh-taken": ("conflict", "fail", None, []),
    }
    # An existing mesh keeps its uid and phase in the document, as before.
    assert by_name["mesh-same"]["mesh_uid"] and by_name["mesh-same"]["phase"] == "Running"
    assert "adopt" not in {t["action"] for t in document["targets"]}


async def test_under_adopt_the_json_counts_what_is_adopted(tmp_path: Path) -> None:
    path = write_manifest(tmp_path / "fleet.yaml", FLEET)
    run, _ = await _plan(path, "--json")

    assert run.code == ExitCode.CHANGES_PENDING, run.err
    document = run.json()
    assert document["existing"] == "adopt"
    assert document["does"] == {
        "create": 1,
        "nothing": 1,
        "adopt": 3,
        "update": 0,
        "upgrade": 0,
        "fail": 1,
    }
    assert document["adopt"] == 3
    does = {t["mesh_name"]: t["does"] for t in document["targets"]}
    assert (does["mesh-drift"], does["mesh-old"], does["mesh-ahead"]) == ("adopt", "adopt", "adopt")


# --- the exit code ---------------------------------------------------------------------------


async def test_a_fleet_that_is_the_manifest_exits_0_and_says_nothing_is_pending(
    tmp_path: Path,
) -> None:
    fleet = [_target("mesh-same", config=SAMPLED), _target("mesh-plain")]
    path = write_manifest(tmp_path / "fleet.yaml", fleet, existing="require_match")
    async with serve(SimulatorConfig(create_seconds=0, tokens=(SIM_TOKEN,))) as sim:
        for entry in fleet:
            _put_in_place(sim.state, entry)
        env = cli_env(ASM_ENDPOINT=sim.url, ASM_AUTH_TOKEN=SIM_TOKEN)
        run = await meshfleet("plan", str(path), env=env)
        as_json = await meshfleet("plan", str(path), "--json", env=env)
        # One target more, its mesh missing: something is pending again.
        grown = write_manifest(tmp_path / "grown.yaml", [*fleet, _target("mesh-more")])
        one_more = await meshfleet("plan", str(grown), env=env)

    assert run.code == ExitCode.OK, run.err
    assert _rows_and_lines_under(run.out) == [("in_sync (exists, phase Running)", [])] * 2
    assert run.err.splitlines()[:3] == [
        "2 targets: 2 in_sync",
        "with existing require_match, the rollout does: 2 nothing",
        NOT_COMPARED,
    ]
    assert as_json.code == ExitCode.OK
    document = as_json.json()
    assert (document["in_sync"], document["changes_pending"]) == (2, False)
    assert [t["does"] for t in document["targets"]] == ["nothing", "nothing"]
    assert one_more.code == ExitCode.CHANGES_PENDING, one_more.err


async def test_a_plan_of_creates_alone_is_pending_and_compares_nothing(tmp_path: Path) -> None:
    path = write_manifest(tmp_path / "fleet.yaml", [_target("mesh-one"), _target("mesh-two")])
    async with serve(SimulatorConfig(tokens=(SIM_TOKEN,))) as sim:
        env = cli_env(ASM_ENDPOINT=sim.url, ASM_AUTH_TOKEN=SIM_TOKEN)
        run = await meshfleet("plan", str(path), env=env)

    assert run.code == ExitCode.CHANGES_PENDING, run.err
    assert _rows_and_lines_under(run.out) == [("create", [])] * 2
    # Nothing was compared: no line on what the rollout does with existing meshes.
    assert run.err.splitlines()[0] == "2 targets: 2 create"
    assert run.err.splitlines()[1].startswith("schedule: ")


async def test_a_refused_list_call_still_exits_1_whatever_else_is_pending(tmp_path: Path) -> None:
    path = write_manifest(tmp_path / "fleet.yaml", FLEET)
    async with serve(SimulatorConfig(tokens=(SIM_TOKEN,))) as sim:
        _seed_fleet(sim.state)
        wrong = cli_env(ASM_ENDPOINT=sim.url, ASM_AUTH_TOKEN="wrong-token")
        run = await meshfleet("plan", str(path), "--json", env=wrong)

    assert run.code == ExitCode.FAILED, run.err
    document = run.json()
    assert document["error"] == 6
    assert {t["does"] for t in document["targets"]} == {None}
