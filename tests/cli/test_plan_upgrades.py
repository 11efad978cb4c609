"""``meshfleet plan`` of a fleet whose meshes run older versions, through the real CLI against
the simulator.

A mesh one line behind the manifest is upgraded under ``existing: converge`` (its row names the
path, the line below what the rollout does and when it is finalized); a mesh two lines behind,
one that someone else's upgrade holds, one that is not Running and one that runs a newer
version are refused, each with the code and the words the rollout would fail it with. ``--json``
says the same per target in ``hops`` and ``refused``; nothing is sent but the list call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from meshfleet.cli.exit_codes import ExitCode
from meshfleet.cli.plan_output import rollout_plan_table
from meshfleet.contract import failures as errors
from meshfleet.models import MeshTarget
from meshfleet.plan import PlannedTarget
from meshfleet.simulator.config import SimulatorConfig
from meshfleet.simulator.state import SimulatorState
from meshfleet.simulator.testing import serve
from meshfleet.upgrades import upgrade_path, upgrade_refusal
from tests.helpers.cli_run import Run, cli_env, manifest_target, meshfleet, write_manifest
from tests.helpers.fleet import SIM_TOKEN

P1 = "0123456789abcdef0123456789abcdef"
REGION = "ap-southeast-3"
VERSION = "1.18.7-r5"
ONE_LINE_BEHIND = "1.15.7-r3"
TWO_LINES_BEHIND = "1.13.9-r1"
NEWER = "1.18.9-r1"
SAMPLED = {"telemetryConfig": {"tracing": {"randomSamplingPercentage": 10}}}
SAMPLED_LESS = {"telemetryConfig": {"tracing": {"randomSamplingPercentage": 1}}}
SAMPLING = "config.telemetryConfig.tracing.randomSamplingPercentage"
CANARY = "upgrade through ASM's canary upgrade: pre-check, control plane, data plane"
AFTER_ROLLOUT = f"{CANARY}; finalized after the rollout"

# (name, version, phase): what the simulator holds for each target of the fleet.
SEEDED = [
    ("mesh-behind-a", ONE_LINE_BEHIND, "Running"),
    ("mesh-behind-b", ONE_LINE_BEHIND, "Running"),
    ("mesh-far", TWO_LINES_BEHIND, "Running"),
    ("mesh-console", ONE_LINE_BEHIND, "Upgrading"),
    ("mesh-broken", ONE_LINE_BEHIND, "UpgradeFailed"),
    ("mesh-ahead", NEWER, "Running"),
]
FLEET = [manifest_target(P1, name) for name, _, _ in SEEDED]

# The keys of a target in the plan's document before upgrades had any.
EARLIER_KEYS = [
    "project_id",
    "region",
    "cluster_id",
    "mesh_name",
    "action",
    "does",
    "detail",
    "phase",
    "mesh_uid",
    "mesh_version",
    "changes",
]


def _seed(state: SimulatorState) -> None:
    for name, version, phase in SEEDED:
        state.seed_mesh(P1, name, [f"cluster-{name}"], phase=phase, version=version)


async def _plan(path: Path, *flags: str, seed: Any = _seed) -> Run:
    """``meshfleet plan`` of ``path`` against a simulator seeded by ``seed``; the plan sends
    nothing but list calls, so the meshes stand as seeded after it."""
    async with serve(SimulatorConfig(create_seconds=0, tokens=(SIM_TOKEN,))) as sim:
        seed(sim.state)
        before = [(m.uid, m.spec.get("version"), m.final_phase) for m in sim.state.all_meshes()]
        env = cli_env(ASM_ENDPOINT=sim.url, ASM_AUTH_TOKEN=SIM_TOKEN)
        run = await meshfleet("plan", str(path), *flags, env=env)
        after = [(m.uid, m.spec.get("version"), m.final_phase) for m in sim.state.all_meshes()]
        assert after == before
        return run


def _rows_and_lines_under(out: str) -> dict[str, tuple[str, list[str]]]:
    """Per mesh: its row's first cell (the judgement) and the indented lines below it."""
    header, *lines = out.splitlines()
    assert header.split() == ["ACTION", "REGION", "PROJECT", "MESH", "CLUSTER"]
    rows: dict[str, tuple[str, list[str]]] = {}
    last = ""
    for line in lines:
        if line.startswith("  "):
            rows[last][1].append(line.strip())
        else:
            cells = line.split("  ")
            last = next(cell for cell in cells if cell.startswith("mesh-"))
            rows[last] = (cells[0], [])
    return rows


