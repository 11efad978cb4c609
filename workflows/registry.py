"""The workflows a meshfleet worker registers."""

from workflows.create_mesh import CreateMeshWorkflow
from workflows.delete_mesh import DeleteMeshWorkflow
from workflows.rollback import MeshRollbackWorkflow
from workflows.rollout import MeshRolloutWorkflow
from workflows.target_page import RolloutTargetPageWorkflow
from workflows.versioned import (
    AutoUpgradingRollbackWorkflow,
    AutoUpgradingRolloutWorkflow,
    PinnedCreateMeshWorkflow,
    PinnedDeleteMeshWorkflow,
    PinnedTargetPageWorkflow,
)

ALL_WORKFLOWS = [
    MeshRolloutWorkflow,
    CreateMeshWorkflow,
    RolloutTargetPageWorkflow,
    MeshRollbackWorkflow,
    DeleteMeshWorkflow,
]
"""What an unversioned worker (the default) registers, and what the replay gate replays."""

VERSIONED_WORKFLOWS = [
    AutoUpgradingRolloutWorkflow,
    PinnedCreateMeshWorkflow,
    PinnedTargetPageWorkflow,
    AutoUpgradingRollbackWorkflow,
    PinnedDeleteMeshWorkflow,
]
"""The same workflows, with their behaviours, for a worker of a Worker Deployment version."""
