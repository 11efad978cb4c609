"""Human durations of the manifest ("20s", "10m", "1h30m", "500ms", or plain seconds)."""

from __future__ import annotations

import math
import re

_UNIT_SECONDS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_NUMBER = r"\d+(?:\.\d+)?"


def _units(named: bool) -> str:
    # Units from largest to smallest, each at most once: "1h30m" is clear, "30m1h" is a typo.
    # Named groups tell the parser the amounts; a JSON Schema pattern must do without them.
    parts = []
    for unit in _UNIT_SECONDS:
        group = f"?P<{unit}>" if named else "?:"
        minutes_not_ms = "(?!s)" if unit == "m" else ""
        parts.append(f"(?:({group}{_NUMBER}){unit}{minutes_not_ms})?")
    return "".join(parts)


_DURATION_RE = re.compile(_units(named=True))
_NUMBER_RE = re.compile(_NUMBER)

MAX_DURATION_S = 30 * 86400.0
"""The longest duration a manifest may give: a month is no timeout, a typo more likely."""

DURATION_PATTERN = rf"^\s*(?:{_NUMBER}|(?=\d){_units(named=False)})\s*$"
"""The strings ``parse_duration`` reads, as a JSON Schema pattern (ECMA-262 and Python alike)."""


def duration_problem(value: object) -> str | None:
    """Say why ``value`` is not a duration, or None when ``parse_duration`` accepts it."""
    try:
        parse_duration(value)
    except ValueError as exc:
        return str(exc)
    return None


def bounded_duration(value: object) -> float:
    """``parse_duration``, refusing more than ``MAX_DURATION_S``.

    Raises:
        ValueError: with a message fit to show the manifest's author.
    """
    seconds = parse_duration(value)
    if seconds > MAX_DURATION_S:
        raise ValueError(f"{value!r} is longer than {format_duration(MAX_DURATION_S)}")
    return seconds


def parse_duration(value: object) -> float:
    """Seconds from a duration: a number of seconds, or a string like ``1h30m`` or ``500ms``.

    Units are ``d``, ``h``, ``m``, ``s`` and ``ms``, largest first, each at most once.

    Raises:
        ValueError: with a message fit to show the manifest's author.
    """
    # bool is an int subclass, and YAML turns `yes` into True: never read it as 1 second.
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(
            f"expected a duration like '20s', '10m', '1h30m' or a number of seconds, "
            f"got {type(value).__name__}"
        )
    seconds = float(value) if isinstance(value, int | float) else _parse_text(value)
    if not math.isfinite(seconds):
        raise ValueError(f"{value!r} is not a finite duration")
    if seconds < 0:
        raise ValueError(f"{value!r} is negative")
    return seconds


def _parse_text(text: str) -> float:
    compact = text.strip()
    if _NUMBER_RE.fullmatch(compact):
        return float(compact)
    match = _DURATION_RE.fullmatch(compact)
    if not compact or match is None or not any(match.groupdict().values()):
        raise ValueError(
            f"{text!r} is not a duration like '20s', '10m', '1h30m', '500ms' or a number of seconds"
        )
    return sum(
        float(amount) * _UNIT_SECONDS[unit]
        for unit, amount in match.groupdict().items()
        if amount is not None
    )


def format_duration(seconds: float) -> str:
    """The shortest manifest spelling of ``seconds`` (``90`` -> ``1m30s``), for summaries."""
    if seconds < 1 and seconds != 0:
        return f"{round(seconds * 1000)}ms"
    whole = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        amount, whole = divmod(whole, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts) or "0s"