def _refusal(name: str, current: str, phase: str) -> str:
    refused = upgrade_refusal(name, current, VERSION, phase)
    assert refused is not None
    return f"fails {refused.code}: {refused.message}"


DOWNGRADE = (
    f"fails {errors.DOWNGRADE_REFUSED}: mesh mesh-ahead runs {NEWER}, newer than the manifest's "
    f"{VERSION}: meshfleet never downgrades a mesh"
)


# --- the text --------------------------------------------------------------------------------


async def test_converging_upgrades_a_mesh_one_line_behind_and_refuses_the_rest(
    tmp_path: Path,
) -> None:
    path = write_manifest(tmp_path / "fleet.yaml", FLEET, existing="converge")
    run = await _plan(path)

    # Refused upgrades, as conflicts: something is pending that a rollout would fail.
    assert run.code == ExitCode.CHANGES_PENDING, run.err
    rows = _rows_and_lines_under(run.out)
    assert rows == {
        "mesh-behind-a": (
            f"upgrade ({ONE_LINE_BEHIND} -> {VERSION}, phase Running)",
            [f"rollout: {AFTER_ROLLOUT}"],
        ),
        "mesh-behind-b": (
            f"upgrade ({ONE_LINE_BEHIND} -> {VERSION}, phase Running)",
            [f"rollout: {AFTER_ROLLOUT}"],
        ),
        # The row names the line passed on the way.
        "mesh-far": (
            f"upgrade ({TWO_LINES_BEHIND} -> 1.15 -> {VERSION}, phase Running)",
            [f"rollout: {_refusal('mesh-far', TWO_LINES_BEHIND, 'Running')}"],
        ),
        "mesh-console": (
            f"upgrade ({ONE_LINE_BEHIND} -> {VERSION}, phase Upgrading)",
            [f"rollout: {_refusal('mesh-console', ONE_LINE_BEHIND, 'Upgrading')}"],
        ),
        "mesh-broken": (
            f"upgrade ({ONE_LINE_BEHIND} -> {VERSION}, phase UpgradeFailed)",
            [f"rollout: {_refusal('mesh-broken', ONE_LINE_BEHIND, 'UpgradeFailed')}"],
        ),
        "mesh-ahead": (
            f"downgrade ({NEWER} -> {VERSION}, phase Running)",
            [f"rollout: {DOWNGRADE}"],
        ),
    }
    far = rows["mesh-far"][1][0]
    assert far.startswith(f"rollout: fails {errors.UPGRADE_PATH_TOO_LONG}: mesh mesh-far runs")
    assert "roll out a 1.15 version first" in far
    assert rows["mesh-console"][1][0].startswith(f"rollout: fails {errors.MESH_UPGRADING}: ")
    assert rows["mesh-broken"][1][0].startswith(f"rollout: fails {errors.MESH_NOT_RUNNING}: ")
    assert "UpgradeNotAvailable" not in run.out + run.err
    assert run.err.splitlines()[:2] == [
        "6 targets: 5 upgrade, 1 downgrade",
        "with existing converge, the rollout does: 2 upgrade, 4 fail",
    ]


