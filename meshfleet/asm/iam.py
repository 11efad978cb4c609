"""One IAM password token request: ``POST {IAM}/v3/auth/tokens``, scoped to one project.

Caching, sharing and the care not to lock an IAM user belong to ``auth.IamPasswordAuth``; this
module only asks IAM once and reads its answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from meshfleet.asm.endpoints import iam_endpoint_for
from meshfleet.asm.errors import AsmError
from meshfleet.asm.models import parse_time
from meshfleet.asm.transport import Transport, check_header_value

# A header name, not a secret (S105 reads any *TOKEN* name as one).
SUBJECT_TOKEN_HEADER = "X-Subject-Token"  # noqa: S105
TOKEN_PATH = "/v3/auth/tokens"  # noqa: S105


@dataclass(frozen=True)
class IssuedToken:
    """A token IAM issued, and for how many seconds it is valid (0 when IAM did not say)."""

    value: str
    lifetime_s: float

    def __repr__(self) -> str:
        return f"IssuedToken(value=<hidden>, lifetime_s={self.lifetime_s})"


@dataclass(frozen=True)
class PasswordIdentity:
    """An IAM user of an account (domain); the password never appears in ``repr``."""

    user: str
    password: str
    domain: str

    def __repr__(self) -> str:
        return f"PasswordIdentity(user={self.user!r}, domain={self.domain!r})"


def _lifetime_s(body: Any) -> float:
    """Seconds the token is valid, measured on the server's own clock when it says both ends."""
    token = body.get("token") if isinstance(body, dict) else None
    if not isinstance(token, dict):
        return 0.0
    expires = parse_time(token.get("expires_at"))
    if expires is None:
        return 0.0
    issued = parse_time(token.get("issued_at"))
    # expires_at - issued_at is immune to a skew between this machine's clock and IAM's.
    start = issued or datetime.now(UTC)
    return max(0.0, (expires - start).total_seconds())


async def fetch_token(
    transport: Transport,
    identity: PasswordIdentity,
    project_id: str,
    region: str,
    *,
    endpoint_override: str | None = None,
    timeout_s: float | None = None,
) -> IssuedToken:
    """Ask IAM for a token of ``identity`` scoped to ``project_id``.

    Args:
        transport: What the request goes out on.
        identity: User, password and account.
        project_id: The validated project the token is for.
        region: Picks the IAM endpoint.
        endpoint_override: ``IAM_ENDPOINT``; may contain ``{region}``.
        timeout_s: Seconds the request may take, instead of the transport's default.

    Raises:
        AsmAuthenticationError: IAM refused the user, password or account.
        AsmStatusError: IAM answered another non-2xx status.
        AsmConnectionError: IAM did not answer.
        AsmError: IAM answered without a token.
    """
    url = iam_endpoint_for(region, endpoint_override) + TOKEN_PATH
    payload = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "name": identity.user,
                        "password": identity.password,
                        "domain": {"name": identity.domain},
                    }
                },
            },
            "scope": {"project": {"id": project_id}},
        }
    }
    response = await transport.send(
        "POST",
        url,
        label="IAM token request",
        headers={"Content-Type": "application/json;charset=utf8"},
        body=json.dumps(payload, separators=(",", ":")).encode(),
        timeout_s=timeout_s,
    )
    token = response.headers.get(SUBJECT_TOKEN_HEADER, "")
    if not token:
        raise AsmError(
            f"IAM answered HTTP {response.status} without an {SUBJECT_TOKEN_HEADER} header"
        )
    check_header_value(token, SUBJECT_TOKEN_HEADER)
    try:
        body = json.loads(response.body)
    except ValueError:
        body = None
    return IssuedToken(token, _lifetime_s(body))
