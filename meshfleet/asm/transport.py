"""One HTTP exchange with a Huawei Cloud endpoint, for ASM calls and IAM token requests alike.

Everything both kinds of request must get right lives here once: the URL goes out exactly as
built, redirects are not followed, one exchange has a time limit, a missing answer becomes
``AsmConnectionError`` and an error answer becomes its ``AsmStatusError`` subclass.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import aiohttp
from yarl import URL

from meshfleet.asm.errors import AsmConnectionError, AsmValidationError, error_from_response


def check_header_value(value: str, what: str) -> str:
    """Return ``value`` if it may travel in a header.

    A CR/LF in a credential would let it add headers of its own; the message names only the
    field, never the value.

    Raises:
        AsmValidationError: the value is empty or holds a control character.
    """
    if not value or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise AsmValidationError(f"{what} must be non-empty and free of control characters")
    return value


@dataclass(frozen=True)
class Response:
    """A 2xx answer: status, headers and the whole body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class Transport:
    """Sends requests over one aiohttp session, opened at the first request unless given."""

    def __init__(
        self, session: aiohttp.ClientSession | None = None, *, timeout: float = 30.0
    ) -> None:
        """Set up; nothing is opened yet.

        Args:
            session: A session to use; the transport then never closes it.
            timeout: Seconds one exchange may take in total, unless a request says otherwise.
        """
        self._session = session
        self._owns_session = False
        self._timeout = timeout

    async def send(
        self,
        method: str,
        url: str,
        *,
        label: str,
        headers: Mapping[str, str],
        body: bytes | None = None,
        timeout_s: float | None = None,
    ) -> Response:
        """Send one request and read the whole answer.

        Args:
            method: HTTP method.
            url: Absolute URL, built only from validated parts; sent without re-quoting.
            label: What the request is, for error messages (``GET /v1/.../meshes``).
            headers: Every header to send, authentication included.
            body: Exact bytes to send (and that were signed), if any.
            timeout_s: Seconds this exchange may take, instead of the transport's default.

        Raises:
            AsmConnectionError: no HTTP answer (refused, reset, DNS, timeout).
            AsmStatusError: a non-2xx answer, as its per-status subclass.
        """
        if self._session is None:
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        seconds = self._timeout if timeout_s is None else timeout_s
        try:
            async with self._session.request(
                method,
                # encoded=True: the path is already safe, and the bytes signed must be the bytes
                # sent, so yarl must not re-quote anything.
                URL(url, encoded=True),
                data=body,
                headers=dict(headers),
                timeout=aiohttp.ClientTimeout(total=seconds),
                # A redirect would carry the token, the signature or a password to another host.
                allow_redirects=False,
            ) as response:
                raw = await response.read()
                status = response.status
                response_headers = response.headers
                reason = response.reason
        except TimeoutError as exc:
            raise AsmConnectionError(f"{label}: no answer within {seconds:g} s") from exc
        except aiohttp.ClientError as exc:
            raise AsmConnectionError(f"{label}: {type(exc).__name__}: {exc}") from exc
        if not 200 <= status < 300:
            raise error_from_response(status, response_headers, raw, reason)
        return Response(status, response_headers, raw)

    async def close(self) -> None:
        """Close the session if this transport opened it (a caller's session stays open)."""
        if self._session is not None and self._owns_session:
            await self._session.close()
            self._session = None
            self._owns_session = False


@dataclass(frozen=True)
class Request:
    """One ASM request as authentication sees it, before it is sent.

    Attributes:
        method: HTTP method.
        url: Absolute URL.
        project_id: The validated project the request acts on (it scopes an IAM token).
        region: Region of the project (it picks the IAM endpoint).
        transport: What the request goes out on; a credential that must be fetched first (an
            IAM token) is fetched through it too.
        body: The exact body bytes that will be sent (empty for GET and DELETE).
    """

    method: str
    url: str
    project_id: str
    region: str
    transport: Transport = field(repr=False, compare=False)
    body: bytes = b""
