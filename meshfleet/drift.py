"""How a mesh that exists differs from its target: configuration field by field, and version.

The manifest is the fleet's desired state: a mesh of the target's name on its cluster is in sync
only when its echoed ``spec.config`` reads as the manifest's and its version is the manifest's.
What the API does not echo at all (a cluster's installation nodes and injection namespaces) is
not compared here: nothing can tell whether it drifted.

Equality follows what the API echoes, not the bytes of the request: a key that is null and a key
that is absent are the same; numbers compare by value (``1`` is ``1.0``); the comma-separated
lists of ``proxyConfig`` compare as sets of their trimmed items. Everything else compares as
given, lists in order.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from meshfleet.asm.models import Mesh
from meshfleet.models import MeshTarget

# proxyConfig's values are comma-separated strings (ranges, ports): their order means nothing.
COMMA_LISTS = frozenset(
    {
        "includeIPRanges",
        "excludeIPRanges",
        "excludeOutboundPorts",
        "excludeInboundPorts",
        "includeOutboundPorts",
        "includeInboundPorts",
    }
)


@dataclass(frozen=True)
class FieldChange:
    """One field of the configuration that differs: ``path`` (``config.a.b[0].c``), the value
    the mesh has (``before``) and the one the manifest wants (``after``); None: absent."""

    path: str
    before: Any
    after: Any

    def text(self) -> str:
        """``config.telemetryConfig.tracing.randomSamplingPercentage: 1 -> 10``."""
        return f"{self.path}: {_shown(self.before)} -> {_shown(self.after)}"


def config_changes(
    wanted: Mapping[str, Any] | None, echoed: Mapping[str, Any] | None
) -> list[FieldChange]:
    """Every field in which the mesh's echoed configuration differs from the wanted one, in
    the order of the keys (wanted first, then those only the mesh has)."""
    changes: list[FieldChange] = []
    _diff("config", dict(wanted or {}), dict(echoed or {}), changes, key="")
    return changes


def _diff(path: str, after: Any, before: Any, out: list[FieldChange], *, key: str) -> None:
    after, before = _plain(after), _plain(before)
    if isinstance(after, dict) and isinstance(before, dict):
        keys = [*after, *(k for k in before if k not in after)]
        for name in keys:
            _diff(f"{path}.{name}", after.get(name), before.get(name), out, key=name)
        return
    if (
        isinstance(after, list)
        and isinstance(before, list)
        and len(after) == len(before)
        and all(isinstance(item, dict) for item in (*after, *before))
    ):
        # Objects in a list of the same length: field by field, so a change names its field.
        for i, (a, b) in enumerate(zip(after, before, strict=True)):
            _diff(f"{path}[{i}]", a, b, out, key=key)
        return
    if not _same(after, before, key):
        out.append(FieldChange(path, before, after))


def _plain(value: Any) -> Any:
    """Absence for null, an empty object, or an object all of whose keys are absent."""
    if isinstance(value, Mapping):
        kept = {k: v for k, v in value.items() if _plain(v) is not None}
        return kept or None
    return value


def _same(after: Any, before: Any, key: str) -> bool:
    if key in COMMA_LISTS and isinstance(after, str) and isinstance(before, str):
        return _items(after) == _items(before)
    if _is_number(after) and _is_number(before):
        return float(after) == float(before)
    return bool(after == before)


def _items(text: str) -> frozenset[str]:
    return frozenset(item.strip() for item in text.split(",") if item.strip())


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _shown(value: Any) -> str:
    if value is None:
        return "absent"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # the models read 10 as 10.0; a person wrote 10
    return json.dumps(value) if isinstance(value, list | dict) else str(value)


# --- versions --------------------------------------------------------------------------------

VersionOrder = Literal["same", "older", "newer"]

_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:-r(\d+))?$")


def version_key(version: str) -> tuple[int, int, int, int]:
    """``1.18.7-r5`` -> ``(1, 18, 7, 5)``; a version without ``-rN`` is revision 0.

    Raises:
        ValueError: not an ASM version such as ``1.18.7-r5``.
    """
    match = _VERSION.match(version)
    if match is None:
        raise ValueError(f"{version!r} is not an ASM version such as 1.18.7-r5")
    major, minor, patch, revision = match.groups()
    return int(major), int(minor), int(patch), int(revision or 0)


def version_order(mesh: str, wanted: str) -> VersionOrder:
    """Whether the mesh's version is the wanted one, older (an upgrade is due) or newer (the
    manifest would downgrade it, which meshfleet never does)."""
    have, want = version_key(mesh), version_key(wanted)
    if have == want:
        return "same"
    return "older" if have < want else "newer"


# --- a target against the mesh that stands for it ----------------------------------------------

ChangeKind = Literal["in_sync", "update", "upgrade", "downgrade"]


@dataclass(frozen=True)
class Comparison:
    """What a target asks of the mesh of its name on its cluster.

    ``in_sync``: nothing; ``update``: the configuration differs (``changes``), the version is
    the manifest's; ``upgrade``: the mesh runs an older version (``changes`` may list the
    configuration too, to converge after the upgrade); ``downgrade``: it runs a newer one, which
    meshfleet refuses.
    """

    kind: ChangeKind
    mesh_version: str | None
    changes: list[FieldChange]


def wanted_config(target: MeshTarget) -> dict[str, Any] | None:
    """The configuration the target asks for, as the wire spells it (None: none)."""
    config = target.to_request().spec.config
    return config.model_dump(by_alias=True, exclude_none=True, mode="json") if config else None


def echoed_config(mesh: Mesh) -> dict[str, Any] | None:
    """The configuration the mesh echoes (None: none)."""
    spec = mesh.spec
    if spec is None or spec.config is None:
        return None
    return spec.config.model_dump(by_alias=True, exclude_none=True, mode="json")


def reads_as(mesh: Mesh, config: Mapping[str, Any] | None) -> bool:
    """Whether the mesh echoes ``config``, by the equality of this module."""
    return not config_changes(config, echoed_config(mesh))


def compare(target: MeshTarget, mesh: Mesh) -> Comparison:
    """``target`` against ``mesh``: its version, then its configuration field by field.

    A mesh that echoes no version, or one in a form no ASM version has (``1.18``), is judged
    by its configuration alone (the version cannot be ordered, so it is not drift).
    """
    spec = mesh.spec
    changes = config_changes(wanted_config(target), echoed_config(mesh))
    version = spec.version if spec is not None else None
    order = _order_of(version, target.version)
    if order == "newer":
        return Comparison("downgrade", version, changes)
    if order == "older":
        return Comparison("upgrade", version, changes)
    return Comparison("update" if changes else "in_sync", version, changes)


def _order_of(echoed: str | None, wanted: str) -> VersionOrder:
    # A version the mesh does not echo, or echoes in a form no ASM version has, cannot be
    # ordered: it is not judged drift (nothing could say which way it differs).
    if not echoed or echoed == wanted:
        return "same"
    try:
        return version_order(echoed, wanted)
    except ValueError:
        return "same"


def drift_of(target: MeshTarget, mesh: Mesh) -> list[FieldChange]:
    """How ``mesh`` differs from ``target``: its version first, when it is another, then each
    field of its configuration."""
    seen = compare(target, mesh)
    if seen.kind in ("upgrade", "downgrade"):
        return [FieldChange("version", seen.mesh_version, target.version), *seen.changes]
    return list(seen.changes)


DRIFT_FIELDS_MAX = 10
"""Differing fields a target's outcome names; more are counted in one last line."""
DRIFT_TEXT_MAX = 240
"""Characters of one field's line: a comma list of IP ranges can run to kilobytes."""


def drift_texts(changes: list[FieldChange]) -> list[str]:
    """The lines an outcome records for ``changes``: at most ``DRIFT_FIELDS_MAX`` fields of at
    most ``DRIFT_TEXT_MAX`` characters each, so a rollout's report and carry stay small."""
    lines = [_clipped(change.text()) for change in changes[:DRIFT_FIELDS_MAX]]
    if len(changes) > DRIFT_FIELDS_MAX:
        lines.append(f"… and {len(changes) - DRIFT_FIELDS_MAX} more fields")
    return lines


def _clipped(text: str) -> str:
    return text if len(text) <= DRIFT_TEXT_MAX else text[: DRIFT_TEXT_MAX - 1] + "…"
