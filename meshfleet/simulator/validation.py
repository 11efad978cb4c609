"""Pydantic errors as the one ``errorMsg`` line of a 400.

The id shapes the simulator refuses are the client's own rules (``meshfleet.asm.rules``).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError

_VALUE_ERROR_PREFIX = "Value error, "


def field_path(loc: Sequence[int | str]) -> str:
    """``("spec", "extendParams", "clusters", 0, "installation")`` as
    ``spec.extendParams.clusters[0].installation``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


def describe(exc: ValidationError) -> str:
    """Every problem as ``path: message``, joined by ``; `` (e.g. ``metadata.name: must not end
    with '-'``)."""
    problems = []
    for err in exc.errors(include_url=False, include_input=False):
        message = err["msg"].removeprefix(_VALUE_ERROR_PREFIX)
        path = field_path(err["loc"])
        problems.append(f"{path}: {message}" if path else f"request body: {message}")
    return "; ".join(problems)
