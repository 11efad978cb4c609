"""What every part of the manifest's document shares: its base model and its schema's words.

A part (``strategy``, ``defaults``, a target, ...) is a mapping: unknown keys are refused and a
value of another kind is named as such. Its JSON Schema carries the manifest's own words
(``descriptions``), durations as a number or a string like ``20s``, and the patterns of the
rules that name things (project ids, regions, mesh names).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic.config import JsonDict

from meshfleet.asm.regions import ASM_REGIONS
from meshfleet.asm.rules import REGION
from meshfleet.manifest import descriptions
from meshfleet.manifest.durations import DURATION_PATTERN
from meshfleet.manifest.kinds import MAPPING, Kind, durations_of, manifest_name
from meshfleet.models import PERCENT_RE, RetryPolicySpec, RolloutStrategy

Hints = dict[tuple[str, str | int], str]


def anchored(pattern: re.Pattern[str], *, padded: bool = False) -> str:
    """A rule's full-match regex as a JSON Schema pattern (which matches anywhere otherwise);
    ``padded`` when the rule is applied to the stripped value."""
    core = pattern.pattern.removeprefix("^").removesuffix("\\Z").removesuffix("$")
    pad = r"\s*" if padded else ""
    return f"^{pad}(?:{core}){pad}$"


_NUMERIC = ("type", "minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum")
_DURATION_KEYS = frozenset(
    manifest_name(name)
    for model in (RolloutStrategy, RetryPolicySpec)
    for name in durations_of(model)
)
PERCENT_SCHEMA: JsonDict = {"type": "string", "pattern": anchored(PERCENT_RE, padded=True)}
COUNT_OR_PERCENT_SCHEMA: list[JsonDict] = [{"type": "integer", "minimum": 0}, PERCENT_SCHEMA]
REGION_SCHEMA: JsonDict = {
    "type": "string",
    "pattern": anchored(REGION.pattern),
    "maxLength": REGION.max_length,
    "examples": [region.id for region in ASM_REGIONS],
}


def schema_hints(
    words: dict[str, str],
    extra: dict[str, JsonDict] | None = None,
    nullable: Collection[str] = (),
    *,
    defaults: bool = True,
) -> Callable[[JsonDict], None]:
    """A part's ``json_schema_extra``: each key described in the manifest's words, a duration
    as a number or a string like ``20s``, ``extra`` added to a key, ``nullable`` keys taking
    null (the loader reads null there as the key left out); ``defaults=False`` for a part whose
    keys have no default value of their own."""

    def hints(schema: JsonDict) -> None:
        properties: Any = schema.get("properties", {})
        for key, prop in properties.items():
            if key in words:
                prop["description"] = words[key]
            if not defaults:
                prop.pop("default", None)
            prop.update((extra or {}).get(key, {}))
            if key in _DURATION_KEYS:
                number = {k: prop.pop(k) for k in _NUMERIC if k in prop}
                prop["anyOf"] = [number, {"type": "string", "pattern": DURATION_PATTERN}]
                prop["description"] = f"{prop.get('description', '')} {descriptions.DURATION_WORDS}"
            if key in nullable:
                kept = {k: prop.pop(k) for k in ("$ref", "type", "items") if k in prop}
                prop["anyOf"] = [kept, {"type": "null"}]

    return hints


def part_config(words: dict[str, str], *, aliases: bool = True, **schema: Any) -> ConfigDict:
    """The config of a part: unknown keys refused, duration keys without ``_s``, its schema."""
    return ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=manifest_name if aliases else None,
        json_schema_extra=schema_hints(words, **schema),
    )


class Part(BaseModel):
    """A mapping of the manifest: unknown keys refused, a value of another kind named."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    manifest_kind: ClassVar[Kind] = MAPPING
    manifest_hints: ClassVar[Hints] = {}

    @model_validator(mode="before")
    @classmethod
    def _a_mapping(cls, data: Any) -> Any:
        if not isinstance(data, dict | cls):
            raise cls.manifest_kind.error(data)
        return data
