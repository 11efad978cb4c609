"""The regions Huawei Cloud serves ASM in, each id with its name: the list a manifest is held to.

Where the list comes from (read on 2026-12-06):

- Huawei's own SDKs for the ASM v1 API (``huaweicloud-sdk-python-v3``
  ``huaweicloudsdkasm/v1/region/asm_region.py``, and ``AsmRegion`` of the Java and Go SDKs)
  predefine one region: ``cn-north-4``.
- The ASM API reference (support.huaweicloud.com/intl/en-us/api-asm/) and Huawei Cloud's
  "Regions and Endpoints" page (developer.huaweicloud.com/intl/en-us/endpoint) were available
  only without a table of ASM's regions.
- terraform-provider-huaweicloud (commit a0345b8, 2026-08-21) builds ``huaweicloud_asm_mesh``'s
  endpoint as ``https://asm.{region}.myhuaweicloud.com`` (``.eu`` for ``eu-west-1xx``) for any
  region and keeps no list of its own.
- A mesh joins CCE clusters, and the SDK's CCE regions (``huaweicloudsdkcce/v3/region/
  cce_region.py``) are 26, among them ``ap-southeast-3`` and ``eu-west-101`` (at
  ``cce.eu-west-101.myhuaweicloud.eu``).

The sources do not agree: the ASM SDKs name fewer regions than the CCE clusters a mesh is built
on, and no source read gives ASM's own table. So the list holds every region the sources name
for ASM or CCE. Names are Huawei Cloud's display names (as its supported-regions pages spell
them, e.g. support.huaweicloud.com/intl/en-us/productdesc-cc/cc_01_0004.html); the names of
``cn-north-11`` and ``my-kualalumpur-1`` were in no source read and say only what the id says.

A region that is not here yet is allowed by ``MESHFLEET_EXTRA_REGIONS`` (comma-separated), read
by the CLI. Only the manifest is held to this list: the payload models keep the shape rule alone
(``meshfleet.asm.rules.Region``), so a region dropped from a later list never makes the input of
an older rollout unreadable.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from meshfleet.asm.rules import REGION, shown

EXTRA_REGIONS_ENV = "MESHFLEET_EXTRA_REGIONS"
"""Comma-separated regions to accept besides ``ASM_REGIONS``, each of the region shape."""

# A near miss is a typo ('ap-southest-3'); below this ratio two ids only share a prefix.
_SUGGESTION_CUTOFF = 0.8


@dataclass(frozen=True)
class KnownRegion:
    """A region ASM is served in: its id, as in host names, and the name people know it by."""

    id: str
    name: str


ASM_REGIONS: tuple[KnownRegion, ...] = (
    KnownRegion("cn-north-1", "CN North-Beijing1"),
    KnownRegion("cn-north-2", "CN North-Beijing2"),
    KnownRegion("cn-north-4", "CN North-Beijing4"),
    KnownRegion("cn-north-9", "CN North-Ulanqab1"),
    KnownRegion("cn-north-11", "CN North"),
    KnownRegion("cn-east-2", "CN East-Shanghai2"),
    KnownRegion("cn-east-3", "CN East-Shanghai1"),
    KnownRegion("cn-south-1", "CN South-Guangzhou"),
    KnownRegion("cn-south-2", "CN South-Shenzhen"),
    KnownRegion("cn-south-4", "CN South-Guangzhou-InvitationOnly"),
    KnownRegion("cn-southwest-2", "CN Southwest-Guiyang1"),
    KnownRegion("ap-southeast-1", "CN-Hong Kong"),
    KnownRegion("ap-southeast-2", "AP-Bangkok"),
    KnownRegion("ap-southeast-3", "AP-Singapore"),
    KnownRegion("ap-southeast-4", "AP-Jakarta"),
    KnownRegion("my-kualalumpur-1", "AP-Kuala Lumpur"),
    KnownRegion("af-south-1", "AF-Johannesburg"),
    KnownRegion("ae-ad-1", "ME-Abu Dhabi"),
    KnownRegion("tr-west-1", "TR-Istanbul"),
    KnownRegion("ru-northwest-2", "RU-Moscow2"),
    KnownRegion("eu-west-0", "EU-Paris"),
    KnownRegion("eu-west-101", "EU-Dublin"),
    KnownRegion("sa-brazil-1", "LA-Sao Paulo1"),
    KnownRegion("la-south-2", "LA-Santiago"),
    KnownRegion("na-mexico-1", "LA-Mexico City1"),
    KnownRegion("la-north-2", "LA-Mexico City2"),
)

REGION_IDS: frozenset[str] = frozenset(region.id for region in ASM_REGIONS)


def region_name(region: str) -> str | None:
    """The display name of a region of ``ASM_REGIONS``, or None for any other."""
    return next((known.name for known in ASM_REGIONS if known.id == region), None)


def unknown_region_problem(region: str, extra: Collection[str] = ()) -> str | None:
    """Why ``region`` is not a region ASM is served in, or None when it is one (or in ``extra``).

    Only the list is judged here: a value of the wrong shape is ``REGION``'s to refuse first.

    Args:
        region: A region id such as ``ap-southeast-3``.
        extra: Regions allowed besides the list (``MESHFLEET_EXTRA_REGIONS``).
    """
    if region in REGION_IDS or region in extra:
        return None
    candidates = sorted(REGION_IDS | set(extra))
    close = difflib.get_close_matches(region, candidates, n=1, cutoff=_SUGGESTION_CUTOFF)
    problem = f"{shown(region)} is not a region Huawei Cloud serves ASM in"
    if close:
        return f"{problem}; did you mean {close[0]!r}?"
    return f"{problem}; a region newer than meshfleet's list is allowed by {EXTRA_REGIONS_ENV}"


def parse_extra_regions(value: str) -> tuple[str, ...]:
    """The regions of a ``MESHFLEET_EXTRA_REGIONS`` value: comma-separated, blanks ignored.

    Raises:
        ValueError: an entry is not of a region's shape (``meshfleet.asm.rules.REGION``).
    """
    regions = tuple(entry.strip() for entry in value.split(",") if entry.strip())
    for region in regions:
        problem = REGION.problem(region)
        if problem is not None:
            raise ValueError(problem)
    return regions


def extra_regions_of(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The regions ``MESHFLEET_EXTRA_REGIONS`` of ``environ`` adds (none when unset).

    Raises:
        ValueError: an entry is not of a region's shape.
    """
    return parse_extra_regions(environ.get(EXTRA_REGIONS_ENV, ""))
