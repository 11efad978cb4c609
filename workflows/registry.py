"""The workflows a meshfleet worker registers."""

from workflows.converge_mesh import ConvergeMeshWorkflow
from workflows.create_mesh import CreateMeshWorkflow
from workflows.delete_mesh import DeleteMeshWorkflow
from workflows.drift import DriftCheckWorkflow, DriftTargetPageWorkflow
from workflows.finalize_upgrade import FinalizeUpgradeWorkflow
from workflows.restore_mesh import RestoreMeshWorkflow
from workflows.rollback import MeshRollbackWorkflow
from workflows.rollout import MeshRolloutWorkflow
from workflows.target_page import RolloutTargetPageWorkflow
from workflows.versioned import (
    AutoUpgradingDriftPageWorkflow,
    AutoUpgradingRollbackWorkflow,
    AutoUpgradingRolloutWorkflow,
    PinnedConvergeMeshWorkflow,
    PinnedCreateMeshWorkflow,
    PinnedDeleteMeshWorkflow,
    PinnedDriftCheckWorkflow,
    PinnedFinalizeUpgradeWorkflow,
    PinnedRestoreMeshWorkflow,
    PinnedTargetPageWorkflow,
)

ALL_WORKFLOWS = [
    MeshRolloutWorkflow,
    CreateMeshWorkflow,
    RolloutTargetPageWorkflow,
    MeshRollbackWorkflow,
    DeleteMeshWorkflow,
    ConvergeMeshWorkflow,
    RestoreMeshWorkflow,
    DriftCheckWorkflow,
    DriftTargetPageWorkflow,
    FinalizeUpgradeWorkflow,
]
"""What an unversioned worker (the default) registers, and what the replay gate replays."""

VERSIONED_WORKFLOWS = [
    AutoUpgradingRolloutWorkflow,
    PinnedCreateMeshWorkflow,
    PinnedTargetPageWorkflow,
    AutoUpgradingRollbackWorkflow,
    PinnedDeleteMeshWorkflow,
    PinnedConvergeMeshWorkflow,
    PinnedRestoreMeshWorkflow,
    PinnedDriftCheckWorkflow,
    AutoUpgradingDriftPageWorkflow,
    PinnedFinalizeUpgradeWorkflow,
]
"""The same workflows, with their behaviours, for a worker of a Worker Deployment version."""
