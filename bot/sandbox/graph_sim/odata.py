"""Query options shared by routes: $select, $expand, $top/$skiptoken paging, $count."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode

from .errors import GraphError
from .odata_filter import Filter, matches, parse_filter
from .router import Ctx, Reply

MAX_TOP = 999


def parse_query(raw: str) -> tuple[dict[str, str], dict[str, str]]:
    """(as sent, decoded) and (option name lower-cased without '$') views of the query string."""
    original = dict(parse_qsl(raw, keep_blank_values=True))
    normalized = {key.lstrip("$").lower(): value for key, value in original.items()}
    return original, normalized


def csv_option(ctx: Ctx, name: str) -> list[str] | None:
    raw = ctx.query.get(name)
    if raw is None:
        return None
    return [part.strip() for part in raw.split(",") if part.strip()]


def expands(ctx: Ctx) -> set[str]:
    return {e.lower() for e in csv_option(ctx, "expand") or []}


def project(entity: dict[str, Any], select: Sequence[str] | None) -> dict[str, Any]:
    """Keep only selected properties (matched case-insensitively) plus annotations."""
    if select is None:
        return entity
    wanted = {s.lower() for s in select}
    return {k: v for k, v in entity.items() if k.startswith("@") or k.lower() in wanted}


def filtered(
    ctx: Ctx,
    items: Sequence[Any],
    props: Mapping[str, str],
    resource: str,
    values: Callable[[Any], Mapping[str, object]],
) -> list[Any]:
    text = ctx.query.get("filter")
    if text is None:
        return list(items)
    node: Filter = parse_filter(text, props, resource)
    return [item for item in items if matches(node, values(item))]


def _top(ctx: Ctx) -> int:
    raw = ctx.query.get("top")
    if raw is None:
        return ctx.page_size
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_TOP:
        raise GraphError(
            400,
            "Request_BadRequest",
            f"Invalid page size specified: '{raw}'. Must be between 1 and {MAX_TOP} inclusive.",
        )
    return int(raw)


def _offset(ctx: Ctx) -> int:
    token = ctx.query.get("skiptoken")
    if token is None:
        return 0
    try:
        return int(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("offset:"))
    except ValueError as exc:
        raise GraphError(
            400, "Request_BadRequest", "The specified page token value has expired or is invalid."
        ) from exc


def _next_link(ctx: Ctx, offset: int) -> str:
    token = base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()
    pairs = parse_qsl(ctx.raw_query, keep_blank_values=True)
    params = {k: v for k, v in pairs if k.lstrip("$").lower() != "skiptoken"}
    params["$skiptoken"] = token
    return f"{ctx.service_root}{ctx.encoded_path}?{urlencode(params, safe='$')}"


def collection(ctx: Ctx, items: Sequence[dict[str, Any]], context: str, *, paged: bool = True) -> Reply:
    """A collection response; directory collections are paged with `@odata.nextLink` like Graph."""
    body: dict[str, Any] = {"@odata.context": ctx.context(context)}
    if ctx.query.get("count", "").lower() == "true":
        if ctx.headers.get("consistencylevel", "").lower() != "eventual":
            raise GraphError(400, "Request_BadRequest", "$count is not currently supported.")
        body["@odata.count"] = len(items)
    if not paged:
        body["value"] = list(items)
        return Reply(200, body)
    top, offset = _top(ctx), _offset(ctx)
    body["value"] = list(items[offset : offset + top])
    if offset + top < len(items):
        body["@odata.nextLink"] = _next_link(ctx, offset + top)
    return Reply(200, body)


def entity(ctx: Ctx, payload: dict[str, Any], context: str, status: int = 200) -> Reply:
    return Reply(status, {"@odata.context": ctx.context(context), **payload})
