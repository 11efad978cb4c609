"""Manifest problems as readable lines: a path such as ``targets[3].mesh_name``, then words."""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Iterable, Iterator
from functools import cache
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from meshfleet.asm.models import MeshConfig

Loc = tuple[str | int, ...]

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
    close = difflib.get_close_matches(key, list(names), n=1, cutoff=0.6)
    if not close:
        close = [name for name in names if name.lower() == key.lower().replace("-", "_")]
    return f" (did you mean {close[0]!r}?)" if close else ""


class Problems:
    """Problems in the order found, each once (a bad default would repeat per target)."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, str]] = []
        """(path, message) pairs; the path is ``""`` for the document as a whole."""
        self._seen: set[tuple[str, str]] = set()

    def __len__(self) -> int:
        return len(self.entries)

    def add(self, path: str, message: str) -> None:
        """Record ``path: message``."""
        entry = (path, message)
        if entry not in self._seen:
            self._seen.add(entry)
            self.entries.append(entry)

    def unknown_keys(self, path: str, mapping: dict[Any, Any], allowed: Iterable[str]) -> None:
        """Record every key of ``mapping`` that is not ``allowed``."""
        names = tuple(allowed)
        for key in mapping:
            if key not in names:
                self.add(join_path(path, key), "unknown field" + did_you_mean(key, names))


def pydantic_problems(exc: ValidationError, names: Iterable[str] = ()) -> Iterator[tuple[Loc, str]]:
    """(location, message) for each error of a pydantic validation.

    Args:
        exc: The validation error.
        names: Field names to suggest when a key is unknown.
    """
    for error in exc.errors(include_url=False):
        loc: Loc = tuple(error["loc"])
        message = _message(error, names)
        # Validators that check a list name the item in their message ("waves[2]: ...").
        nested = _NESTED_PATH.fullmatch(message)
        if nested and loc and loc[-1] == nested.group(1):
            loc += tuple(int(i) for i in re.findall(r"\d+", nested.group(2)))
            message = nested.group(3)
        yield loc, message


def _message(error: ErrorDetails, names: Iterable[str]) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        return "unknown field" + did_you_mean(error["loc"][-1] if error["loc"] else "", names)
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


@cache
def config_field_names() -> tuple[str, ...]:
    """Every camelCase name that may appear inside ``spec.config``, for suggestions."""
    names: set[str] = set()
    seen: set[type[BaseModel]] = set()

    def walk(model: type[BaseModel]) -> None:
        if model in seen:
            return
        seen.add(model)
        for name, field in model.model_fields.items():
            names.add(field.alias or name)
            for inner in _models_in(field.annotation):
                walk(inner)

    walk(MeshConfig)
    return tuple(sorted(names))


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
        return
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        for arg in typing.get_args(annotation):
            yield from _models_in(arg)
