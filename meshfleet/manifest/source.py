"""Manifest bytes to plain data: YAML or JSON by content, bounded in size, depth and duplicates."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import yaml

from meshfleet.manifest.problems import Problem

MAX_BYTES = 32 * 1024 * 1024
# Anchors and aliases let a small file expand without bound (or refer to itself); counting values
# after expansion keeps validation time and memory in proportion to a real 20,000-target fleet.
MAX_VALUES = 2_000_000
MAX_DEPTH = 64


class ManifestError(Exception):
    """The manifest cannot be used; ``problems`` lists every reason, one line each.

    Attributes:
        problems: ``path: message`` lines (only the message when the document as a whole is at
            fault: unreadable, a syntax error).
        entries: The same problems as (path, message) pairs, for the ``--json`` document.
    """

    def __init__(self, problems: Sequence[str | Problem]) -> None:
        self.entries: list[Problem] = [
            problem if isinstance(problem, tuple) else ("", problem) for problem in problems
        ]
        self.problems = [f"{path}: {msg}" if path else msg for path, msg in self.entries]
        super().__init__("\n".join(self.problems))


_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[valid-type,misc]
    """Safe YAML loading that notes duplicate keys instead of silently keeping the last one."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[str] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            # A key repeated after a merge (`<<: *defaults`) is an override, not a mistake.
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(
                key_node, yaml.ScalarNode
            ):
                continue
            key = self.construct_object(key_node)
            try:
                if key in seen:
                    self.duplicates.append(
                        f"line {key_node.start_mark.line + 1}: duplicate key {key!r}"
                    )
                seen.add(key)
            except TypeError:  # an unhashable key; the base constructor reports it
                pass
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]


def read_source(source: str | os.PathLike[str], stdin: BinaryIO | None = None) -> bytes:
    """The manifest's bytes from a file, or from standard input when ``source`` is ``-``.

    Raises:
        ManifestError: unreadable, or larger than ``MAX_BYTES``.
    """
    name = os.fspath(source)
    # Problems do not name the source: the caller prefixes every problem with it.
    too_big = f"larger than {MAX_BYTES // (1024 * 1024)} MiB; split the fleet"
    try:
        if name == "-":
            data = (stdin or sys.stdin.buffer).read(MAX_BYTES + 1)
        else:
            path = Path(name)
            if path.stat().st_size > MAX_BYTES:
                raise ManifestError([too_big])
            with path.open("rb") as stream:
                # Read one byte past the limit: a file can grow between stat and read.
                data = stream.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ManifestError([f"cannot read: {exc.strerror or exc}"]) from exc
    if len(data) > MAX_BYTES:
        raise ManifestError([too_big])
    return data


def parse_document(content: str | bytes) -> Any:
    """The manifest document as plain data; JSON when it reads as JSON, YAML otherwise.

    Raises:
        ManifestError: not UTF-8, a syntax error (with its line), duplicate keys, or a
            document too large or too deep once aliases are expanded.
    """
    if isinstance(content, bytes):
        if len(content) > MAX_BYTES:
            raise ManifestError([f"larger than {MAX_BYTES // (1024 * 1024)} MiB; split the fleet"])
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ManifestError([f"not UTF-8 text (byte {exc.start})"]) from exc
    else:
        text = content.removeprefix("\ufeff")
    if text.lstrip().startswith(("{", "[")):
        data, duplicates = _json_or_yaml(text)
    else:
        data, duplicates = _yaml(text)
    if duplicates:
        raise ManifestError(duplicates)
    _check_size(data)
    return data


def _json_or_yaml(text: str) -> tuple[Any, list[str]]:
    duplicates: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for key, value in items:
            if key in found:
                duplicates.append(f"duplicate key {key!r}")
            found[key] = value
        return found

    try:
        return json.loads(text, object_pairs_hook=pairs), duplicates
    except json.JSONDecodeError as json_exc:
        # A YAML flow mapping (`{strategy: {...}}`) also starts with a brace.
        try:
            return _yaml(text)
        except ManifestError:
            raise ManifestError(
                [
                    f"JSON syntax error at line {json_exc.lineno} column {json_exc.colno}: "
                    f"{json_exc.msg}"
                ]
            ) from json_exc
    except RecursionError as exc:
        raise ManifestError([f"nested deeper than {MAX_DEPTH} levels"]) from exc
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise ManifestError([f"cannot read JSON: {_short(exc)}"]) from exc


def _yaml(text: str) -> tuple[Any, list[str]]:
    loader = _Loader(text)
    try:
        return loader.get_single_data(), loader.duplicates
    except yaml.MarkedYAMLError as exc:
        raise ManifestError([yaml_syntax_problem(exc)]) from exc
    except RecursionError as exc:
        raise ManifestError([f"nested deeper than {MAX_DEPTH} levels"]) from exc
    # PyYAML's constructors raise ValueError, TypeError or AttributeError for malformed explicit
    # tags (`!!int abc`, `!!timestamp x`): bad input, never a traceback.
    except Exception as exc:
        raise ManifestError([f"cannot read YAML: {_short(exc)}"]) from exc
    finally:
        loader.dispose()


# Contexts that open something the problem found unfinished further on: a key without its ':',
# a quote or a bracket never closed. PyYAML notices only where it gave up (the next line, the end
# of the file), so the mistake is where the context began. Other contexts ("while parsing a block
# mapping") name the enclosing block, and there the problem mark is the mistake itself.
_OPENED_AT_CONTEXT = (
    "while scanning a simple key",
    "while scanning a quoted scalar",
    "while parsing a flow sequence",
    "while parsing a flow mapping",
)


def yaml_syntax_problem(exc: yaml.MarkedYAMLError) -> str:
    """``YAML syntax error at line L column C: ...``, at the mistake (PyYAML's marks are 0-based).

    A key without ':', an unclosed quote or bracket noticed on a later line is reported where it
    starts, with where PyYAML noticed it; any other error where PyYAML found it.
    """
    problem, context = exc.problem or "", exc.context or ""
    found, opened = exc.problem_mark, exc.context_mark
    what = problem or context or "invalid YAML"
    if (
        opened is not None
        and context in _OPENED_AT_CONTEXT
        and (found is None or found.line > opened.line)
    ):
        noticed = "" if found is None else f" (noticed at {_position(found)})"
        return f"YAML syntax error at {_position(opened)}: {context}, {what}{noticed}"
    mark = found or opened
    where = f" at {_position(mark)}" if mark is not None else ""
    return f"YAML syntax error{where}: {what}"


def _position(mark: yaml.Mark) -> str:
    return f"line {mark.line + 1} column {mark.column + 1}"


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _check_size(data: Any) -> None:
    stack: list[tuple[Any, int]] = [(data, 0)]
    values = 0
    while stack:
        value, depth = stack.pop()
        values += 1
        if values > MAX_VALUES:
            raise ManifestError(
                [f"more than {MAX_VALUES:,} values once YAML aliases are expanded; split the fleet"]
            )
        if depth > MAX_DEPTH:
            # Also where a self-referencing alias (`&a [*a]`) ends up.
            raise ManifestError([f"nested deeper than {MAX_DEPTH} levels"])
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list | tuple | set | frozenset):
            stack.extend((item, depth + 1) for item in value)
