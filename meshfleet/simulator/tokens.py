"""IAM tokens the simulator issued through ``POST /v3/auth/tokens``, each scoped to one project."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from meshfleet.simulator.clock import Clock


@dataclass(frozen=True)
class IssuedToken:
    """What a token stands for; the token value itself is only the key of the store."""

    user: str
    project_id: str
    issued_at: datetime
    expires_at: datetime
    expires_mono: float
    """``Clock.monotonic()`` reading after which the token is refused."""


class TokenStore:
    """Tokens by value; kept after expiry so a late use is answered 'expired', not 'unknown'."""

    def __init__(self) -> None:
        """An empty store."""
        self._tokens: dict[str, IssuedToken] = {}

    def __repr__(self) -> str:
        return f"TokenStore({len(self._tokens)} token(s))"

    def __len__(self) -> int:
        return len(self._tokens)

    def issue(self, user: str, project_id: str, ttl_seconds: float, clock: Clock) -> str:
        """Create a token for ``user`` scoped to ``project_id``; return its value."""
        value = "MIIsim" + secrets.token_urlsafe(48)
        issued = clock.now()
        self._tokens[value] = IssuedToken(
            user=user,
            project_id=project_id,
            issued_at=issued,
            expires_at=issued + timedelta(seconds=ttl_seconds),
            expires_mono=clock.monotonic() + ttl_seconds,
        )
        return value

    def issued(self) -> list[str]:
        """Every token value issued so far, expired or not, in the order of issue."""
        return list(self._tokens)

    def get(self, value: str) -> IssuedToken | None:
        """The token's record, expired or not; None if the simulator never issued it."""
        return self._tokens.get(value)

    def info(self, value: str) -> IssuedToken:
        """The record of a token known to exist (e.g. just issued).

        Raises:
            KeyError: the token is unknown; the message does not repeat it.
        """
        found = self._tokens.get(value)
        if found is None:
            raise KeyError("unknown token")
        return found
