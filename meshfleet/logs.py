"""structlog set-up: JSON lines for machines, readable console output on a terminal."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

_SECRET_KEYS = ("password", "secret", "token", "sk", "authorization", "api_key")


def _drop_secrets(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    # Defence in depth: no code path logs a credential on purpose, but a careless keyword
    # argument must not leak one either.
    for key in list(event):
        if key.lower() in _SECRET_KEYS or key.lower().endswith(("_password", "_secret", "_token")):
            event[key] = "[redacted]"
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
        _drop_secrets,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*processors, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
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
