"""The rollout manifest as one pydantic document, and the JSON Schema editors check it with.

Each part is a model built on the payload model it becomes (``strategy.Strategy`` on
``RolloutStrategy``, ``targets.Target`` on ``MeshTarget``), so every rule of the rollout is
stated once, there; the manifest adds its spelling (``first_poll: 20s``), the kind each key
takes (``kinds``), and the rules across targets (``across``), which ``Manifest`` judges.
Validating a ``Manifest`` reports every problem at once, each at its location;
``problems.manifest_problems`` words them.
"""

from __future__ import annotations

from collections.abc import Collection
from functools import cache
from typing import Any, ClassVar

from pydantic import (
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    model_validator,
)
from pydantic.json_schema import GenerateJsonSchema
from pydantic_core import ErrorDetails, PydanticCustomError, core_schema

from meshfleet.manifest import across, descriptions
from meshfleet.manifest.kinds import LIST, checked
from meshfleet.manifest.parts import Hints, Part, schema_hints
from meshfleet.manifest.problems import KIND_ERROR, finding, kind_of, moved
from meshfleet.manifest.schedule import schedule_of
from meshfleet.manifest.strategy import Strategy
from meshfleet.manifest.targets import DEFAULT_KEYS, Defaults, Target
from meshfleet.models import MeshTarget, RolloutStrategy

MAX_TARGETS = 20_000
SCHEMA_ID = "urn:meshfleet:manifest"
REGENERATE = "python -m meshfleet schema > docs/manifest.schema.json"

# What the walk (which target is in which wave, where the gates stand) depends on: with these
# valid, the gates and the targets' regions are judged even when another strategy key is wrong.
_WALK_KEYS = ("waves", "approve_after", "regions")


# --- the document ------------------------------------------------------------------------------


class Manifest(Part):
    """A meshfleet rollout manifest: which meshes to create, and how fast."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        title="meshfleet rollout manifest",
        json_schema_extra=schema_hints(
            descriptions.MANIFEST,
            extra={"targets": {"maxItems": MAX_TARGETS}},
            nullable=("strategy", "defaults"),
        ),
    )
    manifest_hints: ClassVar[Hints] = {
        ("missing", "targets"): "required: the list of meshes to create",
        ("too_short", "targets"): "must list at least one target",
    }

    strategy: Strategy = Field(default_factory=Strategy)
    defaults: Defaults = Field(default_factory=Defaults)
    targets: list[Target] = Field(min_length=1)

    _targets_kind = checked("targets", kind=LIST)

    @model_validator(mode="wrap")
    @classmethod
    def _as_a_whole(
        cls, data: Any, handler: ModelWrapValidatorHandler[Manifest], info: ValidationInfo
    ) -> Manifest:
        # The defaults are applied first; then every part is validated, and what spans targets
        # is judged on what was written, whatever else is wrong.
        if isinstance(data, Manifest):
            return data
        if data is None:
            raise PydanticCustomError(
                KIND_ERROR, "the manifest is empty; expected a mapping with strategy and targets"
            )
        if not isinstance(data, dict):
            raise PydanticCustomError(
                KIND_ERROR,
                "the manifest must be a mapping with strategy and targets, not {got}",
                {"got": kind_of(data)},
            )
        fleet = across.Fleet.of(data, tuple(cls.model_fields), DEFAULT_KEYS)
        if len(fleet.targets) > MAX_TARGETS:
            # Refused before validating them: the count alone says what to do.
            message = (
                f"{len(fleet.targets):,} targets; at most {MAX_TARGETS:,} per manifest, "
                "split the fleet into several rollouts"
            )
            raise ValidationError.from_exception_data(
                cls.__name__, [finding(("targets",), message)]
            )
        document: Manifest | None = None
        errors: list[ErrorDetails] = []
        try:
            document = handler(fleet.data)
        except ValidationError as exc:
            errors = exc.errors()
        extra_regions: Collection[str] = (info.context or {}).get("extra_regions", ())
        findings = _findings(fleet, document, errors, extra_regions)
        if document is not None and not findings:
            return document
        raise ValidationError.from_exception_data(
            cls.__name__,
            [moved(error, fleet.blamed(tuple(error["loc"]))) for error in errors]
            + [finding(fleet.blamed(loc), message) for loc, message in findings],
        )

    def payload(self) -> tuple[RolloutStrategy, list[MeshTarget]]:
        """The strategy and targets the rest of meshfleet takes, as the payload models."""
        strategy = RolloutStrategy.model_validate(self.strategy.model_dump())
        # Each Target passed MeshTarget's own rules (it is one); validating it again would only
        # build its API request a second time.
        targets = [
            MeshTarget.model_construct(target.model_fields_set, **dict(target))
            for target in self.targets
        ]
        return strategy, targets


def _findings(
    fleet: across.Fleet,
    document: Manifest | None,
    errors: list[ErrorDetails],
    extra_regions: Collection[str],
) -> list[across.Finding]:
    """What the rules across targets find, given the models' errors (``errors``)."""
    locs = [tuple(error["loc"]) for error in errors]
    failed = {(loc[1], loc[2]) for loc in locs if len(loc) > 2 and loc[0] == "targets"}
    walk = document.strategy if document is not None else _walk(fleet.data.get("strategy"))
    order = walk.regions.order if walk is not None and walk.regions is not None else None
    found = across.region_findings(fleet, order, failed, extra_regions)
    targets_valid = not any(loc[:1] == ("targets",) for loc in [*locs, *(f[0] for f in found)])
    found += across.duplicate_findings(fleet)
    if walk is not None and targets_valid and fleet.targets:
        # Waves are counted on the targets (per region with sequential regions): only a
        # complete list gives the right count, so a gate is judged only then.
        targets = document.targets if document is not None else _targets(fleet.targets)
        strategy = fleet.data.get("strategy") or {}
        found += across.gate_findings(strategy.get("approve_after"), schedule_of(walk, targets))
    return found


