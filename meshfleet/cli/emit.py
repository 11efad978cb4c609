"""Where the CLI writes: results on standard output, words for people on standard error.

Standard output carries only what a pipeline reads (a table, a report, one JSON document), so
``meshfleet plan fleet.yaml | ...`` or ``meshfleet status ID --json | jq`` gets nothing else;
progress, hints and the Temporal UI address go to standard error. Errors have their own shape
(``exit_codes.print_error``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any


def note(message: str) -> None:
    """A line for people on standard error; standard output keeps to results."""
    print(message, file=sys.stderr, flush=True)


def emit_json(document: Any) -> None:
    """One JSON document on standard output."""
    print(json.dumps(document, indent=2, ensure_ascii=False), flush=True)


def emit_lines(lines: Iterable[str]) -> None:
    """Result lines (a table, a report) on standard output."""
    print("\n".join(lines), flush=True)
