"""``MESHFLEET_VERIFY_ALLOWED_URLS``: which webhook URLs the verify activity may post to.

Matched as URLs, not as strings: scheme, host (case-insensitive), port (defaults made explicit)
and a path that continues the prefix's at a ``/``.
"""

from __future__ import annotations

import pytest

from meshfleet.webhook_allowlist import (
    ALLOWED_URLS_ENV,
    UrlPrefix,
    parse_allowed_urls,
    refusal,
)


@pytest.mark.parametrize(
    ("prefix", "url", "allowed"),
    [
        # The same URL, and what lies below it.
        ("https://checks.example.com/verify", "https://checks.example.com/verify", True),
        ("https://checks.example.com/verify", "https://checks.example.com/verify/", True),
        ("https://checks.example.com/verify", "https://checks.example.com/verify/canary", True),
        ("https://checks.example.com/verify/", "https://checks.example.com/verify", True),
        ("https://checks.example.com/verify/", "https://checks.example.com/verify/x", True),
        # A query or fragment of the URL is no part of where it goes.
        ("https://checks.example.com/verify", "https://checks.example.com/verify?sig=1", True),
        # The path at a segment boundary only.
        ("https://checks.example.com/verify", "https://checks.example.com/verify-evil", False),
        ("https://checks.example.com/verify", "https://checks.example.com/verifyx/y", False),
        ("https://checks.example.com/verify", "https://checks.example.com/", False),
        ("https://checks.example.com/verify", "https://checks.example.com", False),
        ("https://checks.example.com/a/b", "https://checks.example.com/a", False),
        # Paths are case-sensitive; decoded before they are compared.
        ("https://checks.example.com/verify", "https://checks.example.com/Verify", False),
        ("https://checks.example.com/verify", "https://checks.example.com/ver%69fy/x", True),
        # Dot segments and encoded slashes could leave the prefix once resolved.
        ("https://checks.example.com/verify", "https://checks.example.com/verify/../admin", False),
        ("https://checks.example.com/verify", "https://checks.example.com/verify/%2e%2e/x", False),
        ("https://checks.example.com/verify", "https://checks.example.com/verify%2F..%2Fx", False),
        ("https://checks.example.com/verify", "https://checks.example.com/verify/./x", False),
        # The host: exactly, case-insensitive; never a longer name or a subdomain.
        ("https://checks.example.com", "https://checks.example.com.evil.org/x", False),
        ("https://checks.example.com", "https://evil.checks.example.com/x", False),
        ("https://checks.example.com", "https://checks.example.co/x", False),
        ("https://checks.example.com", "https://CHECKS.Example.COM/x", True),
        ("https://Checks.Example.com/verify", "https://checks.example.com/verify", True),
        ("https://checks.example.com", "https://checks.example.com./x", False),
        # A user or password in the URL is refused, whatever the host after it.
        ("https://checks.example.com", "https://checks.example.com@evil.org/x", False),
        ("https://checks.example.com", "https://user:pw@checks.example.com/x", False),
        ("https://checks.example.com", "https://checks.example.com\\@evil.org/x", False),
        # The port: default ports made explicit, any other must be the same.
        ("https://checks.example.com", "https://checks.example.com:443/x", True),
        ("https://checks.example.com:443", "https://checks.example.com/x", True),
        ("https://checks.example.com", "https://checks.example.com:8443/x", False),
        ("https://checks.example.com:8443/v", "https://checks.example.com:8443/v/x", True),
        ("http://127.0.0.1", "http://127.0.0.1:80/x", True),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8081/x", False),
        # The scheme.
        ("https://checks.example.com", "http://checks.example.com/x", False),
        ("http://127.0.0.1:8080", "https://127.0.0.1:8080/x", False),
        # Loopback over plain http; an address has one spelling.
        ("http://localhost:8080/hook", "http://LOCALHOST:8080/hook", True),
        ("http://[::1]:8080/hook", "http://[0:0:0:0:0:0:0:1]:8080/hook/x", True),
        ("http://127.0.0.1:8080/", "http://127.0.0.2:8080/", False),
        # Whitespace and control characters some parsers drop.
        ("https://checks.example.com", "https://checks.example.com/x y", False),
        ("https://checks.example.com", "https://checks.exa\tmple.com/x", False),
        # Not an http(s) URL at all.
        ("https://checks.example.com", "ftp://checks.example.com/x", False),
        ("https://checks.example.com", "//checks.example.com/x", False),
        ("https://checks.example.com", "https://checks.example.com:99999/x", False),
    ],
)
def test_a_url_is_allowed_only_under_a_prefix(prefix: str, url: str, allowed: bool) -> None:
    prefixes = parse_allowed_urls(prefix)
    assert prefixes[0].covers(url) is allowed
    reason = refusal(url, prefixes)
    assert (reason is None) is allowed
    if reason is not None:
        assert reason.endswith("nothing was sent")


