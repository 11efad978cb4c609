"""The manifest's rules across its targets: what no single target can be judged on alone.

Each rule reads the document as written (with the defaults applied to each target), so it
judges whatever it can even while other parts are wrong: a mesh name used twice is named
beside the problems of the targets that use it. The document model
(``meshfleet.manifest.document.Manifest``) runs them and reports their findings with its own.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from meshfleet.asm.regions import unknown_region_problem
from meshfleet.asm.rules import REGION
from meshfleet.manifest.problems import Loc, shown
from meshfleet.manifest.schedule import Schedule, count_of

Finding = tuple[Loc, str]

EXTENSION_PREFIX = "x-"
"""Top-level keys starting with this are free, as in Compose files: YAML anchors live there."""


@dataclass(frozen=True)
class Fleet:
    """The document as the models validate it: targets with their defaults applied.

    Attributes:
        data: What the document model validates: ``x-`` keys left out, a part whose value is
            null left out (``strategy:`` with nothing under it is no strategy), and each target
            that is a mapping merged over the defaults it may take.
        written: Each target as written, to tell its own keys from inherited ones.
        defaults: The defaults as written, when a mapping.
    """

    data: dict[Any, Any]
    written: Sequence[Any]
    defaults: Mapping[Any, Any]

    @classmethod
    def of(
        cls, document: Mapping[Any, Any], parts: Collection[str], defaultable: Collection[str]
    ) -> Fleet:
        """Prepare ``document`` for validation.

        Args:
            document: The parsed manifest.
            parts: The document's own keys (``strategy``, ``defaults``, ``targets``).
            defaultable: The keys a target may take from ``defaults``.
        """
        data = {
            key: value
            for key, value in document.items()
            if not (key in parts and value is None)
            and not (isinstance(key, str) and key.startswith(EXTENSION_PREFIX))
        }
        defaults = data.get("defaults")
        defaults = defaults if isinstance(defaults, dict) else {}
        shared = {key: value for key, value in defaults.items() if key in defaultable}
        written = data.get("targets")
        if isinstance(written, list):
            data["targets"] = [
                shared | entry if isinstance(entry, dict) else entry for entry in written
            ]
        return cls(data, written if isinstance(written, list) else [], defaults)

    @property
    def targets(self) -> list[Any]:
        """The targets with their defaults, as validated; nothing when not a list."""
        targets = self.data.get("targets")
        return targets if isinstance(targets, list) else []

    def blamed(self, loc: Loc) -> Loc:
        """Where a problem at ``loc`` was written: a value a target inherits is the default's."""
        if len(loc) > 2 and loc[0] == "targets" and isinstance(loc[1], int):
            own = self.written[loc[1]] if loc[1] < len(self.written) else None
            if isinstance(own, dict) and loc[2] not in own and loc[2] in self.defaults:
                return ("defaults", *loc[2:])
        return loc


def region_findings(
    fleet: Fleet,
    order: Sequence[str] | None,
    failed: Collection[Loc],
    extra_regions: Collection[str],
) -> list[Finding]:
    """Regions not served by ASM, in ``strategy.regions.order`` and in targets, and targets
    whose region is not in the order.

    The list of regions is the manifest's alone, never the payload model's: a region dropped
    from a later list must not make an older rollout unreadable. A region of the wrong shape is
    the models' to report (``failed`` holds the (target, field) pairs they refused).
    """
    found: list[Finding] = []
    strategy = fleet.data.get("strategy")
    regions = strategy.get("regions") if isinstance(strategy, dict) else None
    listed = regions.get("order") if isinstance(regions, dict) else None
    for i, region in enumerate(listed if isinstance(listed, list) else []):
        unserved = unknown_region_problem(region, extra_regions) if REGION.matches(region) else None
        if unserved is not None:
            found.append((("strategy", "regions", "order", i), unserved))
    for i, target in enumerate(fleet.targets):
        region = target.get("region") if isinstance(target, dict) else None
        if not isinstance(region, str) or (i, "region") in failed:
            continue
        unserved = unknown_region_problem(region, extra_regions)
        if unserved is not None:
            found.append((("targets", i, "region"), unserved))
        elif order is not None and region not in order:
            found.append((("targets", i, "region"), f"{region} is not in strategy.regions.order"))
    return found


def duplicate_findings(fleet: Fleet) -> Iterator[Finding]:
    """A mesh name used twice in one project and region; a cluster named by two targets."""
    mesh_names: dict[tuple[str, str, str], int] = {}
    clusters: dict[str, int] = {}
    for index, target in enumerate(fleet.targets):
        if not isinstance(target, dict):
            continue
        project, region, name, cluster = (
            target.get(key) for key in ("project_id", "region", "mesh_name", "cluster_id")
        )
        if isinstance(project, str) and isinstance(region, str) and isinstance(name, str):
            first = mesh_names.setdefault((project, region, name), index)
            if first != index:
                yield (
                    ("targets", index, "mesh_name"),
                    f"{shown(name)} already used by targets[{first}] in project {shown(project)} "
                    f"region {shown(region)}",
                )
        if isinstance(cluster, str):
            first = clusters.setdefault(cluster, index)
            if first != index:
                yield (
                    ("targets", index, "cluster_id"),
                    f"{shown(cluster)} already used by targets[{first}]; a cluster joins one mesh",
                )


def gate_findings(written: Any, schedule: Schedule) -> Iterator[Finding]:
    """Approval gates after a wave the rollout never has, or after the fleet's last wave.

    Args:
        written: ``strategy.approve_after`` as written (valid): a problem names the entry by
            its position there.
        schedule: The schedule of every target, all of them valid: the waves are counted on
            them (per region with sequential regions).
    """
    most = schedule.max_waves
    for i, wave in enumerate(written if isinstance(written, list) else []):
        if wave > most:
            if schedule.mode == "sequential":
                where = f"no region has more than {count_of(most, 'wave')}"
            else:
                ends = "/".join(str(w.end) for w in schedule.waves)
                where = f"the rollout has {count_of(most, 'wave')} (ending at {ends})"
            yield (
                ("strategy", "approve_after", i),
                f"wave {wave} is beyond the last wave: {where}",
            )
        elif wave == most and schedule.mode != "sequential" and schedule.waves:
            # Across the whole fleet the last wave ends the rollout: a gate there holds nothing
            # back. (In sequential mode it stands before the next region.)
            yield (
                ("strategy", "approve_after", i),
                f"wave {wave} is the rollout's last wave: a gate after it would hold nothing "
                "back; gate an earlier wave",
            )