@pytest.mark.parametrize(
    ("existing", "upgrade", "downgrade", "does"),
    [
        # Adopting changes nothing: no version is judged, so nothing is refused.
        ("adopt", "adopted as it stands (drifted)", "adopted as it stands (drifted)", "6 adopt"),
        # A match is required before any version is judged; a downgrade is refused anyway.
        ("require_match", f"fails {errors.MESH_DRIFTED}", DOWNGRADE, "6 fail"),
    ],
)
async def test_other_modes_upgrade_nothing(
    tmp_path: Path, existing: str, upgrade: str, downgrade: str, does: str
) -> None:
    path = write_manifest(tmp_path / "fleet.yaml", FLEET, existing=existing)
    run = await _plan(path)
    as_json = await _plan(path, "--json")

    assert run.code == as_json.code == ExitCode.CHANGES_PENDING, run.err
    below = {name: lines for name, (_, lines) in _rows_and_lines_under(run.out).items()}
    assert below == {
        **{name: [f"rollout: {upgrade}"] for name, _, _ in SEEDED[:-1]},
        "mesh-ahead": [f"rollout: {downgrade}"],
    }
    assert run.err.splitlines()[1] == f"with existing {existing}, the rollout does: {does}"
    refused = {t["mesh_name"]: t["refused"] for t in as_json.json()["targets"]}
    assert {name for name, value in refused.items() if value} == (
        set() if existing == "adopt" else {"mesh-ahead"}
    )
    # The path is the mesh's, whatever the rollout does with it.
    hops = {t["mesh_name"]: t["hops"] for t in as_json.json()["targets"]}
    assert (hops["mesh-behind-a"], hops["mesh-far"]) == (["1.18"], ["1.15", "1.18"])


async def test_a_mesh_whose_configuration_differs_too_is_upgraded_first(tmp_path: Path) -> None:
    entry = {**manifest_target(P1, "mesh-behind"), "config": SAMPLED}
    path = write_manifest(tmp_path / "fleet.yaml", [entry], existing="converge")

    def seed(state: SimulatorState) -> None:
        state.seed_mesh(
            P1, "mesh-behind", ["cluster-mesh-behind"], version=ONE_LINE_BEHIND, config=SAMPLED_LESS
        )

    run = await _plan(path, seed=seed)
    as_json = await _plan(path, "--json", seed=seed)

    assert run.code == as_json.code == ExitCode.CHANGES_PENDING, run.err
    assert _rows_and_lines_under(run.out) == {
        "mesh-behind": (
            f"upgrade ({ONE_LINE_BEHIND} -> {VERSION}, phase Running)",
            [
                # ASM's guide: no other change to a mesh while it is being upgraded.
                f"rollout: {AFTER_ROLLOUT}; the fields below are left as they are during the "
                "upgrade; they converge on a run after finalize",
                f"{SAMPLING}: 1 -> 10",
            ],
        )
    }
    (planned,) = as_json.json()["targets"]
    assert (planned["does"], planned["hops"], planned["refused"]) == ("upgrade", ["1.18"], None)
    assert planned["changes"] == [{"path": SAMPLING, "before": 1, "after": 10}]


async def test_a_fleet_of_refused_upgrades_alone_still_exits_5(tmp_path: Path) -> None:
    fleet = [manifest_target(P1, "mesh-far"), manifest_target(P1, "mesh-console")]
    path = write_manifest(tmp_path / "fleet.yaml", fleet, existing="converge")
    run = await _plan(path)

    assert run.code == ExitCode.CHANGES_PENDING, run.err
    assert run.err.splitlines()[1] == "with existing converge, the rollout does: 2 fail"


# --- the JSON document -----------------------------------------------------------------------


