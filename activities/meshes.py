"""What the activities of one target share: its project's meshes in its region, called as one
attempt of an activity calls them, and the log context they run in."""

from __future__ import annotations

from collections.abc import Awaitable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import structlog
from pydantic import BaseModel

from activities.errors import application_error
from activities.polling import heartbeating
from meshfleet.asm.calls import MeshApi, MeshDeleteApi, MeshUpdateApi
from meshfleet.asm.errors import AsmConflictError, AsmError, AsmNotFoundError
from meshfleet.asm.models import CreateMeshRequest, Mesh, UpdateMeshRequest

_Api = TypeVar("_Api", bound=MeshApi)
_T = TypeVar("_T")


@dataclass(frozen=True)
class ProjectMeshes(Generic[_Api]):
    """The meshes of one project in one region, for one attempt of an activity.

    An ASM error fails the attempt as its ``ApplicationError`` (``application_error``: retryable
    or not as the error's class says), except the one answer of each call that tells something
    about the mesh, which is raised as it came for the caller to judge: a 409 on create (a mesh
    of that name, or on that cluster, exists) and a 404 on delete (no mesh of that uid).
    """

    api: _Api
    project_id: str
    region: str
    attempt: int
    heartbeat: bool = False
    """Heartbeat while each call waits: a worker that dies mid-call is then noticed within the
    heartbeat timeout. Not for a local activity, which has no heartbeat to send."""

    async def _call(
        self,
        call: Awaitable[_T],
        action: str,
        answer: type[AsmError] | tuple[type[AsmError], ...] | None = None,
    ) -> _T:
        try:
            return await (heartbeating(call) if self.heartbeat else call)
        except AsmError as exc:
            if answer is not None and isinstance(exc, answer):
                raise
            raise application_error(exc, attempt=self.attempt, action=action) from exc

    async def create(self, request: CreateMeshRequest) -> Mesh:
        """POST the mesh; ``AsmConflictError`` on 409."""
        call = self.api.create_mesh(self.project_id, self.region, request)
        return await self._call(call, "create mesh", AsmConflictError)

    async def delete(self: ProjectMeshes[MeshDeleteApi], uid: str) -> None:
        """DELETE the mesh by its uid; ``AsmNotFoundError`` on 404."""
        call = self.api.delete_mesh(self.project_id, self.region, uid)
        await self._call(call, "delete mesh", AsmNotFoundError)

    async def update(
        self: ProjectMeshes[MeshUpdateApi], uid: str, request: UpdateMeshRequest
    ) -> None:
        """PUT the mesh's new configuration; ``AsmConflictError`` on 409 (not Running) and
        ``AsmNotFoundError`` on 404 (no mesh of that uid)."""
        call = self.api.update_mesh(self.project_id, self.region, uid, request)
        await self._call(call, "update mesh", (AsmConflictError, AsmNotFoundError))

    async def shown(self, uid: str) -> Mesh:
        """The mesh of ``uid``; ``AsmNotFoundError`` on 404."""
        return await self._call(
            self.api.mesh(self.project_id, self.region, uid), "show mesh", AsmNotFoundError
        )

    async def listed(self, action: str) -> list[Mesh]:
        """Every mesh of the project, where a 409 or a 404 looks for the mesh of its name;
        ``action`` names the call in a failure."""
        return await self._call(self.api.meshes(self.project_id, self.region), action)


_LOGGED = {"rollout_id", "project_id", "region", "cluster_id", "mesh_name", "uid"}


def mesh_context(*parts: BaseModel, attempt: int) -> AbstractContextManager[None]:
    """Bind what every log line of a target's activity names: the attempt, and the rollout and
    the mesh as ``parts`` (its input, and the target in it) know them."""
    fields: dict[str, Any] = {}
    for part in parts:
        fields.update(part.model_dump(include=_LOGGED, exclude_none=True))
    return structlog.contextvars.bound_contextvars(**fields, attempt=attempt)