def test_any_of_several_prefixes_allows() -> None:
    prefixes = parse_allowed_urls(" https://a.example.com/verify , http://127.0.0.1:9000 ")
    assert [p.text for p in prefixes] == ["https://a.example.com/verify", "http://127.0.0.1:9000"]
    assert refusal("http://127.0.0.1:9000/anything", prefixes) is None
    assert refusal("https://a.example.com/verify/w1", prefixes) is None
    assert refusal("https://b.example.com/verify", prefixes) == (
        f"https://b.example.com/verify is not under {ALLOWED_URLS_ENV} "
        "(https://a.example.com/verify, http://127.0.0.1:9000): nothing was sent"
    )


def test_with_the_setting_unset_no_webhook_is_allowed_and_the_reason_says_how() -> None:
    for unset in ["", "  "]:
        assert parse_allowed_urls(unset) == ()
    reason = refusal("https://checks.example.com/verify?sig=s3cr3t", ())
    assert reason is not None
    assert f"{ALLOWED_URLS_ENV} is not set" in reason
    assert f"{ALLOWED_URLS_ENV}=https://" in reason  # how to allow one
    assert "s3cr3t" not in reason  # the query may be a signature: not repeated


def test_plain_http_never_reaches_a_host_that_is_not_loopback() -> None:
    # Refused as a prefix (at settings time), and as a URL even if a prefix were built for it.
    with pytest.raises(ValueError, match="plain http is allowed only to loopback"):
        UrlPrefix.parse("http://checks.example.com/verify")
    forged = UrlPrefix("http://checks.example.com", "http", "checks.example.com", 80, ())
    reason = refusal("http://checks.example.com/verify", [forged])
    assert reason is not None and "plain http is allowed only to loopback" in reason
    for loopback in [
        "http://127.0.0.1:1/",
        "http://127.9.9.9/",
        "http://[::1]/",
        "http://localhost/",
    ]:
        assert UrlPrefix.parse(loopback).scheme == "http"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("checks.example.com/verify", "'checks.example.com/verify' is refused: it is not an"),
        ("ftp://checks.example.com", "'ftp://checks.example.com' is refused: it is not an"),
        ("https://:8443/verify", "it names no host"),
        ("https://checks.example.com/verify?sig=1", "a prefix has no query or fragment"),
        ("https://checks.example.com/verify#x", "a prefix has no query or fragment"),
        ("https://checks.example.com:http/", "its host or port does not parse"),
        ("https://checks.example.com/a/../b", "'.' or '..' segment"),
        ("http://10.0.0.7:8080/verify", "'http://10.0.0.7:8080/verify' is refused: plain http"),
        ("https://a.example.com,,https://b.example.com", "entry 2 of 3 is empty"),
        ("https://a.example.com,", "entry 2 of 2 is empty"),
    ],
)
def test_a_malformed_prefix_is_refused_naming_the_entry(value: str, problem: str) -> None:
    with pytest.raises(ValueError, match="each entry is an absolute https URL prefix") as err:
        parse_allowed_urls(value)
    assert problem in str(err.value)


def test_a_prefix_with_a_user_or_password_is_refused_without_repeating_them() -> None:
    with pytest.raises(ValueError) as err:
        parse_allowed_urls("https://a.example.com, https://bot:hunter2@checks.example.com/v")
    message = str(err.value)
    assert "'https://…@checks.example.com/v' is refused: it carries a user or password" in message
    assert "hunter2" not in message and "bot" not in message
