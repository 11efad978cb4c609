"""The verify webhook: POST a wave's meshes to the operator's smoke test and read its verdict.

ASM's ``Running`` says the control plane was installed; whether sidecars are injected and the
canary's workloads answer is something only the operator's own check knows. It gets the wave as
JSON; a 2xx answer passes, anything else fails the wave. A hook that gives no answer (refused,
timed out) or a 5xx/429 is asked again a few times, since a smoke test that blinked should not
halt a fleet; a 4xx is its considered answer and is taken at once. Only a URL under the worker's
``MESHFLEET_VERIFY_ALLOWED_URLS`` is posted to (``meshfleet/webhook_allowlist.py``): any other
gets no request at all, since the manifest that names it may not be the token's to have.

No Temporal here: the activity that calls it records the verdict.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

from meshfleet.logs import REDACTED
from meshfleet.webhook_allowlist import UrlPrefix, refusal

EXCERPT_CHARS = 300
"""How much of the hook's body a verdict keeps: enough for a reason, not a page of HTML."""
READ_BYTES = 4096

ATTEMPTS = 3
BACKOFF_S = (1.0, 3.0)
"""Seconds before the second and the third attempt."""
TIMEOUT_S = 30.0
"""One attempt's limit, connection and answer together."""


@dataclass(frozen=True)
class HookAnswer:
    """What the hook said: ``status`` None when it never answered (``excerpt`` says why).

    ``sent`` is False when nothing was sent: the URL is not an allowed one.
    """

    status: int | None
    excerpt: str
    sent: bool = True

    @property
    def passed(self) -> bool:
        """A 2xx answer."""
        return self.status is not None and 200 <= self.status < 300


def _retryable(answer: HookAnswer) -> bool:
    return answer.status is None or answer.status == 429 or answer.status >= 500


def excerpt(text: str) -> str:
    """The start of a body on one line, at most ``EXCERPT_CHARS`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= EXCERPT_CHARS else flat[: EXCERPT_CHARS - 1] + "…"


class VerifyHook:
    """Posts to verify webhooks under ``allowed``, with a bearer token if one is set.

    The token is never part of the URL, the payload, an answer or ``repr``. Without ``allowed``
    prefixes nothing is ever posted.
    """

    def __init__(
        self,
        token: str | None = None,
        *,
        allowed: Sequence[UrlPrefix] = (),
        timeout_s: float = TIMEOUT_S,
        backoff_s: tuple[float, ...] = BACKOFF_S,
    ) -> None:
        self._token = token or None
        self._allowed = tuple(allowed)
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._backoff = backoff_s

    def __repr__(self) -> str:
        allowed = ", ".join(prefix.text for prefix in self._allowed)
        return f"VerifyHook(token={'set' if self._token else 'unset'}, allowed=[{allowed}])"

    def refusal(self, url: str) -> str | None:
        """Why ``url`` gets nothing from this hook, or None when it is allowed."""
        return refusal(url, self._allowed)

    def _headers(self) -> Mapping[str, str]:
        headers = {"Content-Type": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    async def _post_once(self, url: str, payload: Mapping[str, Any]) -> HookAnswer:
        try:
            async with (
                aiohttp.ClientSession(timeout=self._timeout) as session,
                session.post(
                    url, json=payload, headers=self._headers(), allow_redirects=False
                ) as response,
            ):
                # Enough for an excerpt: a hook that answers with a page is not read whole.
                body = (await response.content.read(READ_BYTES)).decode(errors="replace")
                return HookAnswer(response.status, self._excerpt(body))
        except TimeoutError:
            return HookAnswer(None, f"no answer within {self._timeout.total:g} s")
        except aiohttp.ClientError as exc:
            return HookAnswer(None, self._excerpt(f"{type(exc).__name__}: {exc}"))

    def _excerpt(self, text: str) -> str:
        # The excerpt becomes the rollout's halt reason, in its history: a hook that echoes the
        # request ("invalid token Bearer ...") must not carry the token there.
        if self._token:
            text = text.replace(self._token, REDACTED)
        return excerpt(text)

    async def post(self, url: str, payload: Mapping[str, Any]) -> HookAnswer:
        """POST ``payload`` as JSON; the last answer after at most ``ATTEMPTS`` attempts.

        A URL that is not allowed gets no request: the answer then says why, unsent.
        """
        refused = self.refusal(url)
        if refused is not None:
            return HookAnswer(None, refused, sent=False)
        answer = await self._post_once(url, payload)
        for delay in self._backoff[: ATTEMPTS - 1]:
            if not _retryable(answer):
                break
            await asyncio.sleep(delay)
            answer = await self._post_once(url, payload)
        return answer
