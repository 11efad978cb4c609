"""Warnings of the Temporal server about history size, blob size or payloads, from its log."""

from __future__ import annotations

import re
from pathlib import Path

# Server 1.32 words them "history size exceeds warn limit", "history count exceeds warn limit",
# "Blob data size exceeds the warning limit", "mutable state size exceeds warn limit".
SIZE_WARNING = re.compile(
    r"history (size|count)|blob (data )?size|payload|mutable state size|exceeds (the )?warn",
    re.IGNORECASE,
)


def size_warnings(log: Path) -> list[str]:
    """Every WARN or ERROR line of the server log that is about a size or payload limit."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return []
    return [
        line
        for line in lines
        if ("level=WARN" in line or "level=ERROR" in line) and SIZE_WARNING.search(line)
    ]
