"""Whether a mesh API request is authenticated: a static or issued token, or an AK/SK signature."""

from __future__ import annotations

import hmac
from urllib.parse import parse_qsl

from aiohttp import web

from meshfleet.asm.signer import SignatureError, verify_request
from meshfleet.simulator.state import SimulatorState

TOKEN_HEADER = "X-Auth-Token"  # noqa: S105 - a header name, not a secret
PROJECT_HEADER = "X-Project-Id"


def _static_token_ok(state: SimulatorState, token: str) -> bool:
    # Compare against every static token so the time taken does not tell which one nearly matched.
    ok = False
    for known in state.config.tokens:
        ok |= hmac.compare_digest(known.encode(), token.encode())
    return ok


def _token_problem(state: SimulatorState, token: str, project_id: str) -> str | None:
    if _static_token_ok(state, token):
        return None
    issued = state.tokens.get(token)
    if issued is None:
        return "the X-Auth-Token is not valid"
    if state.clock.monotonic() >= issued.expires_mono:
        return "the X-Auth-Token has expired"
    if issued.project_id != project_id:
        # 401 rather than 403: the token is no credential at all for this project, and a client
        # that fetches a token for the right project will succeed.
        return "the X-Auth-Token is scoped to another project"
    return None


def _signature_problem(
    state: SimulatorState, request: web.Request, project_id: str, body: bytes
) -> str | None:
    secrets_by_ak = {key.ak: key.sk for key in state.config.access_keys}
    try:
        verify_request(
            request.method,
            request.rel_url.raw_path,
            parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True),
            dict(request.headers),
            body,
            secrets_by_ak,
            state.clock.now(),
        )
    except SignatureError as exc:
        # SignatureError messages never carry key material, so they can go back to the client.
        return f"AK/SK signature refused: {exc}"
    header_project = request.headers.get(PROJECT_HEADER)
    if header_project is not None and header_project != project_id:
        return f"the {PROJECT_HEADER} header does not match the project in the path"
    return None


def authentication_problem(
    state: SimulatorState, request: web.Request, project_id: str, body: bytes
) -> str | None:
    """Why the request is refused with 401, or None when it may proceed.

    Args:
        state: The simulator (config, issued tokens, clock).
        request: The request; its headers carry the credential.
        project_id: The project of the path (an issued token must be scoped to it).
        body: The exact body bytes (an AK/SK signature covers them).

    Returns:
        A message safe to send back: it never contains a token, a key or a password.
    """
    if not state.config.auth_enabled:
        return None
    token = request.headers.get(TOKEN_HEADER)
    if token is not None:
        return _token_problem(state, token, project_id)
    if request.headers.get("Authorization"):
        return _signature_problem(state, request, project_id, body)
    return f"no credentials: send {TOKEN_HEADER} or sign the request with SDK-HMAC-SHA256"
