"""One contender's run: wall time, meshes Running, API calls and CPU seconds of each process."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bench import procs
from bench.simstats import ApiCalls


class CpuMeter:
    """CPU seconds each named process spends between ``__init__`` and ``read``."""

    def __init__(self, pids: Mapping[str, int]) -> None:
        self._pids = dict(pids)
        self._start = {name: procs.cpu_seconds(pid) for name, pid in self._pids.items()}

    def read(self) -> dict[str, float]:
        """``{name}_cpu_s`` for every process."""
        return {
            f"{name}_cpu_s": round(procs.cpu_seconds(pid) - self._start[name], 1)
            for name, pid in self._pids.items()
        }


class Stopwatch:
    """Monotonic seconds since construction."""

    def __init__(self) -> None:
        self._start = time.monotonic()

    def seconds(self) -> float:
        """Seconds elapsed."""
        return time.monotonic() - self._start


@dataclass(frozen=True)
class Run:
    """What a contender achieved."""

    targets: int
    running: int
    wall_s: float
    calls: ApiCalls
    extra: dict[str, float] = field(default_factory=dict)
    """CPU seconds per process and any other contender-specific figure."""

    @property
    def meshes_per_s(self) -> float:
        """Meshes driven to ``Running`` per second of wall time."""
        return self.running / self.wall_s if self.wall_s > 0 else 0.0

    def figures(self) -> dict[str, Any]:
        """The run as JSON figures."""
        return {
            "targets": self.targets,
            "running": self.running,
            "wall_s": round(self.wall_s, 2),
            "meshes_per_s": round(self.meshes_per_s, 2),
            **self.calls.per_mesh(self.running),
            **self.extra,
        }
