"""The custom search attributes that let operators filter rollouts and meshes in the Temporal UI."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

ROLLOUT_ID = SearchAttributeKey.for_keyword("MeshRolloutId")
ROLLOUT_STATE = SearchAttributeKey.for_keyword("MeshRolloutState")
PROJECT_ID = SearchAttributeKey.for_keyword("MeshProjectId")
REGION = SearchAttributeKey.for_keyword("MeshRegion")
OUTCOME = SearchAttributeKey.for_keyword("MeshOutcome")

ALL = (ROLLOUT_ID, ROLLOUT_STATE, PROJECT_ID, REGION, OUTCOME)


def dev_server_flags() -> list[str]:
    """``--search-attribute Name=Keyword`` arguments for ``temporal server start-dev``."""
    flags: list[str] = []
    for key in ALL:
        flags += ["--search-attribute", f"{key.name}=Keyword"]
    return flags
