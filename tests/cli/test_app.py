"""The CLI without Temporal: validate, plan against the simulator, usage errors and --help."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from meshfleet.cli.app import app
from meshfleet.cli.exit_codes import ExitCode
from meshfleet.simulator.config import SimulatorConfig
from meshfleet.simulator.testing import serve
from tests.helpers.cli_run import cli_env, manifest_target, meshfleet, write_manifest
from tests.helpers.fleet import SIM_TOKEN
from tests.helpers.paths import EXAMPLE_MANIFEST

EXAMPLE = EXAMPLE_MANIFEST
P1 = "0123456789abcdef0123456789abcdef"
P2 = "fedcba9876543210fedcba9876543210"
runner = CliRunner()

FIVE_MISTAKES = f"""\
strategy: {{window: 0, waves: [1, "100%"], timeout: soon}}
defaults: {{region: ap-southeast-3}}
targets:
  - {{project_id: {P1}, cluster_id: c-0, mesh_name: mesh-shop-0, node_ids: [n0]}}
  - {{project_id: {P1}, cluster_id: c-1, mesh_name: mesh-shop-, node_ids: [n1]}}
  - {{project_id: {P1}, cluster_id: c-2, mesh_name: mesh-shop-2, node_ids: [n2], zone: a}}
  - {{project_id: {P1}, cluster_id: c-0, mesh_name: mesh-shop-3, node_ids: [n3]}}
