"""How every ``meshfleet`` command behaves, whatever it does.

A usage error is one line ``meshfleet: ...`` and exit 2; help names each value by its metavar and
never shows a Python type; a failure a command raises is reported by the one error wrapper
(``errors.reported_failures``); a closed standard output is carried to ``app.main``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import typer

# Typer carries its own copy of click: its exceptions are the ones a command line raises.
from typer._click import Context
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
from typer._click.formatting import HelpFormatter
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from meshfleet.cli.errors import reported_failures
from meshfleet.cli.exit_codes import ExitCode, print_error


class ClosedPipeError(Exception):
    """A reader closed the pipe the command wrote to (``meshfleet list | head -1``).

    Not an ``OSError``: click would take the ``BrokenPipeError`` for itself and end the process
    with 1 (``typer.core._main``); this one passes it by, up to ``app.main``, which ends quietly.
    """


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


class Group(TyperGroup):
    """The ``meshfleet`` group: a usage error is one line ``meshfleet: ...``, exit 2.

    Typer would draw a box around it and print the usage first; a pipeline's log wants the one
    line every other meshfleet error is. The same holds for tests that invoke the app directly,
    since the group itself does it. Every command runs inside the one error wrapper.
    """

    def get_command(self, ctx: Context, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        _name_values(command)
        return command

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: Context | None = None,
        **extra: Any,
    ) -> Context:
        # The group's own options are parsed here, and --help and --version print here.
        try:
            return super().make_context(info_name, args, parent, **extra)
        except BrokenPipeError as exc:
            raise ClosedPipeError from exc

    def invoke(self, ctx: Context) -> Any:
        # A command's options are parsed, its help printed and the command run in here.
        try:
            with reported_failures():
                return super().invoke(ctx)
        except BrokenPipeError as exc:
            raise ClosedPipeError from exc

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


class Command(TyperCommand):
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
