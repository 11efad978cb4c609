"""How the command line meets a person: one-line usage errors, help, completion, rollout ids
checked before Temporal, and a Temporal that does not answer."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from meshfleet.cli.app import app
from meshfleet.cli.exit_codes import ExitCode
from tests.helpers.cli_run import cli_env, manifest_target, meshfleet, run_process, write_manifest
from tests.helpers.paths import EXAMPLE_MANIFEST
from tests.helpers.ports import free_port

P1 = "0123456789abcdef0123456789abcdef"
runner = CliRunner()
ID_COMMANDS = ("status", "report", "wait", "pause", "resume", "cancel", "approve", "rollback")


def _commands() -> list[str]:
    return sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def _one_error_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("meshfleet: "), stderr
    return lines[0]


# --- usage errors: one line, exit 2 ---------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["bogus"], "meshfleet: no such command 'bogus' (see 'meshfleet --help')"),
        (["validate"], "meshfleet: missing argument 'FILE' (see 'meshfleet validate --help')"),
        (["validate", "a.yaml", "b.yaml"], "meshfleet: got unexpected extra argument(s) (b.yaml)"),
        (["plan", "--nope", "a.yaml"], "meshfleet: no such option: --nope"),
        (["status"], "meshfleet: missing argument 'ROLLOUT_ID'"),
        (["list", "--limit", "0"], "meshfleet: invalid value for '--limit'"),
        (["start", "a.yaml", "--wait=maybe"], "meshfleet: option '--wait' does not take a value"),
        (["approve", "a", "--by"], "meshfleet: option '--by' requires an argument"),
        (["dev", "--ui-port", "http"], "meshfleet: invalid value for '--ui-port'"),
        (["wait", "a", "--follow"], "meshfleet: no such option: --follow"),
    ],
)
def test_a_usage_error_is_one_line_and_exit_2(argv: list[str], message: str) -> None:
    result = runner.invoke(app, argv)
    assert result.exit_code == ExitCode.INVALID
    assert _one_error_line(result.stderr).startswith(message)
    assert result.stdout == ""


async def test_the_console_entry_point_says_it_in_one_line_too() -> None:
    run = await meshfleet("plan", "--nope", "a.yaml", env=cli_env())
    assert run.code == ExitCode.INVALID
    assert run.err == "meshfleet: no such option: --nope (see 'meshfleet plan --help')\n"


def test_no_command_prints_the_help_and_exits_2() -> None:
    result = runner.invoke(app, [])
    assert result.exit_code == ExitCode.INVALID
    assert result.stderr.startswith("Usage: meshfleet [OPTIONS] COMMAND [ARGS]...")


# --- help ------------------------------------------------------------------------------------

# What typer would print for a value without a name of its own.
_TYPE_NAMES = re.compile(
    r"<(str|bool|int|float|int range|float range|path)>"
    r"|\b(TEXT|INTEGER|FLOAT|BOOLEAN)\b"
    r"|\{[A-Z_]+\}"
)


# The simulator's help is its own: test_the_simulator_names_itself.
@pytest.mark.parametrize("command", ["", *(c for c in _commands() if c != "simulator")])
def test_help_names_every_value_and_no_type(command: str) -> None:
    result = runner.invoke(app, [command, "--help"] if command else ["--help"], terminal_width=80)
    assert result.exit_code == 0, result.output
    assert not _TYPE_NAMES.search(result.stdout), result.stdout
    assert all(len(line) <= 80 for line in result.stdout.splitlines()), result.stdout


@pytest.mark.parametrize("command", ID_COMMANDS)
def test_commands_on_a_rollout_name_it_rollout_id(command: str) -> None:
    result = runner.invoke(app, [command, "--help"])
    usage = result.stdout.splitlines()[0]
    assert usage == f"Usage: meshfleet {command} [OPTIONS] ROLLOUT_ID"
    assert "ROLLOUT_ID  The rollout's id" in result.stdout


def test_manifest_commands_name_it_file_and_options_their_values() -> None:
    start = runner.invoke(app, ["start", "--help"]).stdout
    assert start.splitlines()[0] == "Usage: meshfleet start [OPTIONS] FILE"
    assert "--rollout-id ROLLOUT_ID" in start
    dev = runner.invoke(app, ["dev", "--help"]).stdout
    for option in ("--temporal-port PORT", "--state-dir DIR", "--create-seconds SECONDS"):
        assert option in dev
    assert "pip install 'meshfleet[devstack]'" in " ".join(dev.split())
    assert "--by NAME" in runner.invoke(app, ["approve", "--help"]).stdout
    assert "--limit N" in runner.invoke(app, ["list", "--help"]).stdout
    demo = runner.invoke(app, ["demo", "--help"]).stdout
    assert demo.splitlines()[0] == "Usage: meshfleet demo [OPTIONS] [FILE]"


def test_the_command_list_gives_each_command_a_whole_sentence() -> None:
    listing = runner.invoke(app, ["--help"], terminal_width=80).stdout
    commands = listing.split("Commands:", 1)[1].splitlines()[1:]
    assert len(commands) == len(_commands())
    assert not any(line.rstrip().endswith("...") for line in commands), listing


async def test_the_simulator_names_itself() -> None:
    env = cli_env()
    as_module = await run_process([sys.executable, "-m", "meshfleet.simulator", "--help"], env=env)
    as_command = await meshfleet("simulator", "--help", env=env)
    assert as_module.code == as_command.code == 0
    assert as_module.out.startswith("usage: python -m meshfleet.simulator [-h]")
    assert as_command.out.startswith("usage: meshfleet simulator [-h]")
    for run in (as_module, as_command):
        assert "__main__" not in run.out
        assert "--create-seconds SECONDS" in run.out


# --- shell completion ------------------------------------------------------------------------


async def test_shell_completion_is_offered_and_completes_commands() -> None:
    top = runner.invoke(app, ["--help"]).stdout
    assert "--install-completion" in top
    assert "--show-completion" in top
    script = await meshfleet("--show-completion", "bash", env=cli_env())
    assert script.code == 0
    assert "_MESHFLEET_COMPLETE" in script.out
    completing = cli_env(_MESHFLEET_COMPLETE="complete_bash", COMP_WORDS="meshfleet sta")
    completing["COMP_CWORD"] = "1"
    words = await meshfleet(env=completing)
    assert words.out.split() == ["start", "status"]


# --- rollout ids: checked before Temporal is asked -------------------------------------------


def _closed_temporal() -> dict[str, str]:
    return cli_env(TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}")


async def test_a_malformed_rollout_id_is_refused_before_temporal_is_contacted(
    tmp_path: Path,
) -> None:
    env = _closed_temporal()
    path = write_manifest(tmp_path / "fleet.yaml", [manifest_target(P1, "mesh-one")])
    argvs = [[command, "x/../../y"] for command in ID_COMMANDS]
    argvs += [["rollback", "x/../../y", "--plan"], ["status", "x/../../y", "--rollback"]]
    argvs += [["start", str(path), "--rollout-id", "x/../../y"]]
    runs = await asyncio.gather(*(meshfleet(*argv, env=env) for argv in argvs))
    for argv, run in zip(argvs, runs, strict=True):
        # A Temporal on a closed port would have been exit 3: it was never asked.
        assert run.code == ExitCode.INVALID, (argv, run)
        line = _one_error_line(run.err)
        what = "--rollout-id" if argv[0] == "start" else "ROLLOUT_ID"
        assert line.startswith(f"meshfleet: {what}: 'x/../../y' is not a rollout id: "), argv
        assert str(path) not in line


# --- Temporal unreachable: one line, the address and a hint, exit 3 -------------------------


async def test_every_command_that_connects_says_where_temporal_was_looked_for(
    tmp_path: Path,
) -> None:
    env = _closed_temporal()
    address = env["TEMPORAL_ADDRESS"]
    path = write_manifest(tmp_path / "fleet.yaml", [manifest_target(P1, "mesh-one")])
    argvs = [[command, "rel-1"] for command in ID_COMMANDS]
    argvs += [
        ["rollback", "rel-1", "--plan"],
        ["start", str(path)],
        ["list"],
        ["search-attributes", "--register"],
    ]
    runs = await asyncio.gather(*(meshfleet(*argv, env=env) for argv in argvs))
    for argv, run in zip(argvs, runs, strict=True):
        assert run.code == ExitCode.UNREACHABLE, (argv, run)
        assert _one_error_line(run.err) == (
            f"meshfleet: cannot reach Temporal at {address}: connection refused (address from "
            "TEMPORAL_ADDRESS); start one with `meshfleet dev`"
        ), argv


# --- MESHFLEET_EXTRA_REGIONS ------------------------------------------------------------------


async def test_a_malformed_extra_region_is_a_usage_error_naming_the_entry(tmp_path: Path) -> None:
    env = _closed_temporal()
    env["MESHFLEET_EXTRA_REGIONS"] = "ap-southeast-99,Not A Region"
    argvs = [
        ["validate", str(EXAMPLE_MANIFEST)],
        ["validate", str(EXAMPLE_MANIFEST), "--json"],
        ["plan", str(EXAMPLE_MANIFEST)],
        ["start", str(EXAMPLE_MANIFEST)],
    ]
    runs = await asyncio.gather(*(meshfleet(*argv, env=env) for argv in argvs))
    for argv, run in zip(argvs, runs, strict=True):
        assert run.code == ExitCode.INVALID, (argv, run)
        assert run.out == ""
        assert _one_error_line(run.err).startswith(
            "meshfleet: MESHFLEET_EXTRA_REGIONS: 'Not A Region' is not a region name"
        ), argv
