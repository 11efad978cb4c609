"""What the simulator refuses with 400: id shapes, and pydantic errors as one ``errorMsg`` line."""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import ValidationError

# fullmatch over explicit ASCII classes: a project id goes into paths and token scopes.
PROJECT_ID_RE = re.compile(r"[0-9a-f]{32}")
MESH_ID_RE = re.compile(r"[A-Za-z0-9-]{1,64}")

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
