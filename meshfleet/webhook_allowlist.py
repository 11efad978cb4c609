"""Which verify webhooks a worker may post to: the URL prefixes of MESHFLEET_VERIFY_ALLOWED_URLS.

A manifest names its webhook, and whoever writes a manifest could name a host of their own; the
worker's bearer token goes only where the worker's operator allowed. A URL is under a prefix
when its scheme, host (case-insensitive) and port (80 and 443 when not written) are the prefix's
and its path continues the prefix's path at a ``/``: ``https://h/verify`` covers
``https://h/verify`` and ``https://h/verify/canary``, never ``https://h/verify-evil`` nor
``https://h.evil.org/verify``. Plain http only ever reaches loopback.

No Temporal and no HTTP library here: settings parse the prefixes, the verify activity asks.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

ALLOWED_URLS_ENV = "MESHFLEET_VERIFY_ALLOWED_URLS"
EXAMPLE_PREFIX = "https://checks.example.com/verify"

_DEFAULT_PORTS = {"http": 80, "https": 443}
_LOOPBACK_NAMES = frozenset({"localhost"})


def is_loopback(host: str) -> bool:
    """Whether ``host`` (as ``urlsplit`` gives it: lower-case, no brackets) is this machine."""
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _no_userinfo(url: str) -> str:
    # A user or password is never repeated anywhere, not even in the message refusing it.
    try:
        parts = urlsplit(url)
    except ValueError:
        return "a URL that does not parse"
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc="…@" + parts.netloc.rpartition("@")[2]).geturl()


def shown(url: str) -> str:
    """``url`` for a halt reason: without a user or password, query (it may carry a signature)
    or fragment."""
    try:
        return urlsplit(_no_userinfo(url))._replace(query="", fragment="").geturl()
    except ValueError:
        return "a URL that does not parse"


def without_userinfo(value: str) -> str:
    """A comma-separated list of URLs with every user and password taken out (``…@``)."""
    return ",".join(_no_userinfo(entry) if "@" in entry else entry for entry in value.split(","))


@dataclass(frozen=True)
class _Place:
    """What two URLs must share: scheme, host, port, and the path's segments."""

    scheme: str
    host: str
    port: int
    segments: tuple[str, ...]


def _segments(path: str) -> tuple[str, ...]:
    # Compared decoded, so /ver%69fy is /verify; a dot segment or an encoded slash would let a
    # path that starts like the prefix resolve (at the client or the server) outside it.
    decoded = tuple(unquote(segment) for segment in path.split("/")[1:])
    if any(s in {".", ".."} or "/" in s or "\\" in s for s in decoded):
        raise ValueError("its path has a '.' or '..' segment or an encoded slash")
    return decoded


def _place(url: str) -> _Place:
    """The parts of an absolute http(s) URL that decide where it goes.

    Raises:
        ValueError: it is not one the worker could send a token to; the message says why,
            without the URL.
    """
    # urlsplit drops tabs and newlines and other parsers read a backslash as a slash: refused,
    # so the URL checked is the URL sent.
    if any(c.isspace() or not c.isprintable() or c == "\\" for c in url):
        raise ValueError("it contains whitespace, a control character or a backslash")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError("its host or port does not parse") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.netloc:
        raise ValueError("it is not an absolute http(s) URL")
    if "@" in parts.netloc:
        raise ValueError("it carries a user or password")
    host = parts.hostname
    if not host:
        raise ValueError("it names no host")
    with contextlib.suppress(ValueError):  # a name, not an address
        host = str(ipaddress.ip_address(host))  # one spelling per address
    if scheme == "http" and not is_loopback(host):
        raise ValueError(
            "plain http is allowed only to loopback (127.0.0.0/8, ::1, localhost), since the "
            "token would cross the network readable: use https"
        )
    return _Place(scheme, host, port or _DEFAULT_PORTS[scheme], _segments(parts.path))


@dataclass(frozen=True)
class UrlPrefix:
    """One allowed prefix: as written (for messages) and as compared."""

    text: str
    scheme: str
    host: str
    port: int
    segments: tuple[str, ...]

    @classmethod
    def parse(cls, text: str) -> UrlPrefix:
        """A prefix from one entry of the setting.

        Raises:
            ValueError: the entry is not an absolute http(s) URL, carries a user, password,
                query or fragment, or is plain http to a host that is not loopback.
        """
        if "?" in text or "#" in text:
            # A query or fragment is not part of where a request goes: as a prefix it would
            # suggest a match rule that does not exist.
            raise ValueError("a prefix has no query or fragment")
        place = _place(text)
        segments = place.segments
        # "https://h/verify/" and "https://h/verify" cover the same URLs, "https://h/" all of h.
        while segments and not segments[-1]:
            segments = segments[:-1]
        return cls(text, place.scheme, place.host, place.port, segments)

    def covers(self, url: str) -> bool:
        """Whether ``url`` is under this prefix (False for a URL no prefix could cover)."""
        try:
            place = _place(url)
        except ValueError:
            return False
        return (place.scheme, place.host, place.port) == (self.scheme, self.host, self.port) and (
            place.segments[: len(self.segments)] == self.segments
        )


def parse_allowed_urls(value: str) -> tuple[UrlPrefix, ...]:
    """The prefixes of the setting's value: comma-separated, spaces around each ignored.

    An empty or blank value allows nothing.

    Raises:
        ValueError: one message naming every bad entry and why (an empty entry too).
    """
    if not value.strip():
        return ()
    entries = [entry.strip() for entry in value.split(",")]
    prefixes: list[UrlPrefix] = []
    problems: list[str] = []
    for number, entry in enumerate(entries, start=1):
        if not entry:
            problems.append(f"entry {number} of {len(entries)} is empty")
            continue
        try:
            prefixes.append(UrlPrefix.parse(entry))
        except ValueError as exc:
            problems.append(f"entry {_no_userinfo(entry)!r} is refused: {exc}")
    if problems:
        raise ValueError(
            f"{'; '.join(problems)} (each entry is an absolute https URL prefix such as "
            f"{EXAMPLE_PREFIX}, or http to loopback)"
        )
    return tuple(prefixes)


def refusal(url: str, allowed: Sequence[UrlPrefix]) -> str | None:
    """Why the worker must not post to ``url``, or None when a prefix of ``allowed`` covers it.

    The reason names the setting and what it holds, and ends saying nothing was sent: it becomes
    the rollout's halt reason.
    """
    try:
        _place(url)
    except ValueError as exc:
        return f"{shown(url)} cannot be allowed: {exc}; nothing was sent"
    if not allowed:
        return (
            f"{shown(url)} is not allowed: {ALLOWED_URLS_ENV} is not set on the worker, so it "
            f"posts to no webhook; set it to the URL prefixes it may post to (e.g. "
            f"{ALLOWED_URLS_ENV}={EXAMPLE_PREFIX}): nothing was sent"
        )
    if any(prefix.covers(url) for prefix in allowed):
        return None
    listed = ", ".join(prefix.text for prefix in allowed)
    return f"{shown(url)} is not under {ALLOWED_URLS_ENV} ({listed}): nothing was sent"
