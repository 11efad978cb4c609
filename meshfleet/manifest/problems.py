"""Manifest problems as readable lines: a path such as ``targets[3].mesh_name``, then words.

The manifest's models (``meshfleet.manifest.document``) report every problem as a pydantic
error with its location; ``manifest_problems`` turns those into the lines an operator reads.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Callable, Iterable, Iterator
from functools import cache
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError
from pydantic_core.core_schema import ErrorType

Loc = tuple[str | int, ...]
Problem = tuple[str, str]
"""(path, message); the path is ``""`` for the document as a whole."""

KIND_ERROR = "manifest_kind"
"""A value not of the kind its key takes (``must be a whole number, not a string``)."""
RULE_ERROR = "manifest_rule"
"""A rule of the manifest as a whole, such as a mesh name used twice."""

_KNOWN_ERRORS = frozenset(typing.get_args(ErrorType))
_UNKNOWN_KEY = frozenset({"extra_forbidden", "invalid_key"})
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
_NESTED_PATH = re.compile(r"(\w+)((?:\[\d+\])+): (.*)", re.DOTALL)
_SHOWN_CHARS = 60


def shown(value: object) -> str:
    """``repr`` of a user's value, cut short: a problem line stays one readable line."""
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def kind_of(value: object) -> str:
    """What a value is, in the manifest author's words."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def join_path(path: str, *parts: object) -> str:
    """Extend a manifest path: names with ``.``, list positions with ``[i]``, odd keys quoted."""
    for part in parts:
        if isinstance(part, int) and not isinstance(part, bool):
            path += f"[{part}]"
        elif isinstance(part, str) and _IDENTIFIER.fullmatch(part):
            path = f"{path}.{part}" if path else part
        else:
            path += f"[{shown(part)}]"
    return path


def did_you_mean(key: object, names: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for a near miss among ``names``, else nothing."""
    if not isinstance(key, str):
        return ""
    names = list(names)
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    if not close:
        close = [name for name in names if name.lower() == key.lower().replace("-", "_")]
    return f" (did you mean {close[0]!r}?)" if close else ""


# --- errors at new locations ---------------------------------------------------------------


def finding(loc: Loc, message: str, value: Any = None) -> InitErrorDetails:
    """A problem found by a rule of the manifest, as a pydantic error at ``loc``."""
    return InitErrorDetails(
        type=PydanticCustomError(RULE_ERROR, "{problem}", {"problem": message}),
        loc=loc,
        input=value,
    )


def moved(error: ErrorDetails, loc: Loc) -> InitErrorDetails:
    """``error`` as it was, at ``loc``: its type and context kept, so it reads the same."""
    kind, ctx = error["type"], error.get("ctx")
    if kind not in _KNOWN_ERRORS:
        # A custom error keeps its type (the order of problems depends on it), not its template.
        return InitErrorDetails(
            type=PydanticCustomError(kind, "{problem}", {"problem": error["msg"]}),
            loc=loc,
            input=error["input"],
        )
    if ctx is None:
        return InitErrorDetails(type=kind, loc=loc, input=error["input"])
    return InitErrorDetails(type=kind, loc=loc, input=error["input"], ctx=ctx)


def regrouped(
    title: str, errors: Iterable[ErrorDetails], where: Callable[[Loc], Loc]
) -> ValidationError:
    """A ValidationError of ``errors``, each moved to ``where(loc)``.

    Raised inside a validator, it is reported at the validated value's location plus each
    error's own (pydantic keeps the locations of a ValidationError raised there).
    """
    return ValidationError.from_exception_data(
        title, [moved(error, where(tuple(error["loc"]))) for error in errors]
    )


# --- errors into lines ---------------------------------------------------------------------


def manifest_problems(exc: ValidationError, root: type[BaseModel]) -> list[Problem]:
    """The lines of a manifest refused by ``root``, each problem once.

    Problems are listed part by part: the document's own keys, ``strategy``, ``defaults``, then
    each target. Within a part, unknown keys come first, outermost first (a misspelt key
    explains a "required" next to it), then values not of their key's kind, then values
    breaking a rule.
    """
    found: list[tuple[tuple[int, int, int, int], str, str]] = []
    for error in exc.errors(include_url=False):
        loc: Loc = tuple(error["loc"])
        message = _message(error, loc, root)
        # Validators that check a list name the item in their message ("waves[2]: ...").
        nested = _NESTED_PATH.fullmatch(message)
        if nested and loc and loc[-1] == nested.group(1):
            loc += tuple(int(i) for i in re.findall(r"\d+", nested.group(2)))
            message = nested.group(3)
        found.append((_rank(error, loc, root), join_path("", *loc), message))
    found.sort(key=lambda entry: entry[0])  # stable: pydantic's order within a rank
    problems: dict[Problem, None] = {}
    for _, path, message in found:
        problems.setdefault((path, message))
    return list(problems)


def _rank(error: ErrorDetails, loc: Loc, root: type[BaseModel]) -> tuple[int, int, int, int]:
    sections = list(_fields_by_key(root))
    if not loc:
        part = -2
    elif loc[0] in sections:
        part = sections.index(str(loc[0]))
    else:
        part = -1  # a key the document does not know
    item = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else -1
    kind = error["type"]
    if kind in _UNKNOWN_KEY:
        return part, item, 0, len(loc)
    return part, item, 1 if kind == KIND_ERROR else 2, 0


def _message(error: ErrorDetails, loc: Loc, root: type[BaseModel]) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    model = _model_at(root, loc[:-1]) if loc else None
    hints: dict[tuple[str, str | int], str] = getattr(model, "manifest_hints", {})
    hint = hints.get((kind, loc[-1])) if loc else None
    if hint is not None:
        return hint
    if kind in _UNKNOWN_KEY:
        return "unknown field" + (did_you_mean(loc[-1], _keys(model)) if loc and model else "")
    if kind == "missing":
        return "required"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind in ("too_short", "string_too_short") and ctx.get("min_length") == 1:
        return "must not be empty"
    message = error["msg"]
    value = error.get("input")
    if kind == "string_type" and isinstance(value, int | float) and not isinstance(value, bool):
        # YAML reads an all-digit id as a number.
        message += "; put the value in quotes"
    return message


# --- where in the models a location is -----------------------------------------------------


def _model_at(root: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model that validates the mapping at ``loc`` (list positions pass through)."""
    model: type[BaseModel] | None = root
    for part in loc:
        if isinstance(part, int):
            continue
        field = _fields_by_key(model).get(part) if model is not None else None
        if field is None:
            return None
        model = _model_of(field)
    return model


@cache
def _fields_by_key(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s fields by the key a manifest writes (the alias, when there is one)."""
    return {field.alias or name: field for name, field in model.model_fields.items()}


@cache
def _keys(model: type[BaseModel]) -> tuple[str, ...]:
    """The keys a manifest may write at ``model``: those its JSON Schema names."""
    return tuple(model.model_json_schema(by_alias=True).get("properties", {}))


def _model_of(field: Any) -> type[BaseModel] | None:
    # A mapping kept as written but validated as a model says so (``kinds.ApiSpelling``).
    for meta in field.metadata:
        validated_as = getattr(meta, "validated_as", None)
        if isinstance(validated_as, type) and issubclass(validated_as, BaseModel):
            return validated_as
    return next(_models_in(field.annotation), None)


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            yield from _models_in(arg)
