"""``AsmClient``: the async aiohttp client of the ASM mesh API: create, show, list, find, delete."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

import aiohttp
from pydantic import ValidationError
from yarl import URL

from meshfleet.asm.endpoints import check_region, endpoint_for
from meshfleet.asm.errors import (
    AsmConnectionError,
    AsmError,
    AsmStatusError,
    AsmValidationError,
    parse_retry_after,
    status_error,
)
from meshfleet.asm.models import CreateMeshRequest, Mesh, MeshList, mesh_name_problem

if TYPE_CHECKING:
    from meshfleet.asm.auth import Auth

DEFAULT_USER_AGENT = "meshfleet-asm/0.1 (+aiohttp)"
JSON_CONTENT_TYPE = "application/json"

# Both ids go into a URL path; fullmatch over explicit ASCII classes refuses '/', '..', '%',
# whitespace, a trailing newline and Unicode look-alikes (Cyrillic letters, fullwidth digits).
PROJECT_ID_RE = re.compile(r"[0-9a-f]{32}")
MESH_ID_RE = re.compile(r"[A-Za-z0-9-]{1,64}")

_EXCERPT_CHARS = 200

_Model = TypeVar("_Model", Mesh, MeshList)


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_project_id(project_id: str) -> str:
    """Return ``project_id`` if it is 32 lower-case hex characters.

    Raises:
        AsmValidationError: naming ``project_id``; the value never reaches a URL.
    """
    if not isinstance(project_id, str) or not PROJECT_ID_RE.fullmatch(project_id):
        raise AsmValidationError(
            f"project_id {_shown(project_id)} must be 32 lower-case hexadecimal characters"
        )
    return project_id


def check_mesh_id(mesh_id: str) -> str:
    """Return ``mesh_id`` if it is 1-64 ASCII letters, digits or '-'.

    Raises:
        AsmValidationError: naming ``mesh_id``; the value never reaches a URL.
    """
    if not isinstance(mesh_id, str) or not MESH_ID_RE.fullmatch(mesh_id):
        raise AsmValidationError(
            f"mesh_id {_shown(mesh_id)} must be 1 to 64 ASCII letters, digits or '-'"
        )
    return mesh_id


def _excerpt(raw: bytes) -> str:
    text = " ".join(raw.decode("utf-8", errors="replace").split())
    return text if len(text) <= _EXCERPT_CHARS else text[:_EXCERPT_CHARS] + "…"


def _error_fields(body: Any) -> tuple[str, str, str | None] | None:
    """(code, message, request id) from the error body shapes Huawei services use."""
    if not isinstance(body, dict):
        return None
    # ASM itself: {"errorCode", "errorMsg"}.
    if "errorCode" in body or "errorMsg" in body:
        return str(body.get("errorCode") or ""), str(body.get("errorMsg") or ""), None
    # The API gateway in front of every service (e.g. APIGW.0308 throttling) answers snake_case.
    if "error_code" in body or "error_msg" in body:
        rid = body.get("request_id")
        return (
            str(body.get("error_code") or ""),
            str(body.get("error_msg") or ""),
            str(rid) if rid else None,
        )
    # IAM (Keystone style): {"error": {"code": 401, "message": ..., "title": ...}}.
    inner = body.get("error")
    if isinstance(inner, dict):
        code = inner.get("code")
        message = inner.get("message") or inner.get("title") or ""
        return (str(code) if code is not None else ""), str(message), None
    return None


def error_from_response(
    status: int, headers: Mapping[str, str], raw: bytes, reason: str | None = None
) -> AsmStatusError:
    """The ``AsmStatusError`` subclass for a non-2xx answer, whatever the body looks like.

    Args:
        status: HTTP status code.
        headers: Response headers (``X-Request-Id``, ``Retry-After``).
        raw: The response body; JSON error bodies of ASM, the API gateway and IAM are understood,
            anything else becomes a short excerpt.
        reason: The HTTP reason phrase, used when the body is empty.
    """
    code, message, body_rid = "", "", None
    try:
        fields = _error_fields(json.loads(raw)) if raw else None
    except ValueError:
        fields = None
    if fields is not None:
        code, message, body_rid = fields
    else:
        message = _excerpt(raw)
    if not message:
        message = reason or f"HTTP {status}"
    return status_error(
        status,
        code,
        message,
        headers.get("X-Request-Id") or body_rid,
        parse_retry_after(headers.get("Retry-After")),
    )


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
        self._session = session
        self._close_session = False
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._request_timeout = request_timeout
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
        url = endpoint_for(region, self._endpoint) + path
        payload = body or b""
        if self._session is None:
            self._session = aiohttp.ClientSession()
            self._close_session = True
        session = self._session

        for attempt in (1, 2):
            headers = {
                "Accept": JSON_CONTENT_TYPE,
                "Content-Type": JSON_CONTENT_TYPE,
                "User-Agent": self._user_agent,
            }
            headers.update(
                await self._auth.headers(session, method, url, payload, project_id, region)
            )
            try:
                async with session.request(
                    method,
                    # encoded=True: the path is already safe, and the bytes signed must be the
                    # bytes sent, so yarl must not re-quote anything.
                    URL(url, encoded=True),
                    data=body,
                    headers=headers,
                    timeout=self._timeout,
                    # A redirect would carry the token or signature to another host.
                    allow_redirects=False,
                ) as response:
                    raw = await response.read()
                    status = response.status
                    response_headers = response.headers
                    reason = response.reason
            except TimeoutError as exc:
                raise AsmConnectionError(
                    f"{method} {path}: no answer within {self._request_timeout:g} s"
                ) from exc
            except aiohttp.ClientError as exc:
                raise AsmConnectionError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc

            if status == 401 and attempt == 1 and await self._auth.invalidate(project_id):
                continue
            if not 200 <= status < 300:
                raise error_from_response(status, response_headers, raw, reason)
            if not parse or not raw.strip():
                return None
            try:
                return json.loads(raw)
            except ValueError as exc:
                raise AsmError(
                    f"{method} {path}: HTTP {status} with a body that is not JSON: {_excerpt(raw)}"
                ) from exc
        raise AssertionError("unreachable: the second attempt always returns or raises")

    @staticmethod
    def _parse(model: type[_Model], data: Any, what: str) -> _Model:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise AsmError(f"{what}: unexpected response body: {exc}") from exc

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
        return self._parse(Mesh, data, "create mesh")

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
        return self._parse(Mesh, data, "show mesh")

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
        return self._parse(MeshList, data, "list meshes").items

    async def find_mesh(self, project_id: str, region: str, name: str) -> Mesh | None:
        """The mesh named ``name`` in a project, or None; the API has no name filter, so it lists.

        Raises:
            AsmValidationError: project_id, region or name is malformed; nothing was sent.
            AsmStatusError: a non-2xx answer, by status.
            AsmConnectionError: no HTTP answer.
        """
        problem = mesh_name_problem(name) if isinstance(name, str) else "must be a string"
        if problem:
            raise AsmValidationError(f"name {_shown(name)} {problem}")
        for mesh in await self.meshes(project_id, region):
            if mesh.metadata.name == name:
                return mesh
        return None

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

    async def close(self) -> None:
        """Close the HTTP session if this client opened it (a caller's session stays open)."""
        if self._session is not None and self._close_session:
            await self._session.close()
            self._session = None
            self._close_session = False

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
