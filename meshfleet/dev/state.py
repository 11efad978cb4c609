"""The files of a stack's state directory besides the database and the logs.

``temporal.toml`` and ``dev.env`` point a meshfleet CLI in another terminal at the stack;
``stack.json`` records who runs the stack and its children's pids, so the next run can stop the
leftovers of one whose parent was SIGKILLed, or refuse to share the directory with a live one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from meshfleet.dev.config import StackConfig

RECORD: str = "stack.json"


@dataclass(frozen=True)
class StackRecord:
    """Who ran a stack (``owner``) and the pid of each child it started, by name."""

    owner: int
    children: dict[str, int]


def remove_database(db_path: Path) -> None:
    """Delete the SQLite database with its WAL and shared-memory files."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)


def write_client_files(cfg: StackConfig, client_env: Mapping[str, str]) -> None:
    """``temporal.toml`` (the stack's own profile) and ``dev.env`` (to ``source``)."""
    # A profile file of the stack's own, so a developer's ~/.config/temporalio/temporal.toml
    # (perhaps a Cloud profile with an API key) never applies to the dev stack.
    (cfg.state_dir / "temporal.toml").write_text(
        "# Written by `meshfleet dev`: the embedded dev server.\n"
        "[profile.default]\n"
        f'address = "{cfg.temporal_address}"\n'
        f'namespace = "{cfg.namespace}"\n'
    )
    lines = [
        "# Written by `meshfleet dev`: `source` it to point meshfleet at the dev stack.",
        "unset TEMPORAL_PROFILE TEMPORAL_API_KEY TEMPORAL_TLS TEMPORAL_TLS_CLIENT_CERT_PATH "
        "TEMPORAL_TLS_CLIENT_KEY_PATH TEMPORAL_TLS_SERVER_CA_CERT_PATH",
        *(f"export {name}={value}" for name, value in client_env.items()),
    ]
    env_file = cfg.state_dir / "dev.env"
    env_file.write_text("\n".join(lines) + "\n")
    # It holds the run's simulator token.
    env_file.chmod(0o600)


def write_record(state_dir: Path, record: StackRecord) -> None:
    """Record the running stack (rewritten after each child starts)."""
    document = {"owner": record.owner, "children": record.children}
    (state_dir / RECORD).write_text(json.dumps(document) + "\n")


def read_record(state_dir: Path) -> StackRecord | None:
    """The record of an earlier (or running) stack, or None when there is none to read."""
    try:
        document = json.loads((state_dir / RECORD).read_text())
        owner = int(document["owner"])
        children = {str(k): int(v) for k, v in dict(document["children"]).items()}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return StackRecord(owner, children)


def drop_record(state_dir: Path) -> None:
    """Remove the record: the stack that wrote it has stopped."""
    (state_dir / RECORD).unlink(missing_ok=True)