async def test_the_json_plan_gives_each_target_its_hops_and_its_refusal(tmp_path: Path) -> None:
    path = write_manifest(tmp_path / "fleet.yaml", FLEET, existing="converge")
    run = await _plan(path, "--json")

    assert run.code == ExitCode.CHANGES_PENDING, run.err
    document = run.json()
    assert (document["upgrade"], document["downgrade"]) == (5, 1)
    assert document["does"] == {
        "create": 0,
        "nothing": 0,
        "adopt": 0,
        "update": 0,
        "upgrade": 2,
        "fail": 4,
    }
    targets = document["targets"]
    # The new keys come after every key pipelines already read, in the same order.
    assert all(list(t) == [*EARLIER_KEYS, "hops", "refused"] for t in targets)
    by_name = {t["mesh_name"]: t for t in targets}
    seen = {name: (t["action"], t["does"], t["hops"]) for name, t in by_name.items()}
    assert seen == {
        "mesh-behind-a": ("upgrade", "upgrade", ["1.18"]),
        "mesh-behind-b": ("upgrade", "upgrade", ["1.18"]),
        "mesh-far": ("upgrade", "fail", ["1.15", "1.18"]),
        "mesh-console": ("upgrade", "fail", ["1.18"]),
        "mesh-broken": ("upgrade", "fail", ["1.18"]),
        # No path leads down.
        "mesh-ahead": ("downgrade", "fail", []),
    }
    codes = {name: (t["refused"] or {}).get("code") for name, t in by_name.items()}
    assert codes == {
        "mesh-behind-a": None,
        "mesh-behind-b": None,
        "mesh-far": errors.UPGRADE_PATH_TOO_LONG,
        "mesh-console": errors.MESH_UPGRADING,
        "mesh-broken": errors.MESH_NOT_RUNNING,
        "mesh-ahead": errors.DOWNGRADE_REFUSED,
    }
    assert by_name["mesh-behind-a"]["refused"] is None
    far = by_name["mesh-far"]["refused"]["message"]
    assert f"{TWO_LINES_BEHIND} -> 1.15 -> {VERSION}" in far
    assert "roll out a 1.15 version first" in far
    assert by_name["mesh-ahead"]["refused"]["message"] == DOWNGRADE.split(": ", 1)[1]
    assert by_name["mesh-behind-a"]["detail"] == f"{ONE_LINE_BEHIND} -> {VERSION}, phase Running"


async def test_targets_that_upgrade_nothing_have_no_hops_and_no_refusal(tmp_path: Path) -> None:
    fleet = [manifest_target(P1, "mesh-same"), manifest_target(P1, "mesh-new")]
    path = write_manifest(tmp_path / "fleet.yaml", fleet, existing="converge")

    def seed(state: SimulatorState) -> None:
        target = MeshTarget.model_validate({"region": REGION, "version": VERSION, **fleet[0]})
        state.create_mesh(P1, target.to_request())

    run = await _plan(path, "--json", seed=seed)

    assert run.code == ExitCode.CHANGES_PENDING, run.err
    seen = [(t["action"], t["hops"], t["refused"]) for t in run.json()["targets"]]
    assert seen == [("in_sync", [], None), ("create", [], None)]


# --- when an upgrade is finalized ------------------------------------------------------------


@pytest.mark.parametrize(
    ("finalize", "words"),
    [
        ("after_rollout", AFTER_ROLLOUT),
        ("manual", f"{CANARY}; finalized by `meshfleet finalize`"),
    ],
)
def test_the_words_below_an_upgrade_say_when_it_is_finalized(finalize: Any, words: str) -> None:
    target = MeshTarget.model_validate(
        {"region": REGION, "version": VERSION, **manifest_target(P1, "mesh-behind")}
    )
    planned = PlannedTarget(
        target,
        "upgrade",
        f"{ONE_LINE_BEHIND} -> {VERSION}, phase Running",
        "Running",
        "uid-1",
        mesh_version=ONE_LINE_BEHIND,
        upgrade_path=upgrade_path(ONE_LINE_BEHIND, VERSION),
    )
    _, row, below = rollout_plan_table([planned], "converge", finalize=finalize)
    assert row.startswith(f"upgrade ({ONE_LINE_BEHIND} -> {VERSION}, phase Running)  ")
    assert below == f"  rollout: {words}"
