"""What the namespace holds of meshfleet: ``meshfleet list``, the recent rollouts and rollbacks
each in the state ``status`` says, and ``search-attributes``, the custom search attributes."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from temporalio.client import Client
from temporalio.common import SearchAttributeIndexedValueType

from meshfleet import rollouts
from meshfleet.cli.core import Command
from meshfleet.cli.emit import emit_json, emit_lines, note
from meshfleet.cli.exit_codes import ExitCode
from meshfleet.cli.tables import table
from meshfleet.cli.temporal import run_with_temporal
from meshfleet.contract import search_attributes as sa
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
    """The table of ``list``: a header, and a row each."""
    return table(
        ("KIND", "ROLLOUT", "STATE", "STARTED", "CLOSED"),
        ((r.kind, r.rollout_id, r.state, utc_text(r.started), utc_text(r.closed)) for r in found),
    )


async def list_command(client: Client, settings: Settings, *, limit: int, as_json: bool) -> int:
    """The most recent rollouts and rollbacks, newest first."""
    found = await list_rollouts(client, limit=limit)
    if as_json:
        emit_json(list_document(found))
    elif not found:
        note(f"no rollouts or rollbacks on namespace {client.namespace!r}")
    else:
        emit_lines(list_lines(found))
    return ExitCode.OK


def list_(
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="How many.")] = 20,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print a JSON list; each entry has kind, rollout_id, state, started, closed, "
            "workflow_id and execution_status.",
        ),
    ] = False,
) -> None:
    """Recent rollouts and rollbacks, newest first.

    KIND is rollout or rollback; STATE is what `status` says (paused, halted,
    awaiting_approval, cancelled, failed, ...), not only Temporal's execution status; times
    are UTC.
    """
    run_with_temporal(
        lambda client, settings: list_command(client, settings, limit=limit, as_json=as_json)
    )


# The type names of `temporal operator search-attribute create --type`.
_TYPE_NAMES = {
    SearchAttributeIndexedValueType.TEXT: "Text",
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.INT: "Int",
    SearchAttributeIndexedValueType.DOUBLE: "Double",
    SearchAttributeIndexedValueType.BOOL: "Bool",
    SearchAttributeIndexedValueType.DATETIME: "Datetime",
    SearchAttributeIndexedValueType.KEYWORD_LIST: "KeywordList",
}


def search_attribute_lines() -> list[str]:
    """``Name=Type`` of each custom search attribute."""
    return [f"{key.name}={_TYPE_NAMES[key.indexed_value_type]}" for key in sa.ALL]


async def register_search_attributes(client: Client, settings: Settings) -> int:
    """Create the missing search attributes on the connected namespace."""
    added = await rollouts.register_search_attributes(client)
    if added:
        note(f"registered on namespace {client.namespace!r}: {', '.join(added)}")
    else:
        note(f"all already registered on namespace {client.namespace!r}")
    emit_lines(search_attribute_lines())
    return ExitCode.OK


def search_attributes(
    register: Annotated[
        bool,
        typer.Option("--register", help="Create the missing ones on the connected Temporal."),
    ] = False,
) -> None:
    """The custom search attributes, as Name=Type lines.

    For the Temporal UI's filters; --register creates those missing on the connected Temporal.
    """
    if not register:
        emit_lines(search_attribute_lines())
        return
    run_with_temporal(register_search_attributes)


def register(app: typer.Typer) -> None:
    """Add ``list`` and ``search-attributes`` to ``app``."""
    app.command(name="list", cls=Command)(list_)
    app.command(name="search-attributes", cls=Command)(search_attributes)
