"""Test helper: manifest documents to validate, and the problems one is refused with."""

from __future__ import annotations

from typing import Any

import pytest

from meshfleet.manifest.load import ManifestError, validate_document

P1 = "0123456789abcdef0123456789abcdef"


def target(i: int, project: str = P1, **extra: Any) -> dict[str, Any]:
    """A valid target; ``i`` keeps clusters and mesh names apart."""
    return {
        "project_id": project,
        "cluster_id": f"cb0ef541-0000-4000-8000-{i:012d}",
        "mesh_name": f"mesh-shop-{i}",
        "node_ids": [f"1c531b0c-0000-4000-8000-{i:012d}"],
        **extra,
    }


def manifest(*targets: dict[str, Any], **top: Any) -> dict[str, Any]:
    """A valid manifest document around ``targets``."""
    doc: dict[str, Any] = {
        "strategy": {"window": 4, "waves": [1, "50%", "100%"], "max_failures": 1},
        "defaults": {"region": "ap-southeast-3", "version": "1.18.7-r5"},
        "targets": list(targets) or [target(0), target(1)],
    }
    doc.update(top)
    return doc


def problems_of(doc: Any) -> list[str]:
    """The problems a document is refused with (it must be refused)."""
    with pytest.raises(ManifestError) as caught:
        validate_document(doc)
    return caught.value.problems
