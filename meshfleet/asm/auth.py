"""How ASM requests are authenticated: a static token, AK/SK signing, or IAM password tokens."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from meshfleet.asm.errors import (
    AsmAuthenticationError,
    AsmError,
    AsmStatusError,
    AsmValidationError,
)
from meshfleet.asm.iam import PasswordIdentity, fetch_token
from meshfleet.asm.signer import AccessKey, sign_request
from meshfleet.asm.transport import Request, Transport, check_header_value

# Header and variable names, not secrets (S105 reads any *TOKEN*/*PASSWORD* name as one).
TOKEN_HEADER = "X-Auth-Token"  # noqa: S105
PROJECT_HEADER = "X-Project-Id"

ENV_TOKEN = "ASM_AUTH_TOKEN"  # noqa: S105
ENV_AK = "HUAWEICLOUD_SDK_AK"
ENV_SK = "HUAWEICLOUD_SDK_SK"
ENV_IAM_USER = "HUAWEICLOUD_IAM_USER"
ENV_IAM_PASSWORD = "HUAWEICLOUD_IAM_PASSWORD"  # noqa: S105
ENV_IAM_DOMAIN = "HUAWEICLOUD_IAM_DOMAIN"
ENV_IAM_ENDPOINT = "IAM_ENDPOINT"

# IAM tokens live 24 h; renewing 5 minutes early keeps a request from carrying a token that
# expires while it is in flight.
DEFAULT_REFRESH_MARGIN_S = 300.0


class MissingCredentialsError(AsmValidationError):
    """The environment holds no complete set of ASM credentials; names the missing variables."""


@runtime_checkable
class Auth(Protocol):
    """Adds authentication to one ASM request."""

    async def headers(self, request: Request) -> dict[str, str]:
        """Headers to add to ``request``.

        Raises:
            AsmError: a credential could not be obtained.
        """
        ...

    async def invalidate(self, project_id: str) -> bool:
        """Drop a cached credential after a 401.

        Returns:
            True if retrying with a fresh credential may succeed.
        """
        ...


class StaticTokenAuth:
    """A fixed IAM token sent as ``X-Auth-Token`` (e.g. from ``ASM_AUTH_TOKEN``)."""

    def __init__(self, token: str) -> None:
        """Keep the token; it never appears in ``repr`` or ``str``.

        Raises:
            AsmValidationError: the token is empty or contains control characters.
        """
        self._token = check_header_value(token, ENV_TOKEN)

    def __repr__(self) -> str:
        return "StaticTokenAuth(token=<hidden>)"

    async def headers(self, request: Request) -> dict[str, str]:
        """``X-Auth-Token`` with the fixed token."""
        return {TOKEN_HEADER: self._token}

    async def invalidate(self, project_id: str) -> bool:
        """A fixed token cannot be renewed: False."""
        return False


class AkSkAuth:
    """AK/SK signing (SDK-HMAC-SHA256); ``X-Project-Id`` is sent and signed with every request."""

    def __init__(self, key: AccessKey, *, now: Callable[[], datetime] | None = None) -> None:
        """Keep the key pair; the SK never appears in ``repr`` or ``str``.

        Args:
            key: The AK/SK pair.
            now: Clock for ``X-Sdk-Date`` (UTC); the system clock by default.
        """
        self._key = key
        self._now = now or (lambda: datetime.now(UTC))

    def __repr__(self) -> str:
        return f"AkSkAuth(ak={self._key.ak[:4]!r}…)"

    async def headers(self, request: Request) -> dict[str, str]:
        """``Host``, ``X-Sdk-Date``, ``Content-Type``, ``X-Project-Id`` and ``Authorization``."""
        # Content-Type is part of what is signed, as the Huawei SDKs do; the client sends the
        # same value.
        to_sign = {"Content-Type": "application/json", PROJECT_HEADER: request.project_id}
        return sign_request(
            request.method, request.url, to_sign, request.body, self._key, self._now()
        )

    async def invalidate(self, project_id: str) -> bool:
        """A signature does not expire between two requests: False."""
        return False


@dataclass(frozen=True)
class _CachedToken:
    value: str
    refresh_at: float  # time.monotonic() after which a new token is fetched

    def __repr__(self) -> str:
        return f"_CachedToken(refresh_at={self.refresh_at})"


def _copy_of_error(exc: AsmError) -> AsmError:
    """A fresh copy of an error, so callers that share one outcome do not share a traceback."""
    if isinstance(exc, AsmStatusError):
        return type(exc)(exc.status, exc.error_code, exc.error_msg, exc.request_id, exc.retry_after)
    return type(exc)(*exc.args)


class IamPasswordAuth:
    """IAM password tokens, fetched per project and cached until shortly before they expire.

    Concurrent requests for one project share one token fetch, and its failure. Until IAM has
    accepted the password once, fetches of different projects go one after another too. After a
    401 of ASM the token of that project is dropped and the client retries once with a fresh one.
    After a 401 of IAM itself (wrong user, password or domain) IAM is not asked again by this
    object: repeated wrong passwords lock an IAM user, so a 401 fails fast and is never retried
    in a loop (docs/asm-api.md, "IAM password tokens").
    """

    def __init__(
        self,
        user: str,
        password: str,
        domain: str,
        iam_endpoint_override: str | None = None,
        *,
        refresh_margin: float = DEFAULT_REFRESH_MARGIN_S,
        request_timeout: float = 30.0,
    ) -> None:
        """Keep the identity; the password never appears in ``repr``, ``str`` or errors.

        Args:
            user: IAM user name.
            password: The user's password.
            domain: Account (domain) name of the user.
            iam_endpoint_override: ``IAM_ENDPOINT``; replaces
                ``https://iam.{region}.myhuaweicloud.com`` and may contain ``{region}``.
            refresh_margin: Seconds before expiry at which a cached token is renewed.
            request_timeout: Seconds the token request may take in total.

        Raises:
            AsmValidationError: user, password or domain is empty.
        """
        if not user or not password or not domain:
            raise AsmValidationError("IAM user, password and domain must all be non-empty")
        self._identity = PasswordIdentity(user, password, domain)
        self._iam_endpoint = iam_endpoint_override or None
        self._refresh_margin = refresh_margin
        self._request_timeout = request_timeout
        self._tokens: dict[str, _CachedToken] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        # project_id -> (time.monotonic() of the failure, the error) of the last failed fetch.
        self._failures: dict[str, tuple[float, AsmError]] = {}
        self._refused: AsmAuthenticationError | None = None
        self._verified = False
        self._first_login_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return (
            f"IamPasswordAuth(user={self._identity.user!r}, domain={self._identity.domain!r}, "
            f"iam_endpoint={self._iam_endpoint!r})"
        )

    def _unexpired_token(self, project_id: str) -> str | None:
        cached = self._tokens.get(project_id)
        if cached is not None and time.monotonic() < cached.refresh_at:
            return cached.value
        return None

    async def headers(self, request: Request) -> dict[str, str]:
        """``X-Auth-Token`` with a token scoped to the request's project, fetched if none is fresh.

        Raises:
            AsmAuthenticationError: IAM refused the user, password or domain (now or earlier).
            AsmStatusError: IAM answered another non-2xx status.
            AsmConnectionError: IAM did not answer.
            AsmError: IAM answered without a token.
        """
        project_id = request.project_id
        token = self._unexpired_token(project_id)
        if token is not None:
            return {TOKEN_HEADER: token}
        waiting_since = time.monotonic()
        async with self._locks.setdefault(project_id, asyncio.Lock()):
            # Whoever held the lock before us may have fetched the token already, or failed to:
            # a fetch that failed while we waited is our outcome too, not a reason to ask again.
            token = self._unexpired_token(project_id)
            if token is not None:
                return {TOKEN_HEADER: token}
            failed = self._failures.get(project_id)
            if failed is not None and failed[0] >= waiting_since:
                raise _copy_of_error(failed[1]) from failed[1]
            if not self._verified:
                # Until IAM has accepted the password once, one project at a time asks: a
                # rollout's first window spans many projects, and a wrong password sent once
                # per project at the same moment is what locks an IAM user.
                async with self._first_login_lock:
                    # Whoever queued here before the first success need not stay in line.
                    if not self._verified:
                        return {TOKEN_HEADER: await self._fetch_and_remember_outcome(request)}
            token = await self._fetch_and_remember_outcome(request)
        return {TOKEN_HEADER: token}

    async def _fetch_and_remember_outcome(self, request: Request) -> str:
        project_id = request.project_id
        if self._refused is not None:
            raise _copy_of_error(self._refused) from self._refused
        try:
            token = await self._fetch(request.transport, project_id, request.region)
        except AsmError as exc:
            self._failures[project_id] = (time.monotonic(), exc)
            if isinstance(exc, AsmAuthenticationError):
                self._refused = exc
            raise
        self._failures.pop(project_id, None)
        self._verified = True
        return token

    async def _fetch(self, transport: Transport, project_id: str, region: str) -> str:
        started = time.monotonic()
        issued = await fetch_token(
            transport,
            self._identity,
            project_id,
            region,
            endpoint_override=self._iam_endpoint,
            timeout_s=self._request_timeout,
        )
        # An unknown lifetime means: use the token for this request only, fetch anew next time.
        refresh_at = started + issued.lifetime_s - self._refresh_margin
        self._tokens[project_id] = _CachedToken(issued.value, refresh_at)
        return issued.value

    async def invalidate(self, project_id: str) -> bool:
        """Forget the token of ``project_id`` (it was refused); a fresh one may succeed: True."""
        self._tokens.pop(project_id, None)
        return True


def _present(environ: Mapping[str, str], *names: str) -> list[str]:
    return [name for name in names if environ.get(name, "").strip()]


def auth_from_env(environ: Mapping[str, str]) -> Auth:
    """The ``Auth`` the environment describes.

    ``ASM_AUTH_TOKEN`` wins; else ``HUAWEICLOUD_SDK_AK`` + ``HUAWEICLOUD_SDK_SK``; else
    ``HUAWEICLOUD_IAM_USER`` + ``HUAWEICLOUD_IAM_PASSWORD`` + ``HUAWEICLOUD_IAM_DOMAIN`` (with
    ``IAM_ENDPOINT`` as an optional override).

    Raises:
        MissingCredentialsError: no set is complete; the message names the missing variables
            (never a value).
    """
    if _present(environ, ENV_TOKEN):
        return StaticTokenAuth(environ[ENV_TOKEN].strip())
    aksk = (ENV_AK, ENV_SK)
    if len(_present(environ, *aksk)) == len(aksk):
        return AkSkAuth(AccessKey(environ[ENV_AK].strip(), environ[ENV_SK].strip()))
    iam = (ENV_IAM_USER, ENV_IAM_PASSWORD, ENV_IAM_DOMAIN)
    if len(_present(environ, *iam)) == len(iam):
        return IamPasswordAuth(
            environ[ENV_IAM_USER].strip(),
            environ[ENV_IAM_PASSWORD],
            environ[ENV_IAM_DOMAIN].strip(),
            environ.get(ENV_IAM_ENDPOINT, "").strip() or None,
        )
    partial = []
    for names in (aksk, iam):
        present = _present(environ, *names)
        if present:
            missing = [name for name in names if name not in present]
            partial.append(f"{', '.join(present)} set but {', '.join(missing)} missing")
    detail = f" ({'; '.join(partial)})" if partial else ""
    raise MissingCredentialsError(
        f"no complete ASM credentials in the environment{detail}: set {ENV_TOKEN}, or "
        f"{ENV_AK} and {ENV_SK}, or {ENV_IAM_USER}, {ENV_IAM_PASSWORD} and {ENV_IAM_DOMAIN}"
    )