def _walk(strategy: Any) -> Strategy | None:
    """The strategy of the walk alone, when its keys are valid whatever else is wrong."""
    if not isinstance(strategy, dict):
        return None if strategy is not None else Strategy()
    walk = {key: strategy[key] for key in _WALK_KEYS if key in strategy}
    if isinstance(walk.get("regions"), dict):
        # A region's failure budget changes no wave or gate.
        walk["regions"] = {k: v for k, v in walk["regions"].items() if k != "max_failures"}
    try:
        return Strategy.model_validate(walk)
    except ValidationError:
        return None


@cache
def _targets_adapter() -> TypeAdapter[list[Target]]:
    return TypeAdapter(list[Target])


def _targets(targets: list[Any]) -> list[Target]:
    # Only when another part is wrong: the document then holds no targets to count waves on.
    return _targets_adapter().validate_python(targets)


# --- the JSON Schema ---------------------------------------------------------------------------


class _ManifestSchema(GenerateJsonSchema):
    def field_title_should_be_set(self, schema: core_schema.CoreSchema) -> bool:
        return False  # a key's title would only repeat it; its description says what it is


def manifest_schema() -> dict[str, Any]:
    """The manifest's JSON Schema (draft 2020-12), for editors to complete and check YAML."""
    schema = Manifest.model_json_schema(by_alias=True, schema_generator=_ManifestSchema)
    schema["patternProperties"] = {f"^{across.EXTENSION_PREFIX}": {}}
    _here_or_in_defaults(schema)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "$comment": f"Generated from meshfleet.manifest.document; regenerate: {REGENERATE}",
        **schema,
    }


def _here_or_in_defaults(schema: dict[str, Any]) -> None:
    """A key a target needs may be given in ``defaults`` instead: required of every target
    only when the defaults do not give it."""
    target = schema["$defs"]["Target"]
    shared = [key for key in target["required"] if key in DEFAULT_KEYS]
    target["required"] = [key for key in target["required"] if key not in shared]
    schema["allOf"] = [
        {
            "if": {
                "properties": {"defaults": {"type": "object", "required": [key]}},
                "required": ["defaults"],
            },
            "else": {"properties": {"targets": {"items": {"required": [key]}}}},
        }
        for key in shared
    ]
