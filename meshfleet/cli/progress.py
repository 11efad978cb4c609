"""Watching a rollout: a live rich progress bar on a terminal, plain periodic lines otherwise."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import IO, Any, Protocol

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn
from rich.text import Text

from meshfleet.cli.output import eta_seconds, failure_text, progress_line, whole_seconds
from meshfleet.models import RolloutProgress, TargetFailure


class ProgressView(Protocol):
    """Shows a rollout's progress as it changes."""

    def show(self, progress: RolloutProgress) -> None:
        """Take the latest progress."""

    def close(self) -> None:
        """Stop showing; the terminal is left clean for the report."""


def _failure_line(failure: TargetFailure) -> str:
    return (
        f"failed: {failure.region} {failure.project_id} {failure.mesh_name} "
        f"(cluster {failure.cluster_id}): {failure_text(failure)}"
    )


class _NewFailures:
    """Failures not shown yet, so each is announced once while the rollout runs."""

    def __init__(self) -> None:
        self._seen: set[tuple[str, str, str]] = set()

    def __call__(self, progress: RolloutProgress) -> list[TargetFailure]:
        fresh = []
        for failure in progress.failures:
            key = (failure.project_id, failure.region, failure.mesh_name)
            if key not in self._seen:
                self._seen.add(key)
                fresh.append(failure)
        return fresh


class BarView:
    """A rich progress bar: created, adopted, failed, in flight and ETA."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._bar = Progress(
            # Kept under 80 columns: the rollout id is on the line above the bar.
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=16),
            TaskProgressColumn(),
            TextColumn(
                "[green]created {task.fields[created]}[/] [cyan]adopted {task.fields[adopted]}[/]"
                " [red]failed {task.fields[failed]}[/] in flight {task.fields[in_flight]}"
                " ETA {task.fields[eta]}"
            ),
            console=console,
            refresh_per_second=4,
        )
        self._task: TaskID | None = None
        self._new_failures = _NewFailures()

    def show(self, progress: RolloutProgress) -> None:
        """Move the bar; print newly failed targets above it."""
        p = progress
        eta = eta_seconds(p)
        fields: dict[str, Any] = {
            "created": p.created,
            "adopted": p.adopted,
            "failed": p.failed,
            "in_flight": p.in_flight,
            "eta": "-" if eta is None else whole_seconds(eta),
        }
        description = f"{p.state.value} {p.wave}/{p.waves}"
        done = p.done
        if self._task is None:
            self._bar.start()
            self._task = self._bar.add_task(description, total=p.total, **fields)
        for failure in self._new_failures(p):
            self._console.print(Text(_failure_line(failure), style="red"))
        self._bar.update(self._task, description=description, completed=done, **fields)

    def close(self) -> None:
        """Stop the live display, leaving the last bar on screen."""
        self._bar.stop()


class LineView:
    """Plain lines for logs and pipelines.

    A line when the state or wave changes, when targets finished (at most every ``every_s``
    seconds), and at least every ``quiet_s`` seconds so a log shows the watch is alive.
    """

    def __init__(
        self,
        stream: IO[str],
        every_s: float = 5.0,
        quiet_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._every_s = every_s
        self._quiet_s = quiet_s
        self._clock = clock
        self._last_at: float | None = None
        self._last_key: tuple[object, ...] | None = None
        self._last_state: tuple[object, ...] | None = None
        self._new_failures = _NewFailures()

    def show(self, progress: RolloutProgress) -> None:
        """Print newly failed targets, and a progress line if one is due."""
        p = progress
        for failure in self._new_failures(p):
            self._say(_failure_line(failure))
        now = self._clock()
        state = (p.state, p.wave)
        key = (*state, p.done, p.failed, p.in_flight)
        since = None if self._last_at is None else now - self._last_at
        due = (
            since is None
            or state != self._last_state
            or (key != self._last_key and since >= self._every_s)
            or since >= self._quiet_s
        )
        if due:
            self._say(progress_line(p))
            self._last_at, self._last_key, self._last_state = now, key, state

    def _say(self, line: str) -> None:
        # Plain print, not rich: a log line must never be wrapped or styled.
        print(line, file=self._stream, flush=True)

    def close(self) -> None:
        """Nothing to clean up."""


def progress_view(console: Console) -> ProgressView:
    """A bar when ``console`` is a terminal, lines otherwise."""
    return BarView(console) if console.is_terminal else LineView(console.file)
