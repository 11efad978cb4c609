"""What a bench invocation asked for: fleet size, timings, whether to keep the stack's files."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.fleet import Timing


@dataclass(frozen=True)
class Options:
    """``targets`` None means the scenario's own default size."""

    targets: int | None = None
    timing: Timing = field(default_factory=Timing)
    keep: bool = False

    def size(self, default: int) -> int:
        """The fleet size to use."""
        return self.targets if self.targets is not None else default
