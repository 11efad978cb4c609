"""The answers the simulator gives: ASM error codes, error bodies and JSON responses."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

REQUEST_ID_HEADER = "X-Request-Id"

# errorCode values of the current ASM error table (docs/asm-api.md, "By status").
INVALID_REQUEST = "ASM.01010001"
NOT_FOUND = "ASM.01010002"
ALREADY_EXISTS = "ASM.01010003"
AUTH_FAILED = "ASM.01000001"
INTERNAL_ERROR = "ASM.01040001"
RESOURCE_LOCKED = "ASM.01429001"
# The published table has no code for a change refused because the mesh is busy (creating,
# upgrading, deleting, failed); this one is the simulator's, and clients decide on the 409.
MESH_NOT_RUNNING = "ASM.01010004"
# Nor for an upgrade task in the way: one already holds the mesh, or the task's step does not
# admit the step a PUT names. The simulator's own code again; clients decide on the 409.
UPGRADE_CONFLICT = "ASM.01010005"
# What the API gateway answers for a path or method no API is published on.
NO_SUCH_API = "APIGW.0101"

_MAX_MESSAGE = 512  # the seed's bound on errorMsg


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """A compact JSON response."""
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    """An ASM error answer: ``{"errorCode", "errorMsg"}`` (message cut to 512 characters)."""
    if len(message) > _MAX_MESSAGE:
        message = message[: _MAX_MESSAGE - 1] + "…"
    return json_response({"errorCode": code, "errorMsg": message}, status, headers)


def iam_error(status: int, title: str, message: str) -> web.Response:
    """An IAM (Keystone-style) error answer: ``{"error": {"code", "title", "message"}}``."""
    return json_response({"error": {"code": status, "title": title, "message": message}}, status)
