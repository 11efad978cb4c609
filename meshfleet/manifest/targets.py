"""A manifest's targets and its ``defaults``: models on ``MeshTarget``, whose rules they keep.

A ``Target`` checks each part of the mesh's API request at the field it comes from (a node id
at ``node_ids[1]``, the version's shape at ``version``), and ``spec.config`` as the API spells
it. ``Defaults`` holds a target's keys but the per-target ones, none required, under the same
rules.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

from pydantic import (
    AfterValidator,
    ModelWrapValidatorHandler,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)
from pydantic.config import JsonDict
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import ErrorDetails, PydanticCustomError

from meshfleet.asm.models import (
    VERSION_RE,
    InstallationConfig,
    MeshCluster,
    MeshConfig,
    MeshExtendParams,
    MeshSpec,
    Selector,
)
from meshfleet.asm.rules import MESH_NAME_RE, PROJECT_ID
from meshfleet.manifest import descriptions
from meshfleet.manifest.kinds import MAPPING, ApiSpelling, Kind
from meshfleet.manifest.parts import REGION_SCHEMA, Hints, Part, anchored, part_config
from meshfleet.manifest.problems import regrouped
from meshfleet.models import MeshTarget, Restore, UpgradeRef

# A default cluster or mesh name could only ever be right for one target; a uid, what to
# restore and the upgrade task to finish or roll back are a rollback's or a finalize's, recorded
# when the rollout changed the mesh, never in a manifest.
PER_TARGET_KEYS = ("cluster_id", "mesh_name")
ROLLBACK_KEYS = ("uid", "restore", "upgrade")
DEFAULT_KEYS = tuple(
    key for key in MeshTarget.model_fields if key not in (*PER_TARGET_KEYS, *ROLLBACK_KEYS)
)


def _inherited(name: str) -> Any:
    """``MeshTarget``'s field ``name`` (its default and constraints), for a field adding a rule."""
    return copy.copy(MeshTarget.model_fields[name])


def _selector(key: str) -> Callable[[list[str]], list[str]]:
    """The request's rule for a selector's values, each problem at its value's position."""

    def check(values: list[str]) -> list[str]:
        if values:  # none at all is the field's own rule (node_ids), or means none (namespaces)
            try:
                Selector.by(key, values)
            except ValidationError as exc:
                at_value = lambda loc: tuple(p for p in loc if isinstance(p, int))  # noqa: E731
                raise regrouped("selector", exc.errors(), at_value) from None
        return values

    return check


# Version rules live on MeshSpec; a minimal valid cluster list lets them be checked on their own.
_PROBE_CLUSTERS = MeshExtendParams(
    clusters=[
        MeshCluster(
            cluster_id="probe", installation=InstallationConfig(nodes=Selector.by("UID", ["p"]))
        )
    ]
)


@cache
def _version_errors(version: str) -> tuple[ErrorDetails, ...]:
    try:
        MeshSpec.model_validate({"version": version, "extendParams": _PROBE_CLUSTERS})
    except ValidationError as exc:
        return tuple(exc.errors())
    return ()


def _version_shape(version: str) -> str:
    errors = _version_errors(version)  # a fleet names few versions
    if errors:
        raise regrouped("version", errors, lambda loc: ())
    return version


_TARGET_SCHEMA: dict[str, JsonDict] = {
    "project_id": {"pattern": anchored(PROJECT_ID.pattern)},
    "region": REGION_SCHEMA,
    "mesh_name": {"pattern": anchored(MESH_NAME_RE)},
    "version": {"pattern": anchored(VERSION_RE)},
    "node_ids": {"items": {"type": "string", "minLength": 1}},
    "namespaces": {"items": {"type": "string", "minLength": 1}},
}


class Target(Part, MeshTarget):
    """A target: one mesh to create, which a CCE cluster of a project in a region joins."""

    model_config = part_config(descriptions.TARGET, aliases=False, extra=_TARGET_SCHEMA)
    manifest_kind = Kind("a mapping of target fields", MAPPING.test)
    manifest_hints: ClassVar[Hints] = {
        ("missing", key): "required, here or in defaults" for key in DEFAULT_KEYS
    }

    version: Annotated[str, AfterValidator(_version_shape)] = _inherited("version")
    node_ids: Annotated[list[str], AfterValidator(_selector("UID"))] = _inherited("node_ids")
    namespaces: Annotated[list[str], AfterValidator(_selector("Name"))] = _inherited("namespaces")
    config: Annotated[dict[str, Any] | None, ApiSpelling(MeshConfig)] = _inherited("config")
    uid: SkipJsonSchema[str | None] = _inherited("uid")
    restore: SkipJsonSchema[Restore | None] = _inherited("restore")
    upgrade: SkipJsonSchema[UpgradeRef | None] = _inherited("upgrade")

    @field_validator(*ROLLBACK_KEYS, mode="before")
    @classmethod
    def _not_in_a_manifest(cls, value: Any) -> Any:
        raise PydanticCustomError("extra_forbidden", "Extra inputs are not permitted")

    @model_validator(mode="wrap")
    @classmethod
    def _request_is_valid(
        cls, data: Any, handler: ModelWrapValidatorHandler[Target], info: ValidationInfo
    ) -> Target:
        # Replaces MeshTarget's check. Each part of the request is checked at the field it
        # comes from; what the request adds is the features a version allows (Zipkin,
        # apm-otel), judged as soon as the version and the config are valid, whatever else is
        # wrong. (``info`` goes unused: mypy settles pydantic's wrap-validator overload on the
        # first one it meets, and the document's takes ``info``.)
        try:
            target = handler(data)
        except ValidationError as exc:
            errors = exc.errors()
            if not isinstance(data, dict) or {e["loc"][:1] for e in errors} & _FEATURE_KEYS:
                raise
            version = data.get("version", MeshTarget.model_fields["version"].default)
            features = _feature_errors(version, data.get("config"))
            if not features:
                raise
            raise regrouped("target", [*errors, *features], lambda loc: loc) from None
        try:
            target.to_request()
        except ValidationError as exc:
            features = _feature_errors(target.version, target.config)
            raise regrouped("target", features or exc.errors(), lambda loc: loc) from None
        return target


_FEATURE_KEYS = {("version",), ("config",)}


def _feature_errors(version: str, config: dict[str, Any] | None) -> list[ErrorDetails]:
    """The problems of what ``version`` allows with ``config``, each at the version."""
    spec = {
        "version": version,
        "extendParams": _PROBE_CLUSTERS,
        "config": MeshConfig.model_validate(config) if config else None,
    }
    try:
        MeshSpec.model_validate(spec)
    except ValidationError as exc:
        return [{**error, "loc": ("version",)} for error in exc.errors()]
    return []


class _DefaultsPart(Part):
    model_config = part_config(
        descriptions.TARGET, aliases=False, extra=_TARGET_SCHEMA, defaults=False
    )
    manifest_hints: ClassVar[Hints] = {
        ("extra_forbidden", key): "must be set per target, not in defaults"
        for key in PER_TARGET_KEYS
    }


def _optional(name: str) -> tuple[Any, Any]:
    field = copy.copy(Target.model_fields[name])
    field.default, field.default_factory = None, None
    return field.annotation, field


if TYPE_CHECKING:
    Defaults = _DefaultsPart
else:
    # A target's keys but the per-target ones, none required, each under the target's rules.
    Defaults = create_model(
        "Defaults",
        __base__=_DefaultsPart,
        __doc__="defaults: values every target takes unless it sets its own.",
        **{name: _optional(name) for name in DEFAULT_KEYS},
    )
