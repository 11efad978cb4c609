"""``meshfleet schema``: the manifest's JSON Schema, for editors to complete and check manifests.

docs/manifest.schema.json is this command's output, checked in; a test holds the two equal.
"""

from __future__ import annotations

import json

import typer

from meshfleet.cli.core import Command
from meshfleet.cli.emit import emit_lines
from meshfleet.cli.exit_codes import ExitCode
from meshfleet.manifest.document import manifest_schema


def schema_text() -> str:
    """The schema as the command prints it (and as docs/manifest.schema.json holds it)."""
    return json.dumps(manifest_schema(), indent=2, ensure_ascii=False) + "\n"


def schema_command() -> int:
    """Print the manifest's JSON Schema (draft 2020-12) on standard output.

    Editors that read JSON Schema complete and check manifests with it; docs/manifest.md says
    how to point one at it.
    """
    emit_lines([schema_text().removesuffix("\n")])
    return ExitCode.OK


def register(app: typer.Typer) -> None:
    """Add ``schema`` to ``app``."""
    app.command(name="schema", cls=Command, short_help="The manifest's JSON Schema, for editors.")(
        schema_command
    )


if __name__ == "__main__":
    raise SystemExit(schema_command())
