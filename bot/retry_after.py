"""Retry-After as HTTP sends it, read the same way by every gateway (Graph, the security webhook)."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime


def retry_after_seconds(value: object, now: float | None = None) -> float | None:
    """Seconds from a Retry-After value (integer or fractional seconds, or an HTTP date), or None."""
    if value is None:
        return None
    raw = str(value).strip()
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