"""


def test_validate_prints_a_one_line_summary() -> None:
    result = runner.invoke(app, ["validate", str(EXAMPLE)])
    assert result.exit_code == ExitCode.OK, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    assert "27 targets in 6 projects and 5 regions" in lines[0]
    assert "3 waves ending at 1/7/27" in lines[0]
    assert "rollout id fleet-" in lines[0]


def test_validate_lists_every_problem_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(FIVE_MISTAKES)
    result = runner.invoke(app, ["validate", str(bad)])
    assert result.exit_code == ExitCode.INVALID
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{bad}: strategy.timeout: 'soon' is not a duration like '20s', '10m', '1h30m', "
        "'500ms' or a number of seconds",
        f"{bad}: strategy.window: Input should be greater than or equal to 1",
        f"{bad}: targets[1].mesh_name: must not end with '-'",
        f"{bad}: targets[2].zone: unknown field",
        f"{bad}: targets[3].cluster_id: 'c-0' already used by targets[0]; a cluster joins one mesh",
        f"{bad}: 5 problems",
    ]


def test_validate_reads_stdin_and_checks_the_rollout_id() -> None:
    text = EXAMPLE.read_text()
    ok = runner.invoke(app, ["validate", "-", "--rollout-id", "rel-2026.11.25"], input=text)
    assert ok.exit_code == 0
    assert ok.stdout.startswith("-: valid: 27 targets")
    assert ok.stdout.rstrip().endswith("rollout id rel-2026.11.25")
    bad = runner.invoke(app, ["validate", "-", "--rollout-id", "no spaces"], input=text)
    assert bad.exit_code == ExitCode.INVALID
    # An option of the command line, not a problem of the file: said without the file's name.
    assert bad.stderr.splitlines() == [
        "meshfleet: --rollout-id: 'no spaces' is not a rollout id: 1-128 letters, digits, '.', "
        "'_', ':' or '-', starting with a letter or digit"
    ]


def test_validate_holds_regions_to_the_list_unless_added(tmp_path: Path) -> None:
    far = {**manifest_target(P1, "mesh-far"), "region": "ap-southeast-99"}
    typo = {**manifest_target(P2, "mesh-typo"), "region": "ap-southest-3"}
    path = write_manifest(
        tmp_path / "fleet.yaml", [far, typo], regions={"order": ["ap-southeast-99", "eu-west-11"]}
    )
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == ExitCode.INVALID
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0].startswith(
        f"{path}: strategy.regions.order[0]: 'ap-southeast-99' is not a region Huawei Cloud "
        "serves ASM in"
    )
    assert lines[1].startswith(f"{path}: strategy.regions.order[1]: 'eu-west-11' is not a region")
    assert lines[2].startswith(f"{path}: targets[0].region: 'ap-southeast-99' is not a region")
    assert lines[3] == (
        f"{path}: targets[1].region: 'ap-southest-3' is not a region Huawei Cloud serves ASM in; "
        "did you mean 'ap-southeast-3'?"
    )
    assert lines[4:] == [f"{path}: 4 problems"]

    added = {"MESHFLEET_EXTRA_REGIONS": "ap-southeast-99, eu-west-11"}
    fixed = write_manifest(
        tmp_path / "fixed.yaml",
        [far, {**typo, "region": "eu-west-11"}],
        regions={"order": ["ap-southeast-99", "eu-west-11"]},
    )
    ok = runner.invoke(app, ["validate", str(fixed)], env=added)
    assert ok.exit_code == ExitCode.OK, ok.output
    assert "2 targets in 2 projects and 2 regions" in ok.stdout


def test_validate_of_a_missing_file_is_a_bad_input_not_a_traceback(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == ExitCode.INVALID
    missing = str(tmp_path / "nope.yaml")
    assert f"{missing}: cannot read: No such file or directory" in result.stderr
    # The file is named once per line, not once by the reader and again by the CLI.
    assert all(line.count(missing) == 1 for line in result.stderr.splitlines())
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["bogus"],
        ["validate"],
        ["validate", "a.yaml", "b.yaml"],
        ["plan", "--nope", "a.yaml"],
        ["status"],
        ["list", "--limit", "0"],
        ["start", "a.yaml", "--wait=maybe"],
        ["approve"],
        ["approve", "a", "b"],
        ["approve", "a", "--by"],
        ["wait"],
        ["wait", "a", "--follow"],
    ],
)
def test_usage_errors_exit_2(argv: list[str]) -> None:
    assert runner.invoke(app, argv).exit_code == ExitCode.INVALID


def _commands() -> list[str]:
    return sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


@pytest.mark.parametrize("command", _commands())
def test_every_command_has_help(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert "usage" in result.output.lower()


def test_the_top_level_help_lists_the_commands_and_exit_codes() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    commands = ("validate", "plan", "start", "wait", "approve", "status", "report")
    for command in (*commands, "search-attributes"):
        assert command in result.output
    text = " ".join(result.output.split())
    assert "3 Temporal or the ASM API unreachable" in text
    assert "4 the rollout waits at an approval gate" in text


def test_version_prints_the_installed_package_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    # The installed distribution's metadata, not only the module constant: a release built
    # from this tree reports the same number.
    assert result.stdout == f"meshfleet {importlib.metadata.version('meshfleet')}\n"


def test_search_attributes_are_printed_as_name_type_lines() -> None:
    result = runner.invoke(app, ["search-attributes"])
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "MeshRolloutId=Keyword",
        "MeshRolloutState=Keyword",
        "MeshProjectId=Keyword",
        "MeshRegion=Keyword",
        "MeshOutcome=Keyword",
    ]


# --- plan: list calls against the simulator over loopback ----------------------------------


async def test_plan_classifies_create_in_sync_and_conflict(tmp_path: Path) -> None:
    fresh = manifest_target(P1, "mesh-fresh")
    running = manifest_target(P1, "mesh-running")
    creating = manifest_target(P2, "mesh-creating")
    taken = manifest_target(P1, "mesh-wants-taken", cluster="cluster-taken")
    renamed = manifest_target(P2, "mesh-elsewhere", cluster="cluster-mine")
    path = write_manifest(tmp_path / "fleet.yaml", [fresh, running, creating, taken, renamed])
    async with serve(SimulatorConfig(create_seconds=60, tokens=(SIM_TOKEN,))) as sim:
        state = sim.state
        state.seed_mesh(P1, "mesh-running", ["cluster-mesh-running"], phase="Running")
        state.seed_mesh(P2, "mesh-creating", ["cluster-mesh-creating"], phase="Creating")
        state.seed_mesh(P1, "someone-elses", ["cluster-taken"], phase="Running")
        state.seed_mesh(P2, "mesh-elsewhere", ["cluster-other"], phase="Running")
        env = cli_env(ASM_ENDPOINT=sim.url, ASM_AUTH_TOKEN=SIM_TOKEN)

        run = await meshfleet("plan", str(path), env=env)
        as_json = await meshfleet("plan", str(path), "--json", env=env)
        meshes_after = len(state.all_meshes())

    # A mesh to create and two conflicts: the fleet is not the manifest yet.
    assert run.code == ExitCode.CHANGES_PENDING, run.err
    assert [line.split("  ")[0] for line in run.out.splitlines()] == [
        "ACTION",
        "create",
        "in_sync (exists, phase Running)",
        "in_sync (exists, phase Creating)",
        "conflict (cluster in mesh someone-elses)",
        "conflict (name used by a mesh on cluster cluster-other)",
    ]
    assert run.err.splitlines() == [
        "5 targets: 1 create, 2 in_sync, 2 conflict",
        "with existing adopt, the rollout does: 1 create, 2 nothing, 2 fail",
        "note: ASM does not echo a cluster's installation nodes and injection namespaces, so a "
        "change to node_ids or namespaces is not seen",
        "schedule: waves over the whole fleet, failure budget 5 for the whole rollout",
        "  wave 1: 5 targets (#1-5)",
    ]

    document = as_json.json()
    assert as_json.code == ExitCode.CHANGES_PENDING
    assert (document["create"], document["in_sync"], document["conflict"]) == (1, 2, 2)
    # In sync is left alone, not adopted as it stands.
    assert document["adopt"] == 0
    assert document["schedule"] == {
        "mode": "fleet",
        "regions": [],
        "waves": [{"region": None, "wave": 1, "targets": 5, "end": 5, "approval": False}],
        "failure_budget": 5,
        "soak_s": 0.0,
        "verify": False,
        "webhook_host": None,
        "approve_after": [],
    }
    by_name = {t["mesh_name"]: t for t in document["targets"]}
    assert by_name["mesh-creating"]["phase"] == "Creating"
    assert by_name["mesh-running"]["mesh_uid"]
    # A dry run: one list call per project, and not one mesh more.
    assert meshes_after == 4


async def test_plan_reports_refused_projects_and_unreachable_asm(tmp_path: Path) -> None:
    targets = [
        manifest_target(P1, "mesh-one"),
        manifest_target(P1, "mesh-also"),
        manifest_target(P2, "mesh-two"),
    ]
    path = write_manifest(tmp_path / "fleet.yaml", targets)
    async with serve(SimulatorConfig(tokens=(SIM_TOKEN,))) as sim:
        wrong = cli_env(ASM_ENDPOINT=sim.url, ASM_AUTH_TOKEN="wrong-token")
        refused = await meshfleet("plan", str(path), env=wrong)
        refused_json = await meshfleet("plan", str(path), "--json", env=wrong)
        no_credentials = await meshfleet("plan", str(path), env=cli_env(ASM_ENDPOINT=sim.url))
    unreachable = await meshfleet(
        "plan", str(path), env=cli_env(ASM_ENDPOINT="http://127.0.0.1:1", ASM_AUTH_TOKEN="t")
    )

    assert refused.code == ExitCode.FAILED
    # Every row says it was refused; why is said once per project and region, below.
    assert [line.split("  ")[0] for line in refused.out.splitlines()[1:]] == [
        "error (list call refused, see below)"
    ] * 3
    assert "401" not in refused.out
    errors = [line for line in refused.err.splitlines() if line.startswith("meshfleet: ")]
    assert len(errors) == 2, refused.err
    for project, count in ((P1, "2 targets"), (P2, "1 target")):
        (line,) = [e for e in errors if f"project {project} " in e]
        assert line.startswith(
            f"meshfleet: project {project} region ap-southeast-3: list call refused: HTTP 401 "
        )
        assert line.endswith(f"; the ASM credentials were not accepted; {count} not planned")
    assert "3 targets: 3 error" in refused.err.splitlines()
    assert refused_json.code == ExitCode.FAILED
    document = refused_json.json()
    assert document["error"] == 3
    assert [(r["project_id"], r["status"]) for r in document["refused"]] == [(P1, 401), (P2, 401)]
    assert len([e for e in refused_json.err.splitlines() if "list call refused" in e]) == 2
    assert no_credentials.code == ExitCode.INVALID
    assert "no complete ASM credentials" in no_credentials.err
    assert unreachable.code == ExitCode.UNREACHABLE
    assert unreachable.err.startswith("meshfleet: ASM unreachable: ")
    assert len(unreachable.err.strip().splitlines()) == 1
    assert "Traceback" not in refused.err + no_credentials.err + unreachable.err


async def test_plan_refuses_a_bad_manifest_before_any_call(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(FIVE_MISTAKES)
    run = await meshfleet(
        "plan", str(bad), env=cli_env(ASM_ENDPOINT="http://127.0.0.1:1", ASM_AUTH_TOKEN="t")
    )
    assert run.code == ExitCode.INVALID
    assert run.err.splitlines()[-1] == f"{bad}: 5 problems"


# --- progressive delivery: the summary, the plan's schedule, approve and wait ---------------

EU = "eu-west-101"
AP = "ap-southeast-3"
PROGRESSIVE = {
    "waves": [1, "100%"],
    "max_failures": 1,
    "soak": "10m",
    "verify": {"webhook": "https://hooks.example.com/verify?sig=abc"},
    "approve_after": [1],
    "regions": {"order": [AP, EU], "max_failures": 0},
}


def regional_fleet() -> list[dict[str, object]]:
    """eu, ap, eu, ap in manifest order."""
    fleet: list[dict[str, object]] = []
    for i, region in enumerate([EU, AP, EU, AP]):
        fleet.append({**manifest_target(P1, f"mesh-reg-{i}"), "region": region})
    return fleet


def test_validate_summarises_soak_verify_gates_and_regions(tmp_path: Path) -> None:
    path = write_manifest(tmp_path / "fleet.yaml", regional_fleet(), **PROGRESSIVE)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == ExitCode.OK, result.output
    line = result.stdout.strip()
    assert (
        f"regions one after another: {AP} (2 targets, waves ending at 1/2, budget 0), "
        f"{EU} (2 targets, waves ending at 1/2, budget 0), window 4, failure budget 1"
    ) in line
    assert (
        "; soak 10m between waves; verify each wave but the last (webhook hooks.example.com); "
        "approval after wave 1 of each region; rollout id fleet-"
    ) in line
    assert "sig=abc" not in line


def test_validate_names_a_target_outside_the_region_order(tmp_path: Path) -> None:
    strategy = {**PROGRESSIVE, "regions": {"order": [AP]}, "approve_after": [3]}
    path = write_manifest(tmp_path / "fleet.yaml", regional_fleet(), **strategy)
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == ExitCode.INVALID
    assert result.stderr.splitlines() == [
        f"{path}: targets[0].region: {EU} is not in strategy.regions.order",
        f"{path}: targets[2].region: {EU} is not in strategy.regions.order",
        f"{path}: 2 problems",
    ]


async def test_plan_shows_the_schedule_in_region_order(tmp_path: Path) -> None:
    path = write_manifest(tmp_path / "fleet.yaml", regional_fleet(), **PROGRESSIVE)
    async with serve(SimulatorConfig(tokens=(SIM_TOKEN,))) as sim:
        env = cli_env(ASM_ENDPOINT=sim.url, ASM_AUTH_TOKEN=SIM_TOKEN)
        run = await meshfleet("plan", str(path), env=env)
        as_json = await meshfleet("plan", str(path), "--json", env=env)

    # Every mesh is still to be created.
    assert run.code == as_json.code == ExitCode.CHANGES_PENDING, run.err
    # The table lists the targets in the order the rollout walks them.
    assert [line.split()[1:4:2] for line in run.out.splitlines()[1:]] == [
        [AP, "mesh-reg-1"],
        [AP, "mesh-reg-3"],
        [EU, "mesh-reg-0"],
        [EU, "mesh-reg-2"],
    ]
    assert run.err.splitlines() == [
        "4 targets: 4 create",
        "schedule: regions one after another, each with its own waves and failure budget; "
        "failure budget 1 for the whole rollout",
        f"  1. {AP}: 2 targets, failure budget 0",
        "     wave 1: 1 target (#1) · then waits for `meshfleet approve`",
        "     wave 2: 1 target (#2)",
        f"  2. {EU}: 2 targets, failure budget 0",
        "     wave 1: 1 target (#3) · then waits for `meshfleet approve`",
        "     wave 2: 1 target (#4)",
        "  soak 10m between waves",
        "  verify each wave but the last (webhook hooks.example.com)",
        "  approval after wave 1 of each region",
    ]

    document = as_json.json()
    assert [t["mesh_name"] for t in document["targets"]] == [
        "mesh-reg-1",
        "mesh-reg-3",
        "mesh-reg-0",
        "mesh-reg-2",
    ]
    assert document["schedule"] == {
        "mode": "sequential",
        "regions": [
            {"region": AP, "targets": 2, "failure_budget": 0},
            {"region": EU, "targets": 2, "failure_budget": 0},
        ],
        "waves": [
            {"region": AP, "wave": 1, "targets": 1, "end": 1, "approval": True},
            {"region": AP, "wave": 2, "targets": 1, "end": 2, "approval": False},
            {"region": EU, "wave": 1, "targets": 1, "end": 3, "approval": True},
            {"region": EU, "wave": 2, "targets": 1, "end": 4, "approval": False},
        ],
        "failure_budget": 1,
        "soak_s": 600.0,
        "verify": True,
        "webhook_host": "hooks.example.com",
        "approve_after": [1],
    }
    assert "sig=abc" not in as_json.out + run.err


def test_approve_and_wait_say_what_they_do_and_their_exit_codes() -> None:
    approve = " ".join(runner.invoke(app, ["approve", "--help"]).output.split())
    assert "--by" in approve
    assert "$USER" in approve
    assert "1 with the reason when the rollout is not awaiting approval" in approve
    wait = " ".join(runner.invoke(app, ["wait", "--help"]).output.split())
    assert "as `start --wait` does" in wait
    assert "4 when it waits at an approval gate" in wait


async def test_approve_and_wait_check_the_id_and_need_temporal() -> None:
    down = cli_env(TEMPORAL_ADDRESS="127.0.0.1:1")
    runs = [await meshfleet(*argv, env=down) for argv in (["approve", "r1"], ["wait", "r1"])]
    for run in runs:
        assert run.code == ExitCode.UNREACHABLE, run
        assert run.err == (
            "meshfleet: cannot reach Temporal at 127.0.0.1:1: connection refused (address from "
            "TEMPORAL_ADDRESS); start one with `meshfleet dev`\n"
        )
