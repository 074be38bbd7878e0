"""Structured logging: JSON off a terminal, readable on one; Slack's SDK never below INFO; secrets masked."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog

# Slack's SDK logs request and response bodies at DEBUG (tokens, user data). Never below INFO.
QUIET_LOGGERS = (
    "slack_sdk",
    "slack_bolt",
    "httpx",
    "httpcore",
    "kiota_http",
    "azure",
    "aiosqlite",
    "asyncio",
)
_TOKEN_PATTERN = re.compile(r"\b(xox[abeprs]-[A-Za-z0-9-]{6,}|xapp-[A-Za-z0-9-]{6,})")
_MASK = "********"


class SecretScrubber:
    """Masks known secret values and Slack token shapes in every event dict and message."""

    def __init__(self) -> None:
        self._values: set[str] = set()

    def add(self, *values: str | None) -> None:
        self._values.update(v for v in values if v and len(v) >= 6)

    def scrub(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, _MASK)
        return _TOKEN_PATTERN.sub(_MASK, text)

    def __call__(self, _logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        for key, value in list(event.items()):
            if isinstance(value, str):
                event[key] = self.scrub(value)
            elif not isinstance(value, int | float | bool | type(None)):
                event[key] = self.scrub(str(value))
        return event


scrubber = SecretScrubber()


def configure_logging(level: str = "INFO", fmt: str = "auto", secrets: Iterable[str | None] = ()) -> None:
    """Route stdlib and structlog records through one renderer. Safe to call more than once."""
    scrubber.add(*secrets)
    json_output = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        scrubber,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if json_output else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    # Third-party loggers stay at WARNING or above: at DEBUG they print request bodies, and Bolt logs a
    # rejected request's body at INFO.
    floor = max(logging.WARNING, logging.getLevelName(level))
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(floor)


def get_logger(name: str) -> Any:
    return structlog.stdlib.get_logger(name)
