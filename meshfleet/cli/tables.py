"""The one shape of every table the CLI prints: a header line, a line a row, columns aligned."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from meshfleet.models import MeshTarget

PlanStep = tuple[str, MeshTarget, str]
"""One target of a plan: its action, the target, and the plan's last column for it."""
UNDER_A_ROW = "  "
"""How a line about the row above it starts (a rollout plan's changes): a row never does."""


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """The header, then one line per row.

    Two spaces part the columns, and every column but the last is padded to its widest cell:
    pipelines split a line on two spaces (a cell such as ``in_sync (exists, phase Running)``
    holds single ones). The last column is left unpadded, so no line ends in blanks.
    """
    lines = [tuple(header), *(tuple(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header) - 1)]
    return [
        "  ".join([*(cell.ljust(w) for cell, w in zip(line[:-1], widths, strict=True)), line[-1]])
        for line in lines
    ]


def plan_table(
    steps: Iterable[PlanStep], last: str, under: Sequence[Sequence[str]] | None = None
) -> list[str]:
    """A plan, rollout's or rollback's: a line per target in the order it would walk them.

    ACTION, then where the target is (REGION, PROJECT, MESH), then ``last``: the cluster a
    rollout would join (CLUSTER), or why a rollback deletes or keeps the mesh (WHY).

    ``under``, one entry per step: lines printed below its row, each starting with
    ``UNDER_A_ROW`` (a rollout's differing fields). They take no part in the columns, and a
    pipeline that wants the rows alone drops the lines starting with a blank.
    """
    lines = table(
        ("ACTION", "REGION", "PROJECT", "MESH", last),
        (
            (action, target.region, target.project_id, target.mesh_name, extra)
            for action, target, extra in steps
        ),
    )
    if under is None:
        return lines
    header, *rows = lines
    out = [header]
    for row, below in zip(rows, under, strict=True):
        out += [row, *(f"{UNDER_A_ROW}{line}" for line in below)]
    return out
