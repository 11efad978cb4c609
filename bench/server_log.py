"""Warnings about history size, blob size or payloads, from the dev server's and worker's logs."""

from __future__ import annotations

import re
from pathlib import Path

# Server 1.32 words them "history size exceeds warn limit", "history count exceeds warn limit",
# "Blob data size exceeds the warning limit", "mutable state size exceeds warn limit".
SIZE_WARNING = re.compile(
    r"history (size|count)|blob (data )?size|payload|mutable state size|exceeds (the )?warn",
    re.IGNORECASE,
)
# The SDK's own check before it uploads: "[TMPRL1103] Attempted to upload payloads with size
# that exceeded the warning limit."
SDK_PAYLOAD_WARNING = re.compile(r"TMPRL1103|exceeded the warning limit", re.IGNORECASE)


def _lines(log: Path) -> list[str]:
    try:
        return log.read_text(errors="replace").splitlines()
    except OSError:
        return []


def size_warnings(log: Path) -> list[str]:
    """Every WARN or ERROR line of the server log that is about a size or payload limit."""
    return [
        line
        for line in _lines(log)
        if ("level=WARN" in line or "level=ERROR" in line) and SIZE_WARNING.search(line)
    ]


def sdk_payload_warnings(log: Path) -> list[str]:
    """Every line of a worker's log where the SDK warned about a payload's size."""
    return [line for line in _lines(log) if SDK_PAYLOAD_WARNING.search(line)]
