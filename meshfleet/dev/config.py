"""Where and how the dev stack runs: its ports, its state directory and its defaults."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

DEFAULT_STATE_DIR: Final = Path(".meshfleet")
DEFAULT_TEMPORAL_PORT: Final = 7233
DEFAULT_UI_PORT: Final = 8233
DEFAULT_SIMULATOR_PORT: Final = 18080
# Seconds a simulated mesh stays Creating: long enough to watch a wave move, short enough that
# the example fleet is done in well under a minute.
DEFAULT_CREATE_SECONDS: Final = 2.0
# Loopback only: the simulator's /_sim/* endpoints and the dev server need no authentication.
HOST: Final = "127.0.0.1"


@dataclass(frozen=True)
class StackConfig:
    """Where and how the dev stack runs.

    Attributes:
        state_dir: Holds the Temporal database, the child logs and ``dev.env``.
        temporal_port: Temporal's gRPC frontend.
        ui_port: Temporal's Web UI.
        simulator_port: The ASM simulator's HTTP API.
        db_name: File name of the SQLite database inside ``state_dir``.
        fresh_db: Delete the database first (the demo must not inherit a half-run rollout).
        create_seconds: How long a simulated mesh stays ``Creating``.
        task_queue: The worker's task queue.
        namespace: Temporal namespace.
        ready_timeout_s: Bound on the wait for each child to answer.
        stop_grace_s: SIGTERM, then SIGKILL after this many seconds.
    """

    state_dir: Path = DEFAULT_STATE_DIR
    temporal_port: int = DEFAULT_TEMPORAL_PORT
    ui_port: int = DEFAULT_UI_PORT
    simulator_port: int = DEFAULT_SIMULATOR_PORT
    db_name: str = "temporal.db"
    fresh_db: bool = False
    create_seconds: float = DEFAULT_CREATE_SECONDS
    task_queue: str = "meshfleet"
    namespace: str = "default"
    ready_timeout_s: float = 60.0
    stop_grace_s: float = 10.0

    @property
    def temporal_address(self) -> str:
        """host:port of Temporal's gRPC frontend."""
        return f"{HOST}:{self.temporal_port}"

    @property
    def ui_url(self) -> str:
        """The Temporal Web UI."""
        return f"http://{HOST}:{self.ui_port}"

    @property
    def simulator_url(self) -> str:
        """The ASM simulator, used as ``ASM_ENDPOINT``."""
        return f"http://{HOST}:{self.simulator_port}"

    @property
    def log_dir(self) -> Path:
        """Where each child writes its stdout and stderr."""
        return self.state_dir / "logs"

    @property
    def db_path(self) -> Path:
        """The Temporal dev server's SQLite database."""
        return self.state_dir / self.db_name

    def ports(self) -> dict[str, int]:
        """Every port the stack binds, by what binds it."""
        return {
            "Temporal gRPC": self.temporal_port,
            "Temporal UI": self.ui_port,
            "ASM simulator": self.simulator_port,
        }
