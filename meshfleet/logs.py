"""structlog set-up: JSON lines for machines, readable console output on a terminal."""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

_SECRET_KEYS = ("password", "secret", "token", "sk", "authorization", "api_key")
REDACTED = "[redacted]"


def _names_a_secret(key: object) -> bool:
    if not isinstance(key, str):
        return False
    name = key.lower().replace("-", "_")  # header names: X-Auth-Token, X-Security-Token
    return name in _SECRET_KEYS or name.endswith(("_password", "_secret", "_token"))


def _redacted(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: REDACTED if _names_a_secret(k) else _redacted(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(v) for v in value]
    return value


def drop_secrets(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: replace the value of every key that names a credential.

    Nested mappings are searched too: a logged dict of request headers carries its token one
    level down.
    """
    # Defence in depth: no code path logs a credential on purpose, but a careless keyword
    # argument must not leak one either.
    for key in list(event):
        value = event[key]
        if _names_a_secret(key):
            event[key] = REDACTED
        elif isinstance(value, Mapping | list | tuple) and key != "exc_info":
            event[key] = _redacted(value)
    return event


def configure(fmt: str = "auto", level: str = "INFO") -> None:
    """Configure structlog and stdlib logging once per process.

    Args:
        fmt: ``json``, ``console`` or ``auto`` (console on a terminal, JSON otherwise).
        level: Minimum level name.
    """
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        drop_secrets,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*processors, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        # One write per line: print() sends the line and its newline apart, and a line the SDK's
        # handler writes between them from another thread joins two JSON objects on one line.
        logger_factory=structlog.WriteLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Standard-library loggers (the SDK, workflows, aiohttp) render through the same chain, so
    # their lines are JSON too and carry the context bound by the activity they ran in.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                *processors[:2],
                structlog.stdlib.add_logger_name,
                structlog.stdlib.ExtraAdder(),
                *processors[2:],
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric, logging.WARNING))
