"""The children's environment: the developer's shell without anything meant for a real system."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

# Environment a developer may have set for a real Temporal or a real ASM: the dev stack's
# children must not inherit it, or a worker meant for the simulator would sign requests with
# real credentials, or dial Temporal Cloud with the dev server's address.
_REAL_SYSTEM_PREFIXES: Final = ("TEMPORAL_", "HUAWEICLOUD_", "ASM_", "IAM_")
_REAL_SYSTEM_NAMES: Final = ("IAM_ENDPOINT", "MESHFLEET_METRICS_PORT")


def without_real_systems(base: Mapping[str, str]) -> dict[str, str]:
    """``base`` without any variable that points at, or authenticates to, a real system."""
    return {
        name: value
        for name, value in base.items()
        if not name.startswith(_REAL_SYSTEM_PREFIXES) and name not in _REAL_SYSTEM_NAMES
    }
