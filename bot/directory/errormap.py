"""Turn what the SDK raises (kiota APIError / ODataError, httpx and azure-identity errors) into our
exceptions with safe messages: the Graph error code and a trimmed, single-line message, nothing else."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from bot.directory.errors import (
    AlreadyExists,
    DirectoryError,
    Forbidden,
    InvalidRequest,
    NotFound,
    Throttled,
    Unauthenticated,
    Unavailable,
)
from bot.retry_after import retry_after_seconds

_MAX_MESSAGE = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def safe_text(text: str | None, *, hide: Iterable[str] = ()) -> str | None:
    """One line, at most 200 characters, with any value in `hide` masked."""
    if not text:
        return None
    for value in hide:
        if value:
            text = text.replace(value, "****")
    text = _CONTROL.sub(" ", text).strip()
    return text[: _MAX_MESSAGE - 1] + "…" if len(text) > _MAX_MESSAGE else text


def status_of(exc: Exception) -> int | None:
    status = getattr(exc, "response_status_code", None)
    return status if isinstance(status, int) else None


def graph_code_and_message(exc: Exception) -> tuple[str | None, str | None]:
    main = getattr(exc, "error", None)  # ODataError.error: MainError (v1.0 and beta models alike)
    code = getattr(main, "code", None)
    message = getattr(main, "message", None)
    return (code if isinstance(code, str) else None, message if isinstance(message, str) else None)


def request_id_of(exc: Exception) -> str | None:
    inner = getattr(getattr(exc, "error", None), "inner_error", None)
    value = getattr(inner, "request_id", None)
    return value if isinstance(value, str) else None


def retry_after_of(exc: Exception, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (integer seconds or an HTTP date), or None."""
    headers: Any = getattr(exc, "response_headers", None)
    if not headers:
        return None
    return retry_after_seconds(headers.get("retry-after") or headers.get("Retry-After"), now)


def from_api_error(
    exc: Exception, *, operation: str, hide: Iterable[str] = (), retry_after: float | None = None
) -> DirectoryError:
    """Map a non-2xx answer. `retry_after` overrides the header (the caller's computed wait)."""
    status = status_of(exc)
    code, message = graph_code_and_message(exc)
    safe = safe_text(message, hide=hide)
    common: dict[str, Any] = {
        "code": code,
        "status": status,
        "request_id": request_id_of(exc),
        "operation": operation,
    }
    wait = retry_after if retry_after is not None else retry_after_of(exc)
    if status == 429:
        return Throttled(safe, retry_after=wait if wait is not None else 1.0, **common)
    if status is None or status >= 500 or status == 408:
        return Unavailable(safe, retry_after=wait, **common)
    error_type: type[DirectoryError] = {
        401: Unauthenticated,
        403: Forbidden,
        404: NotFound,
        409: AlreadyExists,
    }.get(status, InvalidRequest)
    return error_type(safe, **common)


def from_timeout(*, operation: str, seconds: float) -> Unavailable:
    return Unavailable(
        f"Microsoft Graph did not answer within {seconds:g} s", code="timeout", operation=operation
    )


def from_transport(exc: Exception, *, operation: str) -> Unavailable:
    # httpx messages can hold the URL (a UPN); the exception's class name says enough.
    return Unavailable(
        f"could not reach Microsoft Graph ({type(exc).__name__})", code="transport", operation=operation
    )


def from_credential(exc: Exception, *, operation: str) -> Unauthenticated:
    return Unauthenticated(
        f"could not get a token for Microsoft Graph ({type(exc).__name__})",
        code="credential",
        operation=operation,
    )


def from_unreadable(exc: Exception, *, operation: str) -> Unavailable:
    # The request may have succeeded (a TAP may exist): Unavailable tells the caller to reconcile.
    return Unavailable(
        f"could not read Microsoft Graph's answer ({type(exc).__name__})",
        code="unreadable",
        operation=operation,
    )
