"""Authentication methods: the polymorphic list, typed collections, DELETE, and TAP creation."""

from __future__ import annotations

from typing import Any

from ..errors import GraphError, bad_request, method_not_found, segment_not_found
from ..methods_json import method_json, tap_json
from ..model import AuthMethod, MethodKind
from ..odata import collection, entity
from ..router import BETA, Ctx, Reply, Router
from ..timefmt import parse_graph_time

_KINDS = {kind.value.lower(): kind for kind in MethodKind}
# Valid v1.0 collections the simulator has nothing in.
_ALWAYS_EMPTY = {"emailmethods", "platformcredentialmethods", "externalauthenticationmethods"}
_TAP_WRITABLE = {"startDateTime", "lifetimeInMinutes", "isUsableOnce"}
_TAP_READ_ONLY = {"id", "createdDateTime", "temporaryAccessPass", "isUsable", "methodUsabilityReason"}
_TAP_TYPE = "microsoft.graph.temporaryAccessPassAuthenticationMethod"


def _visible(ctx: Ctx, method: AuthMethod) -> bool:
    return ctx.version == BETA or method.kind != MethodKind.HARDWARE_OATH


def _kind(ctx: Ctx) -> MethodKind | None:
    """The typed collection named in the path; None for valid-but-empty ones."""
    name = ctx.params["kind"]
    if name.lower() in _ALWAYS_EMPTY:
        return None
    kind = _KINDS.get(name.lower())
    if kind is None or (kind == MethodKind.HARDWARE_OATH and ctx.version != BETA):
        raise segment_not_found(name)
    return kind


def _context(ctx: Ctx, user_id: str, collection_name: str) -> str:
    return f"users('{user_id}')/authentication/{collection_name}"


def list_methods(ctx: Ctx) -> Reply:
    user = ctx.user()
    items = [method_json(ctx.tenant, m) for m in ctx.tenant.methods_of(user.id) if _visible(ctx, m)]
    return collection(ctx, items, _context(ctx, user.id, "methods"), paged=False)


def get_method(ctx: Ctx) -> Reply:
    user = ctx.user()
    method = ctx.tenant.find_method(user.id, None, ctx.params["method"])
    if method is None or not _visible(ctx, method):
        raise method_not_found()
    return entity(ctx, method_json(ctx.tenant, method), _context(ctx, user.id, "methods/$entity"))


def list_typed(ctx: Ctx) -> Reply:
    user = ctx.user()
    kind = _kind(ctx)
    found = [m for m in ctx.tenant.methods_of(user.id) if kind is not None and m.kind == kind]
    items = [method_json(ctx.tenant, m) for m in found]
    return collection(ctx, items, _context(ctx, user.id, ctx.params["kind"]), paged=False)


def get_typed(ctx: Ctx) -> Reply:
    user = ctx.user()
    kind = _kind(ctx)
    method = ctx.tenant.find_method(user.id, kind, ctx.params["method"]) if kind else None
    if method is None:
        raise method_not_found()
    context = _context(ctx, user.id, f"{ctx.params['kind']}/$entity")
    return entity(ctx, method_json(ctx.tenant, method), context)


def delete_typed(ctx: Ctx) -> Reply:
    user = ctx.user()
    kind = None if ctx.params["kind"].lower() == "methods" else _kind(ctx)
    if kind == MethodKind.PASSWORD or ctx.params["kind"].lower() == "methods":
        raise GraphError(
            405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target."
        )
    if kind is None:
        raise method_not_found()
    if kind == MethodKind.HARDWARE_OATH:
        ctx.tenant.unassign_device(user.id, ctx.params["method"])
    else:
        ctx.tenant.delete_method(user.id, kind, ctx.params["method"])
    return Reply(204)


def _tap_request(body: dict[str, Any]) -> dict[str, Any]:
    for key in body:
        if key.startswith("@odata.") or key in _TAP_WRITABLE or key in _TAP_READ_ONLY:
            continue
        raise GraphError(
            400,
            "BadRequest",
            f"The property '{key}' does not exist on type '{_TAP_TYPE}'. Make sure to only use "
            "property names that are defined by the type or mark the type as open type.",
        )
    start = body.get("startDateTime")
    if start is not None:
        try:
            body = {**body, "startDateTime": parse_graph_time(str(start))}
        except ValueError as exc:
            raise bad_request(
                f"Cannot convert the literal '{start}' to the expected type 'Edm.DateTimeOffset'."
            ) from exc
    return body


def create_tap(ctx: Ctx) -> Reply:
    user = ctx.user()
    body = _tap_request(ctx.json_object())
    tap = ctx.tenant.issue_tap(
        user.id,
        lifetime=body.get("lifetimeInMinutes"),
        usable_once=body.get("isUsableOnce"),
        start=body.get("startDateTime"),
    )
    context = _context(ctx, user.id, "temporaryAccessPassMethods/$entity")
    return entity(ctx, tap_json(ctx.tenant, tap, reveal=True), context, status=201)


def register(router: Router) -> None:
    base = "/users/{user}/authentication"
    router.add("GET", f"{base}/methods", list_methods)
    router.add("GET", f"{base}/methods/{{method}}", get_method)
    router.add("PATCH", f"{base}/methods/{{method}}", _patch_not_supported)
    router.add("POST", f"{base}/temporaryAccessPassMethods", create_tap)
    router.add("GET", f"{base}/{{kind}}", list_typed)
    router.add("GET", f"{base}/{{kind}}/{{method}}", get_typed)
    router.add("DELETE", f"{base}/{{kind}}/{{method}}", delete_typed)


def _patch_not_supported(ctx: Ctx) -> Reply:
    raise bad_request("Updating authentication methods is not supported by the simulator.")
