"""The ``meshfleet`` command line: validate, plan, start and steer rollouts, run the stack.

The app and its entry point; the commands live with their work (``manifests``, ``rollouts``,
``steering``, ``rollbacks``, ``listing``, ``stack``), and how every one of them behaves (usage
errors, help, the error wrapper) in ``core``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Annotated, NoReturn, TextIO

import typer

from meshfleet import __version__
from meshfleet.cli import drift, listing, manifests, rollbacks, rollouts, schema, stack, steering
from meshfleet.cli.core import ClosedPipeError, Group
from meshfleet.cli.exit_codes import ExitCode
from meshfleet.process_exit import flush_and_exit

app = typer.Typer(
    name="meshfleet",
    help=(
        "Roll out Huawei Cloud ASM service meshes across a fleet, durably, on Temporal.\n\n"
        "Exit codes: 0 every target Running; 1 some target failed, or the rollout halted, "
        "failed or was cancelled; 2 invalid input or usage; 3 Temporal or the ASM API "
        "unreachable; 4 the rollout waits at an approval gate (`meshfleet approve "
        "ROLLOUT_ID`); 5 plan or drift: the fleet differs from the manifest; 6 the rollout's "
        "upgraded meshes wait for `meshfleet finalize ROLLOUT_ID`."
    ),
    cls=Group,
    no_args_is_help=True,
    # Plain click help: it rewraps every paragraph to the terminal, and no '[...]' in a help
    # text is taken for markup ('meshfleet[devstack]').
    rich_markup_mode=None,
    pretty_exceptions_show_locals=False,
)


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


# In the order `meshfleet --help` lists them.
manifests.register(app)  # validate, plan
drift.register(app)  # drift
schema.register(app)  # schema
rollouts.register(app)  # start, wait, status, report
steering.register(app)  # pause, resume, cancel, approve
rollbacks.register(app)  # rollback
listing.register(app)  # list, search-attributes
stack.register(app)  # worker, dev, demo, simulator

CLOSED_PIPE = 128 + 13
"""The exit code when the reader of standard output went away (``meshfleet list | head -1``).

128 + SIGPIPE is what a shell reports for any writer a closed pipe stops (``seq 1000000 | head
-1`` under ``set -o pipefail``), so a pipeline treats meshfleet like every other tool. It is
none of meshfleet's own codes on purpose: the command's outcome was not delivered, and 0 would
tell a pipeline that a rollout whose report was cut short succeeded.
"""


def _exit_code(exc: SystemExit) -> int:
    """The code ``sys.exit`` was given, as the interpreter would end with it."""
    if exc.code is None:
        return ExitCode.OK
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return ExitCode.FAILED


def _flushed(stream: TextIO) -> bool:
    """Whether what ``stream`` still buffers reached its reader; False once the pipe closed."""
    try:
        stream.flush()
    except BrokenPipeError:
        return False
    return True


def _to_devnull(stream: TextIO) -> None:
    with contextlib.suppress(OSError, ValueError):  # a stream without a descriptor of its own
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)


def main() -> NoReturn:
    """Entry point of the ``meshfleet`` console script (and ``python -m meshfleet``).

    Every run ends here through ``flush_and_exit``: commands that used the Temporal client
    must not leave through an interpreter shutdown (docs/operations.md, "Exiting after using
    the Temporal client"), and one ending for all keeps the exit code what the command said.

    A closed standard output ends quietly with ``CLOSED_PIPE``: no traceback, no "Exception
    ignored" when the interpreter would flush at exit. What is still buffered for the gone
    reader is sent to /dev/null instead (``os.dup2``), so no later flush can fail again.
    """
    try:
        app(prog_name="meshfleet")
        code: int = ExitCode.OK
    except SystemExit as exc:
        code = _exit_code(exc)
    except (ClosedPipeError, BrokenPipeError):
        code = CLOSED_PIPE
    if code == CLOSED_PIPE or not _flushed(sys.stdout):
        code = CLOSED_PIPE
        _to_devnull(sys.stdout)
    flush_and_exit(code)


if __name__ == "__main__":
    main()
