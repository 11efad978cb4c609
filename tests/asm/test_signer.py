"""AK/SK signing: the published vector, verify round trips, and Huawei's own signer as oracle."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import pytest
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer

from meshfleet.asm.signer import (
    AccessKey,
    SignatureError,
    canonical_query,
    canonical_request,
    canonical_uri,
    parse_authorization,
    sign_request,
    signed_header_names,
    verify_request,
)

# The worked example of Huawei's API request signing guide (docs/asm-api.md, "AK/SK signing").
VECTOR_AK = "QTWAOYTTINDUT2QVKYUC"
VECTOR_SK = "MFyfvK41ba2giqM7Uio6PznpdUKGpownRZlmVmHc"
VECTOR_HEADERS = {
    "content-type": "application/json",
    "host": "service.region.example.com",
    "x-sdk-date": "20191115T033655Z",
}
VECTOR_PATH = "/v1/77b6a44cba5143ab91d13ab9a8ff44fd/vpcs"
VECTOR_QUERY = [("limit", "2"), ("marker", "13551d6b-755d-4757-b956-536f674975c0")]
VECTOR_CANONICAL_SHA256 = "b25362e603ee30f4f25e7858e8a7160fd36e803bb2dfe206278659d71a9bcd7a"
VECTOR_SIGNATURE = "7be6668032f70418fcc22abc52071e57aff61b84a1d2381bb430d6870f4f6ebe"

KEY = AccessKey("AKTESTSIGNER0000001", "sk-test-signer-secret-value")
NOW = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
PROJECT = "0123456789abcdef0123456789abcdef"
URL = f"https://asm.ap-southeast-3.myhuaweicloud.com/v1/{PROJECT}/meshes"
BODY = b'{"apiVersion":"v1","kind":"Mesh","metadata":{"name":"mesh-a"}}'


def _verify(
    signed: dict[str, str],
    *,
    method: str = "POST",
    url: str = URL,
    body: bytes = BODY,
    now: datetime = NOW,
) -> str:
    parts = urlsplit(url)
    return verify_request(
        method,
        parts.path,
        parse_qsl(parts.query, keep_blank_values=True),
        signed,
        body,
        {KEY.ak: KEY.sk},
        now,
    )


def _signed(headers: dict[str, str] | None = None, body: bytes = BODY) -> dict[str, str]:
    base = {"Content-Type": "application/json", "X-Project-Id": PROJECT}
    return sign_request("POST", URL, base | (headers or {}), body, KEY, NOW)


# --- the published vector ------------------------------------------------------------------


def test_published_vector_canonical_request_hash() -> None:
    names = signed_header_names(VECTOR_HEADERS)
    canonical = canonical_request("GET", VECTOR_PATH, VECTOR_QUERY, VECTOR_HEADERS, names, b"")
    assert hashlib.sha256(canonical.encode()).hexdigest() == VECTOR_CANONICAL_SHA256


def test_published_vector_signature() -> None:
    url = f"https://service.region.example.com{VECTOR_PATH}?{urlencode(VECTOR_QUERY)}"
    signed = sign_request("GET", url, VECTOR_HEADERS, b"", AccessKey(VECTOR_AK, VECTOR_SK))
    parsed = parse_authorization(signed["Authorization"])
    assert parsed.access == VECTOR_AK
    assert parsed.signed_headers == ["content-type", "host", "x-sdk-date"]
    assert parsed.signature == VECTOR_SIGNATURE


# --- round trips and tampering -------------------------------------------------------------


def test_sign_then_verify_returns_the_access_key() -> None:
    signed = _signed()
    assert signed["X-Sdk-Date"] == "20261125T120000Z"
    assert signed["Host"] == "asm.ap-southeast-3.myhuaweicloud.com"
    assert parse_authorization(signed["Authorization"]).signed_headers == [
        "content-type",
        "host",
        "x-project-id",
        "x-sdk-date",
    ]
    assert _verify(signed) == KEY.ak


def test_sign_does_not_modify_the_callers_headers() -> None:
    headers = {"Content-Type": "application/json"}
    sign_request("GET", URL, headers, b"", KEY, NOW)
    assert headers == {"Content-Type": "application/json"}


def test_existing_date_and_host_are_kept() -> None:
    signed = sign_request(
        "GET", URL, {"x-sdk-date": "20261125T115959Z", "host": "gw.example"}, b"", KEY, NOW
    )
    assert signed["x-sdk-date"] == "20261125T115959Z"
    assert signed["host"] == "gw.example"
    assert "X-Sdk-Date" not in signed
    assert "Host" not in signed


def test_tampered_body_fails() -> None:
    with pytest.raises(SignatureError, match="does not match"):
        _verify(_signed(), body=BODY.replace(b"mesh-a", b"mesh-b"))


def test_tampered_path_fails() -> None:
    with pytest.raises(SignatureError, match="does not match"):
        _verify(_signed(), url=URL.replace(PROJECT, "f" * 32))


def test_tampered_method_fails() -> None:
    with pytest.raises(SignatureError, match="does not match"):
        _verify(_signed(), method="DELETE")


def test_tampered_signed_header_fails() -> None:
    signed = _signed()
    signed["X-Project-Id"] = "f" * 32
    with pytest.raises(SignatureError, match="does not match"):
        _verify(signed)


def test_removed_signed_header_fails() -> None:
    signed = _signed()
    del signed["X-Project-Id"]
    with pytest.raises(SignatureError, match="missing"):
        _verify(signed)


def test_added_unsigned_header_is_ignored() -> None:
    signed = _signed()
    signed["User-Agent"] = "added-by-the-http-library"
    assert _verify(signed) == KEY.ak


def test_wrong_secret_or_unknown_access_key_fails() -> None:
    signed = _signed()
    parts = urlsplit(URL)
    with pytest.raises(SignatureError, match="does not match") as wrong:
        verify_request("POST", parts.path, [], signed, BODY, {KEY.ak: "another-secret"}, NOW)
    with pytest.raises(SignatureError, match="unknown access key") as unknown:
        verify_request("POST", parts.path, [], signed, BODY, {"OTHER": KEY.sk}, NOW)
    for exc in (wrong.value, unknown.value):
        assert KEY.sk not in str(exc)
        assert "another-secret" not in str(exc)


@pytest.mark.parametrize(
    ("offset", "ok"),
    [
        (timedelta(minutes=14, seconds=59), True),
        (timedelta(minutes=-14, seconds=-59), True),
        (timedelta(minutes=15, seconds=1), False),
        (timedelta(minutes=-15, seconds=-1), False),
        (timedelta(hours=24), False),
    ],
)
def test_date_skew_over_15_minutes_fails(offset: timedelta, ok: bool) -> None:
    signed = _signed()
    if ok:
        assert _verify(signed, now=NOW + offset) == KEY.ak
    else:
        with pytest.raises(SignatureError, match="15 minutes"):
            _verify(signed, now=NOW + offset)


def test_missing_or_malformed_date_fails() -> None:
    signed = _signed()
    del signed["X-Sdk-Date"]
    with pytest.raises(SignatureError, match="X-Sdk-Date"):
        _verify(signed)
    with pytest.raises(SignatureError, match="is not"):
        _verify(_signed({"X-Sdk-Date": "2026-11-25T12:00:00Z"}))


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "AWS4-HMAC-SHA256 Credential=x, SignedHeaders=host, Signature=00",
        "SDK-HMAC-SHA256 Access=x, Signature=00",
    ],
)
def test_malformed_authorization_fails(authorization: str) -> None:
    signed = _signed()
    signed["Authorization"] = authorization
    with pytest.raises(SignatureError):
        _verify(signed)


def test_header_names_with_underscore_are_not_signed() -> None:
    signed = _signed({"X_Trace_Id": "one"})
    assert "x_trace_id" not in parse_authorization(signed["Authorization"]).signed_headers
    signed["X_Trace_Id"] = "changed in flight"
    assert _verify(signed) == KEY.ak


def test_header_values_are_trimmed_and_names_case_folded() -> None:
    a = sign_request("GET", URL, {"X-Project-Id": f"  {PROJECT} "}, b"", KEY, NOW)
    b = sign_request("GET", URL, {"x-project-id": PROJECT}, b"", KEY, NOW)
    assert a["Authorization"] == b["Authorization"]


# --- canonical forms -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "canonical"),
    [
        ("/v1/p/meshes", "/v1/p/meshes/"),
        ("/v1/p/meshes/", "/v1/p/meshes/"),
        ("/", "/"),
        ("/a b/c~d", "/a%20b/c~d/"),
        ("/a%20b", "/a%20b/"),
        ("/caf\u00e9", "/caf%C3%A9/"),
    ],
)
def test_canonical_uri(path: str, canonical: str) -> None:
    assert canonical_uri(path) == canonical


def test_trailing_slash_is_canonical_only() -> None:
    # /meshes and /meshes/ share one canonical URI, so they share one signature.
    without = sign_request("GET", URL, {}, b"", KEY, NOW)
    with_slash = sign_request("GET", URL + "/", {}, b"", KEY, NOW)
    assert without["Authorization"] == with_slash["Authorization"]


@pytest.mark.parametrize(
    ("query", "canonical"),
    [
        ([], ""),
        ([("b", "2"), ("a", "1")], "a=1&b=2"),
        ([("a", "2"), ("a", "1")], "a=1&a=2"),
        ([("k", "x y")], "k=x%20y"),
        ([("k", "a/b+c~d")], "k=a%2Fb%2Bc~d"),
        ([("k", "")], "k="),
        ([("\u00fc", "\u00e9")], "%C3%BC=%C3%A9"),
    ],
)
def test_canonical_query(query: list[tuple[str, str]], canonical: str) -> None:
    assert canonical_query(query) == canonical


def test_query_order_does_not_change_the_signature() -> None:
    first = sign_request("GET", URL + "?b=2&a=1", {}, b"", KEY, NOW)
    second = sign_request("GET", URL + "?a=1&b=2", {}, b"", KEY, NOW)
    assert first["Authorization"] == second["Authorization"]


def test_access_key_hides_the_secret() -> None:
    for text in (repr(KEY), str(KEY)):
        assert KEY.sk not in text
    with pytest.raises(ValueError, match="non-empty"):
        AccessKey("ak", "")


# --- huaweicloudsdkcore's Signer as an independent oracle ----------------------------------

ORACLE_CASES: list[tuple[str, str, list[tuple[str, str]], dict[str, str], bytes]] = [
    ("GET", f"/v1/{PROJECT}/meshes", [], {}, b""),
    ("POST", f"/v1/{PROJECT}/meshes", [], {"X-Project-Id": PROJECT}, BODY),
    ("DELETE", f"/v1/{PROJECT}/meshes/a1efdc3e-0000-4000-8000-94bef433347e", [], {}, b""),
    ("GET", VECTOR_PATH, VECTOR_QUERY, {}, b""),
    ("GET", "/v1/p/x", [("z", "1"), ("a", "x y/+~"), ("m", "\u00fc")], {}, b""),
    ("PUT", "/v1/p/meshes/", [], {"X-Custom": "  spaced  ", "X_Skipped": "1"}, b"{}"),
    ("POST", "/v1/p/a%20b/c", [], {}, '{"name":"caf\u00e9"}'.encode()),
]


@pytest.mark.parametrize(("method", "path", "query", "extra", "body"), ORACLE_CASES)
def test_matches_huaweicloudsdkcore_signer(
    method: str,
    path: str,
    query: list[tuple[str, str]],
    extra: dict[str, str],
    body: bytes,
) -> None:
    host = "asm.ap-southeast-3.myhuaweicloud.com"
    date = "20261125T120000Z"
    headers = {"Content-Type": "application/json", "X-Sdk-Date": date} | extra
    request = SdkRequest(
        method=method,
        schema="https",
        host=host,
        resource_path=path,
        query_params=list(query),
        header_params=dict(headers),
        body=body,
    )
    theirs = Signer(SimpleNamespace(ak=KEY.ak, sk=KEY.sk)).sign(request)
    url = f"https://{host}{path}"
    if query:
        url += "?" + urlencode(query, quote_via=quote, safe="~")
    ours = sign_request(method, url, headers, body, KEY)
    assert ours["Authorization"] == theirs.header_params["Authorization"]
