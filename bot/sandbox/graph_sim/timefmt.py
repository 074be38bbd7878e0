"""Graph's wire format for DateTimeOffset values."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.clock import as_utc


def graph_time(value: datetime | None) -> str | None:
    """`2026-11-23T09:00:00Z`: UTC, whole seconds, `Z` suffix, as Graph writes them."""
    if value is None:
        return None
    return as_utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_graph_time(text: str) -> datetime:
    """Parse an ISO 8601 DateTimeOffset as clients send it; naive values are taken as UTC."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
