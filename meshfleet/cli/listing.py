"""``meshfleet list``: the recent rollouts and rollbacks, each in the state ``status`` says."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client

from meshfleet.cli.exit_codes import ExitCode
from meshfleet.cli.output import aligned
from meshfleet.cli.rollouts import emit_json, note
from meshfleet.listing import Listed, list_rollouts
from meshfleet.settings import Settings
from meshfleet.timestamps import utc_or_none, utc_text

LIST_KEYS = (
    "kind",
    "rollout_id",
    "state",
    "started",
    "closed",
    "workflow_id",
    "execution_status",
)
"""The keys of each entry of ``list --json``, in order."""


def list_document(found: list[Listed]) -> list[dict[str, Any]]:
    """The stable ``--json`` list: times as ``utc_text`` writes them, ``null`` when open."""
    return [
        {
            "kind": r.kind,
            "rollout_id": r.rollout_id,
            "state": r.state,
            "started": utc_or_none(r.started),
            "closed": utc_or_none(r.closed),
            "workflow_id": r.workflow_id,
            "execution_status": r.execution_status,
        }
        for r in found
    ]


def list_lines(found: list[Listed]) -> list[str]:
    """An aligned table, a header and a row each."""
    rows = [("KIND", "ROLLOUT", "STATE", "STARTED", "CLOSED")] + [
        (r.kind, r.rollout_id, r.state, utc_text(r.started), utc_text(r.closed)) for r in found
    ]
    return aligned(rows)


async def list_command(client: Client, settings: Settings, *, limit: int, as_json: bool) -> int:
    """The most recent rollouts and rollbacks, newest first."""
    found = await list_rollouts(client, limit=limit)
    if as_json:
        emit_json(list_document(found))
    elif not found:
        note(f"no rollouts or rollbacks on namespace {client.namespace!r}")
    else:
        print("\n".join(list_lines(found)), flush=True)
    return ExitCode.OK
