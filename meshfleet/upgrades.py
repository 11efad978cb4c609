"""Whether a mesh can be upgraded to a target's version, and by which path: one rule, which
``meshfleet plan`` shows and a rollout applies.

One canary upgrade moves a mesh one line up (``meshfleet.asm.upgrade.lines_between``). A mesh
two lines behind would need its first upgrade finalized, the point after which ASM cannot roll
it back, before the second could start; a rollout finalizes nothing before the whole fleet has
proven the version it upgrades to, so it refuses such a mesh and names the path, and the
manifest takes the fleet one line at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

from meshfleet.asm.upgrade import lines_between
from meshfleet.contract import failures as errors

_PATHS = "1.8 -> 1.15, 1.13 -> 1.15, 1.15 -> 1.18"


def line_text(line: tuple[int, int]) -> str:
    """``(1, 15)`` -> ``1.15``."""
    return f"{line[0]}.{line[1]}"


@dataclass(frozen=True)
class UpgradePath:
    """The lines between a mesh's version and the target's; ``hops`` None: no path leads there."""

    current: str
    target: str
    hops: tuple[tuple[int, int], ...] | None

    @property
    def text(self) -> str:
        """``1.13.9 -> 1.15 -> 1.18.7-r5``: the version, each line passed, the target."""
        if not self.hops:
            return f"{self.current} -> {self.target}"
        middle = [line_text(line) for line in self.hops[:-1]]
        return " -> ".join([self.current, *middle, self.target])


def upgrade_path(current: str, target: str) -> UpgradePath:
    """The path from ``current`` to ``target``, one canary upgrade per hop."""
    hops = lines_between(current, target)
    return UpgradePath(current, target, tuple(hops) if hops is not None else None)


@dataclass(frozen=True)
class UpgradeRefusal:
    """Why a mesh is not upgraded: the target's error code and the words for it."""

    code: str
    message: str


def downgrade_refusal(mesh_name: str, current: str, target: str) -> UpgradeRefusal:
    """Every downgrade is refused: ASM has no call that takes a mesh to an older version."""
    return UpgradeRefusal(
        errors.DOWNGRADE_REFUSED,
        f"mesh {mesh_name} runs {current}, newer than the manifest's {target}: meshfleet never "
        "downgrades a mesh",
    )


def upgrade_refusal(
    mesh_name: str, current: str, target: str, phase: str | None
) -> UpgradeRefusal | None:
    """None when one canary upgrade takes the mesh from ``current`` to ``target`` now; else
    what stands in the way: no path, too long a path, or a mesh not ``Running``."""
    path = upgrade_path(current, target)
    if path.hops is None or not path.hops:
        return UpgradeRefusal(
            errors.UPGRADE_OFF_PATH,
            f"mesh {mesh_name} runs {current}: no upgrade path leads to {target} (one canary "
            f"upgrade moves a mesh one line up: {_PATHS}); nothing was sent",
        )
    if len(path.hops) > 1:
        first = line_text(path.hops[0])
        return UpgradeRefusal(
            errors.UPGRADE_PATH_TOO_LONG,
            f"mesh {mesh_name} runs {current}, {len(path.hops)} canary upgrades from {target} "
            f"({path.text}): each must be finalized before the next, so a rollout upgrades one "
            f"line at a time; roll out a {first} version first (nothing was sent)",
        )
    if phase == "Upgrading":
        return UpgradeRefusal(
            errors.MESH_UPGRADING,
            f"mesh {mesh_name} is Upgrading: an upgrade this rollout did not start holds it "
            "(finish it or roll it back in the ASM console); nothing was sent",
        )
    if phase != "Running":
        return UpgradeRefusal(
            errors.MESH_NOT_RUNNING,
            f"mesh {mesh_name} is {phase or 'in no phase'}; only a Running mesh can be upgraded "
            "(nothing was sent)",
        )
    return None
