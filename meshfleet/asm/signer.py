"""SDK-HMAC-SHA256 request signing (Huawei AK/SK): sign for the client, verify in the simulator."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, quote, unquote, urlsplit

ALGORITHM = "SDK-HMAC-SHA256"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
DATE_HEADER = "X-Sdk-Date"
CONTENT_HASH_HEADER = "X-Sdk-Content-Sha256"
MAX_CLOCK_SKEW = timedelta(minutes=15)


class SignatureError(Exception):
    """A signature could not be verified; the message never contains key material."""


@dataclass(frozen=True)
class AccessKey:
    """An AK/SK pair. The secret key never appears in ``repr`` or ``str``."""

    ak: str
    sk: str = field(repr=False)

    def __post_init__(self) -> None:
        if not self.ak or not self.sk:
            raise ValueError("both the access key (AK) and the secret key (SK) must be non-empty")

    def __str__(self) -> str:
        return f"AccessKey(ak={self.ak[:4]}…)"


def _encode(value: str) -> str:
    return quote(value, safe="~")


def canonical_uri(path: str) -> str:
    """Each path segment percent-encoded (``safe='~'``), with a trailing ``/`` added if missing."""
    uri = "/".join(_encode(segment) for segment in unquote(path).split("/"))
    return uri if uri.endswith("/") else uri + "/"


def canonical_query(query: Iterable[tuple[str, str]]) -> str:
    """Sorted ``k=v`` pairs, both sides percent-encoded, joined by ``&``."""
    return "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(query))


def signed_header_names(headers: Mapping[str, str]) -> list[str]:
    """Lower-cased sorted names to sign: not ``Authorization``, not names with ``_``."""
    return sorted(
        {name.lower() for name in headers if "_" not in name and name.lower() != "authorization"}
    )


def canonical_request(
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    signed_headers: list[str],
    body: bytes,
) -> str:
    """The canonical request of the Huawei API signing guide."""
    lowered = {name.lower(): str(value).strip() for name, value in headers.items()}
    missing = [name for name in signed_headers if name not in lowered]
    if missing:
        raise SignatureError(f"signed header(s) missing from the request: {', '.join(missing)}")
    header_block = "".join(f"{name}:{lowered[name]}\n" for name in signed_headers)
    payload_hash = lowered.get(CONTENT_HASH_HEADER.lower()) or hashlib.sha256(body).hexdigest()
    return "\n".join(
        [
            method.upper(),
            canonical_uri(path),
            canonical_query(query),
            header_block,
            ";".join(signed_headers),
            payload_hash,
        ]
    )


def string_to_sign(canonical: str, sdk_date: str) -> str:
    """``SDK-HMAC-SHA256\\n{date}\\n{hex(sha256(canonical))}``."""
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    return f"{ALGORITHM}\n{sdk_date}\n{digest}"


def signature(sk: str, to_sign: str) -> str:
    """Hex HMAC-SHA256 of the string to sign under the secret key."""
    return hmac.new(sk.encode(), to_sign.encode(), hashlib.sha256).hexdigest()


def sign_request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    key: AccessKey,
    now: datetime | None = None,
) -> dict[str, str]:
    """Return ``headers`` plus ``X-Sdk-Date``, ``Host`` and ``Authorization`` for this request.

    Args:
        method: HTTP method.
        url: Absolute URL, query included.
        headers: Headers the request will carry; all of them are signed.
        body: The exact body bytes that will be sent.
        key: The AK/SK pair.
        now: Signing time (UTC); defaults to the current time.
    """
    parts = urlsplit(url)
    signed = {k: v for k, v in headers.items() if k.lower() != "authorization"}
    if not any(k.lower() == DATE_HEADER.lower() for k in signed):
        signed[DATE_HEADER] = (now or datetime.now(UTC)).strftime(DATE_FORMAT)
    if not any(k.lower() == "host" for k in signed):
        signed["Host"] = parts.netloc
    sdk_date = next(v for k, v in signed.items() if k.lower() == DATE_HEADER.lower())
    names = signed_header_names(signed)
    query = parse_qsl(parts.query, keep_blank_values=True)
    canonical = canonical_request(method, parts.path or "/", query, signed, names, body)
    sig = signature(key.sk, string_to_sign(canonical, sdk_date))
    signed["Authorization"] = (
        f"{ALGORITHM} Access={key.ak}, SignedHeaders={';'.join(names)}, Signature={sig}"
    )
    return signed


@dataclass(frozen=True)
class ParsedAuthorization:
    """The three fields of an ``SDK-HMAC-SHA256`` Authorization header."""

    access: str
    signed_headers: list[str]
    signature: str


def parse_authorization(value: str) -> ParsedAuthorization:
    """Split ``SDK-HMAC-SHA256 Access=…, SignedHeaders=…, Signature=…`` into its fields."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise SignatureError(f"unsupported signing algorithm {algorithm!r}")
    fields: dict[str, str] = {}
    for item in rest.split(","):
        name, sep, val = item.strip().partition("=")
        if sep:
            fields[name] = val
    try:
        return ParsedAuthorization(
            access=fields["Access"],
            signed_headers=[h for h in fields["SignedHeaders"].split(";") if h],
            signature=fields["Signature"],
        )
    except KeyError as exc:
        raise SignatureError(f"Authorization header lacks {exc.args[0]}") from exc


def verify_request(
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
    secret_for: Mapping[str, str],
    now: datetime | None = None,
) -> str:
    """Check a signed request as the API gateway would; return the access key that signed it.

    Raises:
        SignatureError: unknown AK, bad signature, missing or skewed ``X-Sdk-Date``.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    auth = lowered.get("authorization")
    if not auth:
        raise SignatureError("no Authorization header")
    parsed = parse_authorization(auth)
    sk = secret_for.get(parsed.access)
    if sk is None:
        raise SignatureError("unknown access key")
    sdk_date = lowered.get(DATE_HEADER.lower())
    if not sdk_date:
        raise SignatureError("no X-Sdk-Date header")
    try:
        signed_at = datetime.strptime(sdk_date, DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError as exc:
        raise SignatureError(f"X-Sdk-Date {sdk_date!r} is not {DATE_FORMAT}") from exc
    if abs((now or datetime.now(UTC)) - signed_at) > MAX_CLOCK_SKEW:
        raise SignatureError("X-Sdk-Date is more than 15 minutes off")
    canonical = canonical_request(method, path, query, headers, parsed.signed_headers, body)
    expected = signature(sk, string_to_sign(canonical, sdk_date))
    if not hmac.compare_digest(expected, parsed.signature):
        raise SignatureError("signature does not match")
    return parsed.access
