"""The workflows a meshfleet worker registers."""

from workflows.create_mesh import CreateMeshWorkflow
from workflows.rollout import MeshRolloutWorkflow
from workflows.target_page import RolloutTargetPageWorkflow

ALL_WORKFLOWS = [MeshRolloutWorkflow, CreateMeshWorkflow, RolloutTargetPageWorkflow]
