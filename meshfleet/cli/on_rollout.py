"""The commands on one rollout that take ROLLOUT_ID, --json and --rollback and nothing else:
``wait``, ``status``, ``report``, ``pause``, ``resume`` and ``cancel``. Each is a row of a
table (a name, its help and its work); ``RolloutCommand.register`` makes the command of a row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import typer
from temporalio.client import Client

from meshfleet.cli.core import Command
from meshfleet.cli.params import JsonFlag, RollbackFlag, RolloutIdArg, check_rollout_id
from meshfleet.cli.temporal import run_with_temporal
from meshfleet.settings import Settings


class RolloutWork(Protocol):
    """What a command does with the rollout, once Temporal is connected: its exit code."""

    async def __call__(
        self,
        client: Client,
        settings: Settings,
        rollout_id: str,
        *,
        as_json: bool,
        rollback: bool = False,
    ) -> int: ...


@dataclass(frozen=True)
class RolloutCommand:
    """A command on one rollout (ROLLOUT_ID, --json, --rollback): its name, work and help.

    ``short_help`` is the line of ``meshfleet --help``; None takes the first sentence of
    ``help``.
    """

    name: str
    work: RolloutWork
    short_help: str | None
    help: str

    def function(self) -> Callable[..., None]:
        """The command's function, for typer to read its arguments from."""
        work = self.work

        def command(
            rollout_id: RolloutIdArg, as_json: JsonFlag = False, rollback: RollbackFlag = False
        ) -> None:
            check_rollout_id(rollout_id)
            run_with_temporal(
                lambda client, settings: work(
                    client, settings, rollout_id, as_json=as_json, rollback=rollback
                )
            )

        command.__name__ = command.__qualname__ = self.name
        return command

    def register(self, app: typer.Typer) -> None:
        """Add the command to ``app``."""
        app.command(name=self.name, cls=Command, short_help=self.short_help, help=self.help)(
            self.function()
        )
