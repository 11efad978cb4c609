"""What the commands take from the command line and the environment, checked before any use.

The argument and option types shared by several commands (one help text each, wherever it
appears), the rollout id check that runs before Temporal is asked, and the settings. A value
that is wrong raises ``CommandError`` (exit 2); the commands' error wrapper says it in one line.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer
from pydantic import ValidationError

from meshfleet.asm.regions import EXTRA_REGIONS_ENV, extra_regions_of
from meshfleet.cli.exit_codes import CommandError, ExitCode
from meshfleet.rollout_id import rollout_id_problem
from meshfleet.settings import Settings

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


def check_rollout_id(rollout_id: str, *, what: str = "ROLLOUT_ID") -> str:
    """The id, if it can name a rollout: checked before Temporal is asked, so a malformed id
    never reaches a workflow id or a query.

    Args:
        rollout_id: The id as given.
        what: Where it was given (``ROLLOUT_ID``, ``--rollout-id``), to start the message with.

    Raises:
        CommandError: exit 2.
    """
    problem = rollout_id_problem(rollout_id)
    if problem is not None:
        raise CommandError(ExitCode.INVALID, f"{what}: {problem}")
    return rollout_id


def extra_regions() -> tuple[str, ...]:
    """The regions ``MESHFLEET_EXTRA_REGIONS`` adds to those a manifest may name.

    Raises:
        CommandError: exit 2, naming the malformed entry.
    """
    try:
        return extra_regions_of(os.environ)
    except ValueError as exc:
        raise CommandError(ExitCode.INVALID, f"{EXTRA_REGIONS_ENV}: {exc}") from None


def load_settings() -> Settings:
    """The settings of the environment (``MESHFLEET_*``, ``ASM_*``).

    Raises:
        CommandError: exit 2, every refused setting in the one line.
    """
    try:
        return Settings()
    except ValidationError as exc:
        problems = [
            f"setting {'.'.join(map(str, problem['loc']))}: {problem['msg']}"
            for problem in exc.errors(include_url=False)
        ]
        raise CommandError(ExitCode.INVALID, "; ".join(problems)) from None
    except ValueError as exc:  # a value pydantic-settings could not even parse
        raise CommandError(ExitCode.INVALID, f"settings: {' '.join(str(exc).split())}") from None
