"""``AsmClient``: the async aiohttp client of the ASM mesh API: create, show, list, find, update,
delete, and the canary upgrade task's create, show, move and job."""

from __future__ import annotations

import json
from types import TracebackType
from typing import Any, Self, TypeVar

import aiohttp
from pydantic import ValidationError

from meshfleet.asm.auth import Auth
from meshfleet.asm.endpoints import endpoint_for
from meshfleet.asm.errors import AsmAuthenticationError, AsmError, excerpt
from meshfleet.asm.models import CreateMeshRequest, Mesh, MeshList, UpdateMeshRequest
from meshfleet.asm.rules import (
    check_mesh_id,
    check_mesh_name,
    check_project_id,
    check_region,
    check_upgrade_id,
)
from meshfleet.asm.transport import Request, Transport
from meshfleet.asm.upgrade import UpgradeJob, UpgradeTask, UpgradeTaskRequest

DEFAULT_USER_AGENT = "meshfleet-asm/0.1 (+aiohttp)"
JSON_CONTENT_TYPE = "application/json"

_Model = TypeVar("_Model", Mesh, MeshList, UpgradeTask, UpgradeJob)


def parse_body(model: type[_Model], data: Any, what: str) -> _Model:
    """A 2xx body as ``model``; a body of another shape is an ``AsmError`` naming ``what``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise AsmError(f"{what}: unexpected response body: {exc}") from exc


class AsmClient:
    """Async client of the ASM mesh API of one account, across projects and regions.

    The client never retries (Temporal owns retries), except once after a 401 when the auth
    says a fresh credential may help (an expired IAM token).

    Example:
        >>> async with AsmClient(auth, endpoint="http://127.0.0.1:8080") as asm:
        ...     mesh = await asm.create_mesh(project_id, "ap-southeast-3", request)
    """

    def __init__(
        self,
        auth: Auth,
        *,
        endpoint: str | None = None,
        session: aiohttp.ClientSession | None = None,
        request_timeout: float = 30.0,
        user_agent: str = DEFAULT_USER_AGENT,
    ) -> None:
        """Set up the client; no connection is opened until the first call.

        Args:
            auth: How requests are authenticated (token, AK/SK or IAM password).
            endpoint: Base URL replacing ``https://asm.{region}.myhuaweicloud.com`` (the
                ``ASM_ENDPOINT`` value); may contain ``{region}``.
            session: An aiohttp session to use; the client then never closes it.
            request_timeout: Seconds one HTTP exchange may take in total.
            user_agent: The ``User-Agent`` header.

        Raises:
            AsmValidationError: ``endpoint`` is not an http(s) base URL.
        """
        if endpoint:
            endpoint_for("ap-southeast-3", endpoint)  # fail at construction, not at first call
        self._auth = auth
        self._endpoint = endpoint or None
        self._transport = Transport(session, timeout=request_timeout)
        self._user_agent = user_agent

    def __repr__(self) -> str:
        return f"AsmClient(auth={self._auth!r}, endpoint={self._endpoint!r})"

    async def _request(
        self,
        method: str,
        project_id: str,
        region: str,
        path: str,
        *,
        body: bytes | None = None,
        parse: bool = True,
    ) -> Any:
        """Send one request and return its parsed JSON body (None when the body is empty).

        Args:
            method: HTTP method.
            project_id: Validated project id (also scopes the credential).
            region: Region; picks the host.
            path: Path below the base URL, built only from validated parts.
            body: Exact bytes to send (and sign).
            parse: False when only the status matters: the body of a 2xx is then ignored.

        Raises:
            AsmValidationError: the region or endpoint is malformed.
            AsmConnectionError: no HTTP answer (refused, reset, DNS, timeout).
            AsmStatusError: a non-2xx answer, as its per-status subclass.
            AsmError: a 2xx answer whose body is not JSON.
        """
        request = Request(
            method,
            endpoint_for(region, self._endpoint) + path,
            project_id,
            region,
            self._transport,
            body or b"",
        )
        label = f"{method} {path}"
        for attempt in (1, 2):
            headers = {
                "Accept": JSON_CONTENT_TYPE,
                "Content-Type": JSON_CONTENT_TYPE,
                "User-Agent": self._user_agent,
            }
            headers.update(await self._auth.headers(request))
            try:
                response = await self._transport.send(
                    method, request.url, label=label, headers=headers, body=body
                )
            except AsmAuthenticationError:
                if attempt == 1 and await self._auth.invalidate(project_id):
                    continue
                raise
            if not parse or not response.body.strip():
                return None
            try:
                return json.loads(response.body)
            except ValueError as exc:
                raise AsmError(
                    f"{label}: HTTP {response.status} with a body that is not JSON: "
                    f"{excerpt(response.body)}"
                ) from exc
        raise AssertionError("unreachable: the second attempt always returns or raises")

    async def create_mesh(self, project_id: str, region: str, request: CreateMeshRequest) -> Mesh:
        """Create a mesh: ``POST /v1/{project_id}/meshes``.

        201 means the task was accepted; the mesh is then in phase ``Creating``.

        Args:
            project_id: 32 lower-case hex characters.
            region: Region of the project, e.g. ``ap-southeast-3``.
            request: The validated create request.

        Returns:
            The mesh as ASM echoes it; ``mesh.uid`` is the id for show and delete.

        Raises:
            AsmValidationError: project_id or region is malformed; nothing was sent.
            AsmConflictError: 409, a mesh of that name exists (or a cluster is taken).
            AsmStatusError: any other non-2xx answer, by status.
            AsmConnectionError: no HTTP answer.
        """
        check_project_id(project_id)
        check_region(region)
        body = json.dumps(request.to_wire(), separators=(",", ":")).encode()
        data = await self._request(
            "POST", project_id, region, f"/v1/{project_id}/meshes", body=body
        )
        return parse_body(Mesh, data, "create mesh")

    async def mesh(self, project_id: str, region: str, mesh_id: str) -> Mesh:
        """Show a mesh: ``GET /v1/{project_id}/meshes/{mesh_id}``.

        Args:
            project_id: 32 lower-case hex characters.
            region: Region of the project.
            mesh_id: ``metadata.uid`` of the mesh.

        Raises:
            AsmValidationError: project_id, region or mesh_id is malformed; nothing was sent.
            AsmNotFoundError: 404, no such mesh (or it is gone after a delete).
            AsmStatusError: any other non-2xx answer, by status.
            AsmConnectionError: no HTTP answer.
        """
        check_project_id(project_id)
        check_mesh_id(mesh_id)
        check_region(region)
        data = await self._request("GET", project_id, region, f"/v1/{project_id}/meshes/{mesh_id}")
        return parse_body(Mesh, data, "show mesh")

    async def meshes(self, project_id: str, region: str) -> list[Mesh]:
        """List every mesh of a project: ``GET /v1/{project_id}/meshes`` (no paging).

        Raises:
            AsmValidationError: project_id or region is malformed; nothing was sent.
            AsmStatusError: a non-2xx answer, by status.
            AsmConnectionError: no HTTP answer.
        """
        check_project_id(project_id)
        check_region(region)
        data = await self._request("GET", project_id, region, f"/v1/{project_id}/meshes")
        return parse_body(MeshList, data, "list meshes").items

    async def find_mesh(self, project_id: str, region: str, name: str) -> Mesh | None:
        """The mesh named ``name`` in a project, or None; the API has no name filter, so it lists.

        Raises:
            AsmValidationError: project_id, region or name is malformed; nothing was sent.
            AsmStatusError: a non-2xx answer, by status.
            AsmConnectionError: no HTTP answer.
        """
        check_mesh_name(name)
        for mesh in await self.meshes(project_id, region):
            if mesh.metadata.name == name:
                return mesh
        return None

    async def update_mesh(
        self, project_id: str, region: str, mesh_id: str, request: UpdateMeshRequest
    ) -> None:
        """Replace a mesh's configuration: ``PUT /v2/projects/{project_id}/meshes/{mesh_id}``.

        Any 2xx means the change was accepted; it is applied asynchronously, so show echoes the
        new ``spec.config`` only later. Only a ``Running`` mesh can be updated.

        Args:
            project_id: 32 lower-case hex characters.
            region: Region of the project.
            mesh_id: ``metadata.uid`` of the mesh.
            request: The validated update request (the whole new configuration).

        Raises:
            AsmValidationError: project_id, region or mesh_id is malformed; nothing was sent.
            AsmNotFoundError: 404, no such mesh.
            AsmConflictError: 409, the mesh is not ``Running`` (creating, upgrading, deleting…).
            AsmStatusError: any other non-2xx answer, by status.
            AsmConnectionError: no HTTP answer.
        """
        check_project_id(project_id)
        check_mesh_id(mesh_id)
        check_region(region)
        body = json.dumps(request.to_wire(), separators=(",", ":")).encode()
        # Unlike the other mesh calls this one lives under /v2/projects/. Its answer's body is
        # not published, so only the status counts: an unexpected body must not turn an
        # accepted update into an error.
        await self._request(
            "PUT",
            project_id,
            region,
            f"/v2/projects/{project_id}/meshes/{mesh_id}",
            body=body,
            parse=False,
        )

    async def delete_mesh(self, project_id: str, region: str, mesh_id: str) -> None:
        """Delete a mesh: ``DELETE /v1/{project_id}/meshes/{mesh_id}``.

        Deletion is asynchronous: show answers 404 once the mesh is gone.

        Raises:
            AsmValidationError: project_id, region or mesh_id is malformed; nothing was sent.
            AsmNotFoundError: 404, no such mesh.
            AsmStatusError: any other non-2xx answer, by status.
            AsmConnectionError: no HTTP answer.
        """
        check_project_id(project_id)
        check_mesh_id(mesh_id)
        check_region(region)
        # The 200 means the deletion started; its body is not needed, so an odd one must not
        # turn a successful delete into an error.
        await self._request(
            "DELETE", project_id, region, f"/v1/{project_id}/meshes/{mesh_id}", parse=False
        )

    async def create_upgrade(
        self, project_id: str, region: str, request: UpgradeTaskRequest
    ) -> UpgradeTask:
        """Start a canary upgrade of a mesh: ``POST /v1/{project_id}/mesh-upgrade``.

        The body names the mesh (``spec.meshId``), the target version and the first step,
        ``preCheck``. 201 answers the task; its ``metadata.uid`` is the id of every call that
        follows, and no call lists a mesh's tasks, so the 201 is the only place it is learnt.

        Args:
            project_id: 32 lower-case hex characters.
            region: Region of the project.
            request: The body (``UpgradeTaskRequest.for_step(..., UpgradeStep.PRE_CHECK)``).

        Returns:
            The task as ASM answers it.

        Raises:
            AsmValidationError: project_id, region or the body's mesh id is malformed; nothing
                was sent.
            AsmBadRequestError: 400, the body was refused, or the target version is not on the
                mesh's upgrade path (one line up per upgrade).
            AsmNotFoundError: 404, no such mesh.
            AsmConflictError: 409, a task already holds the mesh, or the mesh is not ``Running``.
            AsmStatusError: any other non-2xx answer, by status.
            AsmConnectionError: no HTTP answer (the task may exist all the same).
        """
        check_project_id(project_id)
        check_region(region)
        check_mesh_id(request.spec.mesh_id)
        body = json.dumps(request.to_wire(), separators=(",", ":")).encode()
        data = await self._request(
            "POST", project_id, region, f"/v1/{project_id}/mesh-upgrade", body=body
        )
        return parse_body(UpgradeTask, data, "create upgrade task")

    async def upgrade_task(self, project_id: str, region: str, task_id: str) -> UpgradeTask:
        """Show an upgrade task: ``GET /v1/{project_id}/mesh-upgrade/{task_id}``.

        Args:
            project_id: 32 lower-case hex characters.
            region: Region of the project.
            task_id: ``metadata.uid`` of the task, from the 201 of ``create_upgrade``.

        Raises:
            AsmValidationError: project_id, region or task_id is malformed; nothing was sent.
            AsmNotFoundError: 404, no such task in that project.
            AsmStatusError: any other non-2xx answer, by status.
            AsmConnectionError: no HTTP answer.
        """
        check_project_id(project_id)
        check_upgrade_id(task_id)
        check_region(region)
        data = await self._request(
            "GET", project_id, region, f"/v1/{project_id}/mesh-upgrade/{task_id}"
        )
        return parse_body(UpgradeTask, data, "show upgrade task")

    async def move_upgrade(
        self, project_id: str, region: str, task_id: str, request: UpgradeTaskRequest
    ) -> None:
        """Start the next step of an upgrade task, or its rollback:
        ``PUT /v1/{project_id}/mesh-upgrade/{task_id}``.

        The body has the create's shape; ``spec.currentStep.name`` names the step to start. Any
        2xx means the step was accepted; show the task to follow it.

        Args:
            project_id: 32 lower-case hex characters.
            region: Region of the project.
            task_id: ``metadata.uid`` of the task.
            request: The body naming the step (``UpgradeTaskRequest.for_step``).

        Raises:
            AsmValidationError: project_id, region, task_id or the body's mesh id is malformed;
                nothing was sent.
            AsmBadRequestError: 400, the body was refused (or names another mesh or version).
            AsmNotFoundError: 404, no such task.
            AsmConflictError: 409, the task is at a step from which that one cannot start.
            AsmStatusError: any other non-2xx answer, by status.
            AsmConnectionError: no HTTP answer.
        """
        check_project_id(project_id)
        check_upgrade_id(task_id)
        check_region(region)
        check_mesh_id(request.spec.mesh_id)
        body = json.dumps(request.to_wire(), separators=(",", ":")).encode()
        # The answer's body is not published: only the status counts, as for update_mesh.
        await self._request(
            "PUT",
            project_id,
            region,
            f"/v1/{project_id}/mesh-upgrade/{task_id}",
            body=body,
            parse=False,
        )

    async def upgrade_job(self, project_id: str, region: str, job_id: str) -> UpgradeJob:
        """Show the job behind a step: ``GET /v1/{project_id}/mesh-job/{job_id}``.

        Args:
            project_id: 32 lower-case hex characters.
            region: Region of the project.
            job_id: ``status.jobId`` of the task while it ran that step.

        Raises:
            AsmValidationError: project_id, region or job_id is malformed; nothing was sent.
            AsmNotFoundError: 404, no such job in that project.
            AsmStatusError: any other non-2xx answer, by status.
            AsmConnectionError: no HTTP answer.
        """
        check_project_id(project_id)
        check_upgrade_id(job_id, "job_id")
        check_region(region)
        data = await self._request("GET", project_id, region, f"/v1/{project_id}/mesh-job/{job_id}")
        return parse_body(UpgradeJob, data, "show upgrade job")

    async def close(self) -> None:
        """Close the HTTP session if this client opened it (a caller's session stays open)."""
        await self._transport.close()

    async def __aenter__(self) -> Self:
        """Use the client as an async context manager; it closes its own session on exit."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the session the client opened."""
        await self.close()
