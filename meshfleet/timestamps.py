"""The one way a moment is written for people: ISO 8601 in UTC, to the second, with a ``Z``.

Pure and light, so that workflow code (timer summaries) and the CLI (tables, JSON) write the
same text for the same moment.
"""

from __future__ import annotations

from datetime import UTC, datetime

_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def utc_text(moment: datetime | str | None, missing: str = "-") -> str:
    """``moment`` as ``2026-12-06T13:20:05Z``; ``missing`` when there is none.

    A string is read as ISO 8601 (what payloads carry), and shown as given when it is not one; a
    naive moment is taken as UTC, as Temporal's are.
    """
    if moment is None or moment == "":
        return missing
    if isinstance(moment, str):
        text = moment
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return text  # not a moment after all: shown as given rather than lost
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(_FORMAT)


def utc_or_none(moment: datetime | str | None) -> str | None:
    """``utc_text`` for JSON documents: ``null`` where there is no moment."""
    return None if moment is None or moment == "" else utc_text(moment)
