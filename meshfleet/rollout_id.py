"""The rollout id rule: what may name a rollout, checked by the manifest, the model and the CLI.

A rollout id becomes part of workflow ids (``rollout/{rollout_id}``) and search attributes, so it
is matched in full: a trailing newline or a '/' must not pass. Imported inside the Temporal
workflow sandbox (through ``meshfleet.models``): pydantic and ``meshfleet.asm.rules`` only.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

from meshfleet.asm.rules import Rule

ROLLOUT_ID = Rule(
    "rollout_id",
    re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}"),
    "is not a rollout id: 1-128 letters, digits, '.', '_', ':' or '-', "
    "starting with a letter or digit",
)

RolloutId = Annotated[str, AfterValidator(ROLLOUT_ID.validate)]


def rollout_id_problem(value: object) -> str | None:
    """``'<value>' is not a rollout id: ...`` when ``value`` cannot name a rollout, else None."""
    return ROLLOUT_ID.problem(value)
