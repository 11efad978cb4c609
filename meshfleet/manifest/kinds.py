"""What kind of value each manifest key takes, checked before the rollout's own rules apply.

The payload models (``meshfleet.models``) are lax where YAML is careless: ``yes`` would count as
1 and ``"5"`` as 5. A manifest holds its author to the kind written in the docs instead, and says
which kind it wanted: ``strategy.window: must be a whole number, not a string``. The models' own
rules (ranges, percentages) then judge the values of the right kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, GetCoreSchemaHandler, ValidationError, field_validator
from pydantic_core import CoreSchema, InitErrorDetails, PydanticCustomError, core_schema

from meshfleet.manifest.durations import bounded_duration
from meshfleet.manifest.problems import KIND_ERROR, kind_of


def is_count(value: Any) -> bool:
    """A whole number; YAML reads ``yes`` as True, and True is an int, so not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """An int or a float, not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class Kind:
    """A kind of value, in the words a problem names it by: ``must be <words>, not a string``."""

    words: str
    test: Callable[[Any], bool]

    def error(self, value: Any) -> PydanticCustomError:
        """The problem of a value not of this kind."""
        return PydanticCustomError(
            KIND_ERROR, "must be {words}, not {got}", {"words": self.words, "got": kind_of(value)}
        )


WHOLE_NUMBER = Kind("a whole number", is_count)
NUMBER = Kind("a number", is_number)
TEXT = Kind("a string", lambda value: isinstance(value, str))
LIST = Kind("a list", lambda value: isinstance(value, list))
MAPPING = Kind("a mapping", lambda value: isinstance(value, dict))


def count_or_text(value: Any) -> bool:
    """A count, or a string the model reads as a percentage."""
    return is_count(value) or isinstance(value, str)


def checked(*fields: str, kind: Kind, items: Kind | None = None) -> Any:
    """A before-validator of ``fields``: values not of ``kind`` are refused in its words.

    With ``items``, every entry of a list not of that kind is refused at its own position
    (``waves[2]``); the model then judges only a list whose entries all are.

    Assign it to a name of the form ``_<field>_kind``: a validator named like one of the payload
    model's own would replace that one.
    """

    def check(cls: type, value: Any) -> Any:
        if not kind.test(value):
            raise kind.error(value)
        if items is not None and isinstance(value, list):
            wrong = [
                InitErrorDetails(type=items.error(item), loc=(i,), input=item)
                for i, item in enumerate(value)
                if not items.test(item)
            ]
            if wrong:
                raise ValidationError.from_exception_data(cls.__name__, wrong)
        return value

    return field_validator(*fields, mode="before")(check)


def durations(*fields: str) -> Any:
    """A before-validator reading ``fields`` as durations (``20s``, ``1h30m``, seconds)."""

    def read(cls: type, value: Any) -> float:
        try:
            return bounded_duration(value)
        except ValueError as exc:
            raise PydanticCustomError(KIND_ERROR, "{problem}", {"problem": str(exc)}) from None

    return field_validator(*fields, mode="before")(read)


def durations_of(model: type[Any]) -> tuple[str, ...]:
    """The fields of a payload model that hold seconds: each is a duration in the manifest."""
    return tuple(name for name in model.model_fields if name.endswith("_s"))


def manifest_name(field: str) -> str:
    """The manifest's key for a payload field: a duration drops its ``_s`` (``first_poll``)."""
    return field.removesuffix("_s")


@dataclass(frozen=True)
class ApiSpelling:
    """Marks a mapping that is validated as ``validated_as`` reads it by alias, and kept as written.

    ``spec.config`` goes to the API as the manifest spells it (``proxyConfig``), so its problems
    carry the API's names, and its schema is the model's. The mapping itself is kept: the rollout
    id hashes what was written.
    """

    validated_as: type[BaseModel]

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_wrap_validator_function(
            self._check,
            handler(source),
            # What an editor checks the mapping against: the model, by its API names.
            json_schema_input_schema=core_schema.nullable_schema(
                handler.generate_schema(self.validated_as)
            ),
        )

    def _check(self, value: Any, validate: core_schema.ValidatorFunctionWrapHandler) -> Any:
        if isinstance(value, dict) and value:  # empty: no config
            # First, so a key that is no string is named as the model names it. A
            # ValidationError raised here is reported at the mapping's own paths.
            self.validated_as.model_validate(value, by_alias=True, by_name=False)
        return validate(value)
