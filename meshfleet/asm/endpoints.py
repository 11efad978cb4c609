"""Base URLs of ASM and IAM per region, and the ``ASM_ENDPOINT``/``IAM_ENDPOINT`` overrides.

Any region of the right shape gets a URL here; which regions ASM is served in is
``meshfleet.asm.regions``, the list a manifest is held to.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from meshfleet.asm.errors import AsmValidationError
from meshfleet.asm.rules import check_region

# terraform-provider-huaweicloud config/endpoints.go: the eu-west-1xx regions live under .eu.
EU_REGION_RE = re.compile(r"eu-west-1[0-9]{2}")
REGION_PLACEHOLDER = "{region}"


def _excerpt(value: str, limit: int = 40) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "…")


def _domain(region: str) -> str:
    return "myhuaweicloud.eu" if EU_REGION_RE.fullmatch(region) else "myhuaweicloud.com"


def _from_override(override: str, region: str, variable: str) -> str:
    url = override.strip().replace(REGION_PLACEHOLDER, region).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname or parts.query or parts.fragment:
        raise AsmValidationError(
            f"{variable} {_excerpt(override, 80)} is not an http(s) base URL such as "
            "https://asm.{region}.example.com"
        )
    return url


def endpoint_for(region: str, override: str | None = None) -> str:
    """The ASM base URL for a region, without a trailing slash.

    Args:
        region: Region name such as ``ap-southeast-3``; validated before it enters a host name.
        override: The ``ASM_ENDPOINT`` value, if any; replaces the default and may contain
            ``{region}``. An empty string counts as unset.

    Raises:
        AsmValidationError: the region or the override is malformed.
    """
    check_region(region)
    if override:
        return _from_override(override, region, "ASM_ENDPOINT")
    return f"https://asm.{region}.{_domain(region)}"


def iam_endpoint_for(region: str, override: str | None = None) -> str:
    """The IAM base URL for a region, without a trailing slash.

    Args:
        region: Region name; validated before it enters a host name.
        override: The ``IAM_ENDPOINT`` value, if any; may contain ``{region}``.

    Raises:
        AsmValidationError: the region or the override is malformed.
    """
    check_region(region)
    if override:
        return _from_override(override, region, "IAM_ENDPOINT")
    return f"https://iam.{region}.{_domain(region)}"
