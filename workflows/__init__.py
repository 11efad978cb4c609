"""Deterministic orchestration: the fleet rollout and the per-target mesh workflow.

Nothing here does I/O or imports an HTTP library: the sandbox re-imports workflow modules for every
run, and design.md measured what a heavy import costs there.
"""

from workflows.create_mesh import CreateMeshWorkflow
from workflows.rollout import MeshRolloutWorkflow
from workflows.target_page import RolloutTargetPageWorkflow

ALL_WORKFLOWS = [MeshRolloutWorkflow, CreateMeshWorkflow, RolloutTargetPageWorkflow]

__all__ = [
    "ALL_WORKFLOWS",
    "CreateMeshWorkflow",
    "MeshRolloutWorkflow",
    "RolloutTargetPageWorkflow",
]
