"""``POST /v3/auth/tokens``: IAM password tokens scoped to one project, as Keystone issues them."""

from __future__ import annotations

import hmac
import json
from datetime import datetime
from typing import Any

from aiohttp import web

from meshfleet.asm.rules import PROJECT_ID
from meshfleet.simulator.context import state_of
from meshfleet.simulator.responses import iam_error, json_response
from meshfleet.simulator.state import SimulatorState

SUBJECT_TOKEN_HEADER = "X-Subject-Token"  # noqa: S105 - a header name, not a secret
_WRONG_CREDENTIALS = "The username or password is wrong."


class _BadTokenRequestError(ValueError):
    """The body lacks a field or has it in the wrong shape; the message names the field."""


def _field(body: Any, *path: str) -> Any:
    node = body
    for depth, key in enumerate(path):
        if not isinstance(node, dict) or key not in node:
            raise _BadTokenRequestError(f"{'.'.join(path[: depth + 1])} is required")
        node = node[key]
    return node


def _text(body: Any, *path: str) -> str:
    value = _field(body, *path)
    if not isinstance(value, str) or not value:
        raise _BadTokenRequestError(f"{'.'.join(path)} must be a non-empty string")
    return value


def _iso(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _password_ok(state: SimulatorState, user: str, password: str, domain: str) -> bool:
    known = state.config.iam_users.get(user)
    # Compare even for an unknown user, so the answer time does not reveal which users exist.
    matches = hmac.compare_digest((known or "").encode(), password.encode()) and known is not None
    wanted_domain = state.config.iam_domain
    return matches and (wanted_domain is None or domain == wanted_domain)


async def issue_token(request: web.Request) -> web.Response:
    """Check the user's password and answer 201 with ``X-Subject-Token`` and ``token.expires_at``.

    Body shape (docs/asm-api.md, "IAM password tokens"): ``{"auth": {"identity": {"methods":
    ["password"], "password": {"user": {"name", "password", "domain": {"name"}}}}, "scope":
    {"project": {"id"}}}}``.
    """
    state = state_of(request)
    try:
        body = json.loads(await request.read())
        methods = _field(body, "auth", "identity", "methods")
        if not isinstance(methods, list) or "password" not in methods:
            raise _BadTokenRequestError("auth.identity.methods must contain 'password'")
        user = _text(body, "auth", "identity", "password", "user", "name")
        password = _text(body, "auth", "identity", "password", "user", "password")
        domain = _text(body, "auth", "identity", "password", "user", "domain", "name")
        project_id = _text(body, "auth", "scope", "project", "id")
    except _BadTokenRequestError as exc:
        return iam_error(400, "Bad Request", str(exc))
    except ValueError:
        return iam_error(400, "Bad Request", "the request body is not valid JSON")
    if not PROJECT_ID.matches(project_id):
        return iam_error(400, "Bad Request", f"auth.scope.project.id {PROJECT_ID.message}")
    if not _password_ok(state, user, password, domain):
        return iam_error(401, "Unauthorized", _WRONG_CREDENTIALS)

    token = state.tokens.issue(user, project_id, state.config.token_ttl_seconds, state.clock)
    issued = state.tokens.info(token)
    answer = {
        "token": {
            "methods": ["password"],
            "issued_at": _iso(issued.issued_at),
            "expires_at": _iso(issued.expires_at),
            "user": {"name": user, "domain": {"name": domain}},
            "project": {"id": project_id},
            "catalog": [],
        }
    }
    return json_response(answer, 201, headers={SUBJECT_TOKEN_HEADER: token})
