"""Running ``meshfleet`` for the scenarios: in this process (fast, for fuzzing) or as a child."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from meshfleet.cli.app import app
from tests.helpers.cli_run import meshfleet

TRACEBACK = "Traceback (most recent call last)"


@dataclass(frozen=True)
class Outcome:
    """How one ``meshfleet`` command ended."""

    code: int
    out: str
    err: str
    crashed: BaseException | None = None
    """An exception that escaped the command (in-process runs only)."""


def invoke(*args: str, env: dict[str, str] | None = None) -> Outcome:
    """Run a command that never reaches Temporal (validate, plan) in this process.

    A command that talks to Temporal runs its client on an event loop of its own and ends the
    process through ``flush_and_exit`` in ``main``: run those with ``meshfleet_process``, as a
    pipeline would.
    """
    result = CliRunner().invoke(app, list(args), env=env, catch_exceptions=True)
    crashed = result.exception if not isinstance(result.exception, SystemExit) else None
    return Outcome(result.exit_code, result.stdout, result.stderr, crashed)


async def meshfleet_process(
    *args: str, env: dict[str, str], stdin: bytes | None = None, limit_s: float = 60
) -> Outcome:
    """Run ``python -m meshfleet ARGS`` as its own process, without blocking the event loop."""
    run = await meshfleet(*args, env=env, stdin=stdin, limit_s=limit_s)
    return Outcome(run.code, run.out, run.err)


def problem_lines(outcome: Outcome, source: str | Path) -> list[str]:
    """The problem lines of a refused manifest, checked for shape: ``SOURCE: problem``."""
    lines = outcome.err.splitlines()
    assert lines, "refused without a word"
    prefix = f"{source}: "
    assert all(line.startswith(prefix) for line in lines), outcome.err
    *problems, summary = lines
    count = len(problems)
    assert summary == f"{prefix}{count} problem{'s' if count != 1 else ''}", outcome.err
    return [line.removeprefix(prefix) for line in problems]
