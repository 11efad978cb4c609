"""``MeshApi``: the ASM calls a rollout makes, as a protocol ``AsmClient`` satisfies.

The activities, the metrics wrapper and ``meshfleet plan`` depend on this rather than on the
client, so tests and wrappers can stand in for it. Types only: no aiohttp.
"""

from __future__ import annotations

from typing import Protocol

from meshfleet.asm.models import CreateMeshRequest, Mesh, UpdateMeshRequest
from meshfleet.asm.upgrade import UpgradeJob, UpgradeTask, UpgradeTaskRequest


class MeshApi(Protocol):
    """Create, show and list: what creating a mesh, polling it and planning a rollout need."""

    async def create_mesh(
        self, project_id: str, region: str, request: CreateMeshRequest
    ) -> Mesh: ...

    async def mesh(self, project_id: str, region: str, mesh_id: str) -> Mesh: ...

    async def meshes(self, project_id: str, region: str) -> list[Mesh]: ...


class MeshDeleteApi(MeshApi, Protocol):
    """``MeshApi`` and delete: what deleting a mesh a rollout created needs."""

    async def delete_mesh(self, project_id: str, region: str, mesh_id: str) -> None: ...


class MeshUpdateApi(MeshApi, Protocol):
    """``MeshApi`` and update: what changing a mesh's configuration and waiting for it needs."""

    async def update_mesh(
        self, project_id: str, region: str, mesh_id: str, request: UpdateMeshRequest
    ) -> None: ...


class MeshUpgradeApi(MeshApi, Protocol):
    """``MeshApi`` and the canary upgrade task: what moving a mesh to a new version needs."""

    async def create_upgrade(
        self, project_id: str, region: str, request: UpgradeTaskRequest
    ) -> UpgradeTask: ...

    async def upgrade_task(self, project_id: str, region: str, task_id: str) -> UpgradeTask: ...

    async def move_upgrade(
        self, project_id: str, region: str, task_id: str, request: UpgradeTaskRequest
    ) -> None: ...

    async def upgrade_job(self, project_id: str, region: str, job_id: str) -> UpgradeJob: ...


class MeshWriteApi(MeshDeleteApi, MeshUpdateApi, MeshUpgradeApi, Protocol):
    """Every call a worker makes: create, show, list, update, delete and upgrade."""
